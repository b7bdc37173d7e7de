// bench/optim_gpu: zshard's fused mixed-precision AdamW step on the GPU (bf16
// gradients in, bf16 parameters out, fp32 master/m/v: 28 bytes per element)
// against (a) a device-to-device copy of the same bytes and (b) torch's
// AdamW(fused=True) in fp32 (bench/torch_adamw_gpu.py), in the same run.
//
//   bench_optim_gpu [log2_elements=29] [python=python3]
//   [torch_script=<source>/bench/torch_adamw_gpu.py]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/peer.h"
#include "kernels/backend.h"

namespace zshard {
namespace {

constexpr double kBytesPerElement = 28;
constexpr int kRepeats = 10;

template <typename F>
double bestSeconds(cudaStream_t stream, F&& f) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  f();  // warm up
  double best = 1e30;
  for (int i = 0; i < kRepeats; ++i) {
    cudaEventRecord(start, stream);
    f();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    best = std::min(best, ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

double torchRate(const std::string& python, const std::string& script, int64_t n,
                 std::string& version) {
  return bench::runPeer(python + " " + script + " " + std::to_string(n) + " 10", version);
}

}  // namespace
}  // namespace zshard

int main(int argc, char** argv) {
  using namespace zshard;
  const int log2n = argc > 1 ? std::atoi(argv[1]) : 29;
  const std::string python = argc > 2 ? argv[2] : "python3";
  const std::string script = argc > 3 ? argv[3] : ZSHARD_BENCH_DIR "/torch_adamw_gpu.py";
  const int64_t n = int64_t{1} << log2n;
  if (!kernels::cudaAvailable()) {
    std::printf("no usable GPU: nothing measured\n");
    return 1;
  }
  kernels::Backend& gpu = kernels::cudaBackend(0);
  cudaStream_t stream = static_cast<cudaStream_t>(gpu.stream());
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  double t_adam = 0, t_copy = 0;
  {
    kernels::DeviceBuffer master(gpu, n * 4), m(gpu, n * 4), v(gpu, n * 4), grad(gpu, n * 2),
        out(gpu, n * 2);
    std::vector<float> ones(1 << 20, 0.5f);
    kernels::DeviceBuffer staging(gpu, ones.size() * 4);
    gpu.copyFromHost(staging.data(), ones.data(), staging.size());
    for (int64_t at = 0; at < n; at += int64_t(ones.size())) {  // non-zero gradients
      gpu.cast({staging.data(), DType::kFloat32}, {grad.data() + at * 2, DType::kBFloat16},
               std::min<int64_t>(ones.size(), n - at));
    }
    kernels::AdamHyper h;
    h.weight_decay = 0.01f;
    t_adam = bestSeconds(stream, [&] {
      gpu.adamStep(master.floats(), m.floats(), v.floats(), {grad.data(), DType::kBFloat16},
                   {out.data(), DType::kBFloat16}, n, h, 1.f);
      ++h.step;
    });
  }
  {
    const size_t half = static_cast<size_t>(n) * 14;  // 14 read + 14 written = 28 per element
    kernels::DeviceBuffer src(gpu, half), dst(gpu, half);
    t_copy = bestSeconds(stream, [&] {
      cudaMemcpyAsync(dst.data(), src.data(), half, cudaMemcpyDeviceToDevice, stream);
    });
  }
  std::string torch_version = "unavailable";
  const double torch_rate = torchRate(python, script, n, torch_version);
  const double adam_rate = n / t_adam, copy_rate = n / t_copy;
  std::printf("GPU AdamW step on %s, 2^%d elements (bf16 grads in, bf16 params out, fp32 state)\n",
              prop.name, log2n);
  std::printf("%-34s %14s %10s\n", "what", "G elements/s", "TB/s");
  auto row = [](const std::string& what, double rate) {
    std::printf("%-34s %14.1f %10.3f\n", what.c_str(), rate / 1e9, rate * kBytesPerElement / 1e12);
  };
  row("device copy of the same bytes", copy_rate);
  row("zshard fused AdamW (28 B/elem)", adam_rate);
  if (torch_rate > 0) {
    row("torch " + torch_version + " AdamW(fused), fp32", torch_rate);
  } else {
    std::printf("torch fused AdamW: not measured (%s could not run it)\n", python.c_str());
  }
  std::printf("gpu_adamw_fraction_of_copy_bw=%.3f speedup_vs_torch_fused=%.2f\n",
              adam_rate / copy_rate, torch_rate > 0 ? adam_rate / torch_rate : 0.0);
  return 0;
}
