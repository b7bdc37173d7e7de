"""Worker for test_zero_training.py: one misuse per --case; prints the error."""
import argparse
import sys

import torch

import zshard

CONFIG = {"train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}}


def main(case):
    model = torch.nn.Linear(4, 2)
    try:
        if case == "twice":
            zshard.initialize(model=model, config=CONFIG)
            zshard.initialize(model=model, config=CONFIG)
        elif case == "non_leaf":
            zshard.initialize(model=model, model_parameters=[model.weight * 2], config=CONFIG)
        elif case == "different_weights":
            torch.manual_seed(zshard.topology()["rank"])  # each rank a different init
            zshard.initialize(model=torch.nn.Linear(4, 2), config=CONFIG, dist_init_required=False)
        elif case == "unseeded":  # rank 0's weights and buffers reach every rank
            torch.manual_seed(zshard.topology()["rank"])
            net = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.BatchNorm1d(2))
            net[1].running_mean.fill_(float(zshard.topology()["rank"]))
            zshard.initialize(model=net, config=CONFIG)
            import torch.distributed as dist
            for t in list(net.parameters()) + list(net.buffers()):
                if t.is_floating_point():
                    top, low = t.detach().clone(), t.detach().clone()
                    dist.all_reduce(top, op=dist.ReduceOp.MAX)
                    dist.all_reduce(low, op=dist.ReduceOp.MIN)
                    assert torch.equal(top, low), "ranks differ after initialize()"
            assert net[1].running_mean.abs().max().item() == 0.0
        elif case == "client_rmsprop":
            zshard.initialize(model=model, optimizer=torch.optim.RMSprop(model.parameters()),
                              config={"train_micro_batch_size_per_gpu": 2})
        elif case == "client_amsgrad":
            zshard.initialize(model=model, optimizer=torch.optim.AdamW(model.parameters(), amsgrad=True),
                              config={"train_micro_batch_size_per_gpu": 2})
        elif case == "scheduler_twice":
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            zshard.initialize(model=model, optimizer=opt, lr_scheduler=torch.optim.lr_scheduler.StepLR(opt, 1),
                              config={"train_micro_batch_size_per_gpu": 2,
                                      "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 5}}})
        elif case == "client_optimizer":
            zshard.initialize(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), config=CONFIG)
        elif case == "param_group_setting":
            zshard.initialize(model=model, config=CONFIG, model_parameters=[
                {"params": [model.weight], "lr": 0.01, "momentum": 0.9}, {"params": [model.bias], "weight_decay": 0.0}])
        elif case == "param_group_add":
            _, optimizer, _, _ = zshard.initialize(model=model, config=CONFIG, model_parameters=[model.weight])
            optimizer.add_param_group({"params": [model.bias]})
        elif case == "both_configs":
            args = argparse.Namespace(deepspeed_config="/tmp/ds.json")
            zshard.initialize(args=args, model=model, config=CONFIG)
        elif case == "mpu":
            zshard.initialize(model=model, config=CONFIG, mpu=object())
        elif case == "collate_alone":
            zshard.initialize(model=model, config=CONFIG, collate_fn=lambda b: b)
        elif case == "unknown_kwarg":
            zshard.initialize(model=model, config=CONFIG, model_params=model.parameters())
        elif case == "bad_key":
            zshard.initialize(model=model, config=dict(CONFIG, zero_optimisation={"stage": 2}))
    except (zshard.ZshardError, zshard.ConfigError) as e:
        print(f"ERROR {type(e).__name__}: {e}")
        return 3
    print("NO ERROR")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
