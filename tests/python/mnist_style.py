"""An MNIST/CIFAR-style DeepSpeed script, written from DeepSpeed's tutorial
(argument parsing, training_data=, the returned loader, model_engine calls),
with only the import pointed at zshard and tensors moved to
model_engine.device. Synthetic 8x8 "digits" stand in for the download. On
rank 0 the result is compared with single-process torch on the same
per-rank batches (DistributedSampler, seed 0); prints "MNIST MATCH <err>"."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

import zshard as deepspeed


def add_argument():
    parser = argparse.ArgumentParser(description="MNIST")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--local_rank", type=int, default=-1, help="local rank passed from distributed launcher")
    parser = deepspeed.add_config_arguments(parser)
    return parser.parse_args()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def dataset():
    gen = torch.Generator().manual_seed(7)
    images = torch.randn(96, 1, 8, 8, generator=gen)
    labels = torch.randint(0, 10, (96,), generator=gen)
    return torch.utils.data.TensorDataset(images, labels)


def reference(data, world, epochs, micro, lr):
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    orders = [list(torch.utils.data.DistributedSampler(data, num_replicas=world, rank=r)) for r in range(world)]
    steps = len(orders[0]) // micro
    for _ in range(epochs):
        for s in range(steps):
            opt.zero_grad()
            for r in range(world):
                x, y = data[orders[r][s * micro:(s + 1) * micro]]
                (F.cross_entropy(net(x), y) / world).backward()
            opt.step()
    return net


def main():
    args = add_argument()
    torch.manual_seed(0)
    net = Net()
    data = dataset()
    model_engine, optimizer, trainloader, _ = deepspeed.initialize(
        args=args, model=net, model_parameters=net.parameters(), training_data=data)
    for epoch in range(args.epochs):
        for i, (inputs, labels) in enumerate(trainloader):
            inputs, labels = inputs.to(model_engine.device), labels.to(model_engine.device)
            loss = F.cross_entropy(model_engine(inputs), labels)
            model_engine.backward(loss)
            model_engine.step()
    if model_engine.global_rank == 0:
        ref = reference(data, model_engine.world_size, args.epochs, model_engine.train_micro_batch_size_per_gpu(),
                        optimizer.param_groups[0]["lr"])
        worst = max(((p - q).abs().max() / q.abs().max()).item() for p, q in zip(net.parameters(), ref.parameters()))
        print(f"MNIST {'MATCH' if worst < 1e-5 else 'MISMATCH'} {worst:.3g} steps {model_engine.global_steps}")


if __name__ == "__main__":
    main()
