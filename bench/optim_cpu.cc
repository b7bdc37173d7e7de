// bench/optim_cpu: the fused CPU AdamW step against (a) a plain copy of the
// same bytes and (b) torch's AdamW (bench/torch_adamw.py, run in the same
// invocation on the same machine). 28 bytes per element: fp32 master, m, v
// read and written, fp32 gradient read.
//
//   bench_optim_cpu [log2_elements=26] [python=/usr/bin/python3]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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
double torchElementsPerSecond(const std::string& python, int64_t n, std::string& version) {
  return zshard::bench::runPeer(python + " " ZSHARD_BENCH_DIR "/torch_adamw.py " +
                                    std::to_string(n) + " 5 " +
                                    std::to_string(omp_get_max_threads()),
                                version);
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
  std::string torch_version = "unavailable";
  const double torch_rate = torchElementsPerSecond(python, n, torch_version);

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
  std::printf("cpu_adamw_speedup_vs_torch=%.2f cpu_adamw_fraction_of_copy_bw=%.2f\n",
              torch_rate > 0 ? adam_rate / torch_rate : 0.0, adam_rate / copy_rate);
  return 0;
}
