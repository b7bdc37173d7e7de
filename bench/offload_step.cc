// bench/offload_step: the ZeRO-Offload optimizer step (PlacedOptimizer, the
// engine's own path) per element, against the same step with the state
// kept with the model, torch's AdamW on the host (bench/torch_adamw.py, run
// in the same invocation) and the copy bandwidth of the bytes it moves.
// bf16 gradients and parameters, fp32 master/m/v: 2 + 24 + 2 bytes per
// element for the step, plus the 2 + 2 bytes each way the transfers move.
// With a GPU (device 0) the "device" is the GPU and the host memory is
// pinned: the table then shows how much of the host step the transfers
// hide (sub-groups step while the next one's gradients arrive).
//
//   bench_offload_step [log2_elements=25] [sub_group_log2=22] [python=/usr/bin/python3]
#include <omp.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/peer.h"
#include "bench/timing.h"
#include "kernels/backend.h"
#include "runtime/zero/placed_optimizer.h"

namespace {

using namespace zshard;
using bench::bestSeconds;

constexpr double kStepBytes = 28;  // grad read, master/m/v read+written, model written

config::OptimizerConfig adamW() {
  config::OptimizerConfig c;
  c.type = config::OptimizerType::kAdamW;
  c.given = true;
  c.lr = 1e-3;
  c.betas = {0.9, 0.999};
  c.eps = 1e-8;
  c.weight_decay = 0.01;
  c.adam_w_mode = true;
  c.bias_correction = true;
  return c;
}

struct Buffers {
  kernels::DeviceBuffer grads, model;
};

Buffers deviceBuffers(kernels::Backend& device, int64_t n) {
  std::vector<char> g(n * 2);
  std::vector<float> f(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0, 1);
  for (float& x : f) x = dist(rng);
  kernels::cast({f.data(), DType::kFloat32}, {g.data(), DType::kBFloat16}, n);
  Buffers b{kernels::DeviceBuffer(device, n * 2), kernels::DeviceBuffer(device, n * 2)};
  device.copyFromHost(b.grads.data(), g.data(), g.size());
  return b;
}

// Seconds per step of `placement` over n elements (the best of a few).
double stepSeconds(kernels::Backend& device, zero::Placement placement, int64_t n) {
  std::vector<float> init(n, 0.5f);
  zero::PlacedOptimizer opt(adamW(), placement, init.data(), n, {{0, 0, n}}, 1, {},
                            DType::kBFloat16, DType::kBFloat16);
  Buffers b = deviceBuffers(device, n);
  const kernels::ConstView grads{b.grads.data(), DType::kBFloat16};
  const kernels::View model{b.model.data(), DType::kBFloat16};
  return bestSeconds([&] {
    opt.step(grads, model, 1.0f, {1e-3f}, {});
    device.synchronize();
  });
}

// The transfers alone: the gradients down, the parameters back.
double transferSeconds(kernels::Backend& device, kernels::Backend& host, int64_t n) {
  Buffers b = deviceBuffers(device, n);
  kernels::DeviceBuffer staging(host, n * 4);
  return bestSeconds([&] {
    device.copyToHostAsync(staging.data(), b.grads.data(), n * 2);
    device.waitTransfer(device.copyFromHostAsync(b.model.data(), staging.data() + n * 2, n * 2));
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int log2n = argc > 1 ? std::atoi(argv[1]) : 25;
  const int log2g = argc > 2 ? std::atoi(argv[2]) : 22;
  const std::string python = argc > 3 ? argv[3] : "/usr/bin/python3";
  const int64_t n = int64_t{1} << log2n;
  const bool gpu = kernels::cudaAvailable();
  kernels::Backend& device = kernels::backendFor(gpu, 0);
  kernels::Backend& host = device.hostBackend(/*pinned=*/true);

  zero::Placement in_place;
  in_place.device = &device;
  zero::Placement whole = in_place;
  whole.host = &host;
  zero::Placement groups = whole;
  groups.sub_group_numel = int64_t{1} << log2g;

  const double t_device = stepSeconds(device, in_place, n);
  const double t_whole = stepSeconds(device, whole, n);
  const double t_groups = stepSeconds(device, groups, n);
  const double t_transfer = transferSeconds(device, host, n);
  std::vector<char> src(static_cast<size_t>(n * kStepBytes / 2), 1), dst(src.size(), 0);
  const double t_copy =
      bestSeconds([&] { bench::parallelCopy(dst.data(), src.data(), src.size()); });
  std::string torch_version = "unavailable";
  const double torch_rate =
      bench::runPeer(python + " " ZSHARD_BENCH_DIR "/torch_adamw.py " + std::to_string(n) + " 5 " +
                         std::to_string(omp_get_max_threads()),
                     torch_version);

  std::printf(
      "ZeRO-Offload AdamW step, 2^%d elements (bf16 gradients/parameters, fp32 state), "
      "device %s, host memory %s, %d OpenMP threads, ISA %s\n",
      log2n, device.name().c_str(), host.name().c_str(), omp_get_max_threads(), kernels::cpuIsa());
  std::printf("%-44s %10s %14s\n", "what", "ns/elem", "M elements/s");
  auto row = [&](const std::string& what, double seconds) {
    std::printf("%-44s %10.3f %14.1f\n", what.c_str(), 1e9 * seconds / n, n / seconds / 1e6);
  };
  row("copy of the step's 28 bytes/element (host)", t_copy);
  row("transfers alone (grad down, param back)", t_transfer);
  row("step, state with the model (" + device.name() + ")", t_device);
  row("offloaded step, one sub-group", t_whole);
  row("offloaded step, sub-groups of 2^" + std::to_string(log2g), t_groups);
  if (torch_rate > 0) {
    row("torch " + torch_version + " AdamW (host, fp32)", n / torch_rate);
  } else {
    std::printf("torch AdamW: not measured (%s could not import torch)\n", python.c_str());
  }
  // On a GPU the host step alone is the offloaded step less its transfers
  // when none overlap; what the sub-groups save of the smaller of the two is
  // what they hide. On the host the "transfers" are copies the same threads
  // make, so nothing can hide (a sub-group's gain there is cache reuse).
  std::string hidden = "n/a(host-copies-are-synchronous)";
  if (!device.onHost()) {
    const double host_step = std::max(t_whole - t_transfer, 1e-12);
    hidden = std::to_string(std::max(0.0, (t_whole - t_groups) / std::min(host_step, t_transfer)));
  }
  std::printf(
      "offload_step_vs_torch_adamw=%.2f offload_step_fraction_of_copy_bw=%.2f "
      "offload_vs_state_with_model=%.2f hidden_fraction=%s\n",
      torch_rate > 0 ? (n / t_groups) / torch_rate : 0.0, t_copy / t_groups, t_groups / t_device,
      hidden.c_str());
  return 0;
}
