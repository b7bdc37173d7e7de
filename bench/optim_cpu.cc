// bench/optim_cpu: the fused CPU AdamW step against (a) a plain copy of the
// same bytes, (b) torch's AdamW (bench/torch_adamw.py) and (c) DeepSpeed's
// DeepSpeedCPUAdam (bench/deepspeed_cpu_adam.py, when $DSPEER/env_ds.sh —
// default ~/.cache/dspeer — puts DeepSpeed on the path), each run in the
// same invocation on the same machine with the same threads and size. 28
// bytes per element: fp32 master, m, v read and written, fp32 gradient read.
//
//   bench_optim_cpu [log2_elements=26] [python=/usr/bin/python3]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/peer.h"
#include "bench/timing.h"
#include "kernels/kernels.h"

namespace {

using zshard::bench::bestSeconds;
using zshard::bench::parallelCopy;

constexpr double kBytesPerElement = 28;
// The peer script's elements/s; `prefix` runs before it in the same shell.
double peerElementsPerSecond(const std::string& prefix, const std::string& python,
                             const char* script, int64_t n, std::string& version) {
  return zshard::bench::runPeer(prefix + python + " " ZSHARD_BENCH_DIR "/" + script + " " +
                                    std::to_string(n) + " 5 " +
                                    std::to_string(omp_get_max_threads()),
                                version);
}

// Sources DeepSpeed's environment (the peer recipe's env_ds.sh) when there is one.
std::string deepspeedPrefix() {
  const char* dir = std::getenv("DSPEER");
  const char* home = std::getenv("HOME");
  const std::string env =
      (dir != nullptr ? std::string(dir)
                      : std::string(home != nullptr ? home : "") + "/.cache/dspeer") +
      "/env_ds.sh";
  return "[ -f " + env + " ] && . " + env + " && ";
}

}  // namespace

int main(int argc, char** argv) {
  const int log2n = argc > 1 ? std::atoi(argv[1]) : 26;
  const std::string python = argc > 2 ? argv[2] : "/usr/bin/python3";
  const int64_t n = int64_t{1} << log2n;
  std::vector<float> master(n), m(n, 0.f), v(n, 0.f), grad(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0, 1);
  for (int64_t i = 0; i < n; ++i) master[i] = dist(rng), grad[i] = dist(rng);

  zshard::kernels::AdamHyper h;
  h.weight_decay = 0.01f;
  const double t_adam = bestSeconds([&] {
    zshard::kernels::adamStep(master.data(), m.data(), v.data(),
                              {grad.data(), zshard::DType::kFloat32}, {}, n, h, 1.0f);
    ++h.step;
  });
  const size_t copy_bytes = static_cast<size_t>(n) * 14;  // 14 read + 14 written = 28
  std::vector<char> src(copy_bytes, 1), dst(copy_bytes, 0);
  const double t_copy = bestSeconds([&] { parallelCopy(dst.data(), src.data(), copy_bytes); });
  std::string torch_version = "unavailable", ds_version = "unavailable";
  const double torch_rate = peerElementsPerSecond("", python, "torch_adamw.py", n, torch_version);
  const double ds_rate =
      peerElementsPerSecond(deepspeedPrefix(), python, "deepspeed_cpu_adam.py", n, ds_version);

  const double adam_rate = n / t_adam, copy_rate = n / t_copy;
  std::printf("CPU AdamW step, 2^%d fp32 elements, %d OpenMP threads, ISA %s\n", log2n,
              omp_get_max_threads(), zshard::kernels::cpuIsa());
  std::printf("%-28s %14s %10s\n", "what", "M elements/s", "GB/s");
  auto row = [](const char* what, double rate) {
    std::printf("%-28s %14.1f %10.2f\n", what, rate / 1e6, rate * kBytesPerElement / 1e9);
  };
  row("copy of the same bytes", copy_rate);
  row("zshard fused AdamW", adam_rate);
  if (torch_rate > 0) {
    row(("torch " + torch_version + " AdamW").c_str(), torch_rate);
  } else {
    std::printf("torch AdamW: not measured (%s could not import torch)\n", python.c_str());
  }
  if (ds_rate > 0) {
    row((ds_version + " DeepSpeedCPUAdam").c_str(), ds_rate);
  } else {
    std::printf("DeepSpeedCPUAdam: not measured (no DeepSpeed: see bench/vs_deepspeed.sh)\n");
  }
  std::printf(
      "cpu_adamw_speedup_vs_torch=%.2f cpu_adamw_speedup_vs_deepspeed_cpu_adam=%.2f "
      "cpu_adamw_fraction_of_copy_bw=%.2f\n",
      torch_rate > 0 ? adam_rate / torch_rate : 0.0, ds_rate > 0 ? adam_rate / ds_rate : 0.0,
      adam_rate / copy_rate);
  return 0;
}
