// The NCCL communicator with one rank (two NCCL ranks cannot share one GPU)
// and the ZeRO engine on GPU buffers against the same engine on the host.
// Skipped without a GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "kernels/backend.h"
#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/comm/nccl/nccl_communicator.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/zero/zero_engine.h"

namespace zshard {
namespace {

using namespace std::chrono_literals;

#define SKIP_WITHOUT_GPU() \
  if (!kernels::cudaAvailable()) GTEST_SKIP() << "no usable CUDA GPU here"

std::vector<float> roundTrip(kernels::Backend& gpu, const std::vector<float>& host,
                             const std::function<void(float*)>& on_device) {
  kernels::DeviceBuffer buf(gpu, host.size() * sizeof(float));
  gpu.copyFromHost(buf.data(), host.data(), buf.size());
  on_device(buf.floats());
  std::vector<float> out(host.size());
  gpu.copyToHost(out.data(), buf.data(), buf.size());
  return out;
}

TEST(NcclCommunicator, OneRankCollectivesOnDeviceBuffers) {
  SKIP_WITHOUT_GPU();
  kernels::Backend& gpu = kernels::cudaBackend(0);
  rendezvous::HashStore store;
  auto comm = comm::makeNcclCommunicator(store, 0, 1, gpu, 0);
  const std::vector<float> x = {1, -2, 3.5f, 4, 5, 6, 7};
  auto same = [&](const char* what, const std::function<void(float*)>& f) {
    EXPECT_EQ(roundTrip(gpu, x, f), x) << what;
  };
  same("allReduce", [&](float* d) { comm->allReduce(d, DType::kFloat32, 7)->wait(30s); });
  same("reduceScatter", [&](float* d) { comm->reduceScatter(d, DType::kFloat32, {7})->wait(30s); });
  same("allGather", [&](float* d) { comm->allGather(d, DType::kFloat32, {7})->wait(30s); });
  same("broadcast", [&](float* d) { comm->broadcast(d, DType::kFloat32, 7, 0)->wait(30s); });
  comm->barrier()->wait(30s);
  // Work queued on the compute stream before the collective is seen by it.
  const std::vector<float> doubled = roundTrip(gpu, x, [&](float* d) {
    gpu.scale({d, DType::kFloat32}, 7, 2.f);
    comm->allReduce(d, DType::kFloat32, 7)->wait(30s);
  });
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(doubled[i], 2 * x[i]);
  auto sub = comm::splitNcclCommunicator(*comm, 0, 0);
  EXPECT_EQ(sub->size(), 1);
  same("split allReduce", [&](float* d) { sub->allReduce(d, DType::kFloat32, 7)->wait(30s); });
  EXPECT_THROW(comm->reduceScatter(nullptr, DType::kFloat32, {1, 2}), Error);
}

const std::vector<shard::ParamSpec> kParams = {
    {{64, 33}, DType::kFloat32}, {{1000}, DType::kFloat32}, {{3}, DType::kFloat32}};

// Runs 20 steps of one engine; returns its final parameters as floats.
std::vector<float> train(comm::Communicator& comm, kernels::Backend& backend, int stage,
                         DType dtype, double offload_ratio = -1) {
  std::vector<std::vector<float>> init;
  std::vector<const float*> ptrs;
  for (const auto& p : kParams) {
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    init.emplace_back(n);
    for (int64_t i = 0; i < n; ++i) init.back()[i] = std::cos(0.1f * i + init.size());
    ptrs.push_back(init.back().data());
  }
  config::OptimizerConfig adam;
  adam.type = config::OptimizerType::kAdamW;
  adam.betas = {0.9, 0.999};
  adam.eps = 1e-8;
  adam.weight_decay = 0.01;
  adam.adam_w_mode = adam.bias_correction = true;
  zero::EngineOptions o;
  o.backend = &backend;
  o.stage = stage;
  o.param_dtype = o.grad_dtype = dtype;
  o.bucket_numel = 700;
  o.accumulation_steps = 2;
  o.gradient_clipping = 0.5;
  if (offload_ratio >= 0) {  // pinned host memory, stepped in sub-groups between transfers
    o.offload_backend = &backend.hostBackend(/*pinned=*/true);
    o.offload_ratio = offload_ratio;
    o.sub_group_numel = 512;
  }
  zero::ZeroEngine engine(kParams, ptrs, comm, adam, o);
  for (int t = 0; t < 40; ++t) {
    for (int k = static_cast<int>(kParams.size()) - 1; k >= 0; --k) {
      std::vector<float> g(init[k].size());
      for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.01f * (i + 1) * (t + 1) + k);
      std::vector<char> typed(g.size() * dtypeSize(dtype));
      kernels::cast({g.data(), DType::kFloat32}, {typed.data(), dtype},
                    static_cast<int64_t>(g.size()));
      kernels::DeviceBuffer dev(backend, typed.size());
      backend.copyFromHost(dev.data(), typed.data(), typed.size());
      engine.addGradient(k, dev.data());
      backend.synchronize();  // `dev` is freed at the end of this scope
    }
    engine.step(1e-2f);
  }
  std::vector<float> out;
  for (size_t k = 0; k < kParams.size(); ++k) {
    std::vector<char> typed(init[k].size() * dtypeSize(dtype));
    backend.copyToHost(typed.data(), engine.parameter(static_cast<int>(k)), typed.size());
    std::vector<float> f(init[k].size());
    kernels::cast({typed.data(), dtype}, {f.data(), DType::kFloat32},
                  static_cast<int64_t>(f.size()));
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

TEST(ZeroEngineOnGpu, MatchesTheHostEngine) {
  SKIP_WITHOUT_GPU();
  kernels::Backend& gpu = kernels::cudaBackend(0);
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    for (int stage : {1, 2}) {
      rendezvous::HashStore gpu_store, cpu_store;
      auto nccl = comm::makeNcclCommunicator(gpu_store, 0, 1, gpu, 0);
      auto gloo = comm::makeGlooCommunicator(cpu_store, 0, 1);
      const std::vector<float> on_gpu = train(*nccl, gpu, stage, dtype);
      const std::vector<float> on_cpu = train(*gloo, kernels::cpuBackend(), stage, dtype);
      double worst = 0, scale = 0;
      for (size_t i = 0; i < on_cpu.size(); ++i) {
        worst = std::max(worst, double(std::fabs(on_gpu[i] - on_cpu[i])));
        scale = std::max(scale, double(std::fabs(on_cpu[i])));
      }
      // The kernels agree bit for bit; only the norm's summation order (and
      // so the clip factor) may differ in the last bits.
      const double tolerance = dtype == DType::kFloat32 ? 1e-6 : 1e-2;
      EXPECT_LE(worst / scale, tolerance) << dtypeName(dtype) << " stage " << stage;
      std::printf("%s stage %d: max relative difference GPU vs host engine %.3g\n",
                  dtypeName(dtype), stage, worst / scale);
    }
  }
}

// ZeRO-Offload on the GPU: gradients copied to pinned host memory as
// buckets finish, the host steps sub-groups while the previous one's
// parameters go back; the same bits as the state on the device (the CUDA
// kernels are the CPU kernels' twins).
TEST(ZeroEngineOnGpu, OffloadedStateGivesTheBitsOfStateOnTheDevice) {
  SKIP_WITHOUT_GPU();
  kernels::Backend& gpu = kernels::cudaBackend(0);
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    for (int stage : {1, 2}) {
      for (double ratio : {1.0, 0.5}) {
        rendezvous::HashStore a, b;
        auto device = comm::makeNcclCommunicator(a, 0, 1, gpu, 0);
        const std::vector<float> kept = train(*device, gpu, stage, dtype);
        auto offload = comm::makeNcclCommunicator(b, 0, 1, gpu, 0);
        const std::vector<float> moved = train(*offload, gpu, stage, dtype, ratio);
        EXPECT_EQ(moved, kept) << dtypeName(dtype) << " stage " << stage << " ratio " << ratio;
      }
    }
  }
}

// A gradient written on another stream (torch's) is read by the engine only
// after that stream's work, ordered on the device by waitForStream with no
// host wait: the producer is held 300 ms by a host function before it writes
// the gradient, and the engine's copy must still see the written values.
TEST(ZeroEngineOnGpu, AGradientFromAnotherStreamIsReadAfterItIsWritten) {
  SKIP_WITHOUT_GPU();
  kernels::Backend& gpu = kernels::cudaBackend(0);
  rendezvous::HashStore store;
  auto nccl = comm::makeNcclCommunicator(store, 0, 1, gpu, 0);
  constexpr int64_t n = 1 << 16;
  std::vector<float> init(n, 1.0f);
  config::OptimizerConfig sgd;
  sgd.type = config::OptimizerType::kSgd;
  zero::EngineOptions o;
  o.backend = &gpu;
  o.stage = 2;
  o.param_dtype = o.grad_dtype = DType::kFloat32;
  o.bucket_numel = n / 4;
  zero::ZeroEngine engine({{{n}, DType::kFloat32}}, {init.data()}, *nccl, sgd, o);
  cudaStream_t producer = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), cudaSuccess);
  float* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), n * sizeof(float)), cudaSuccess);
  for (int64_t i = 0; i < n; ++i) pinned[i] = 0.5f;
  kernels::DeviceBuffer grad(gpu, n * sizeof(float));  // zeros
  engine.addGradient(0, grad.data());                  // a first step allocates the buckets
  ASSERT_TRUE(engine.step(1.0f));
  gpu.synchronize();
  ASSERT_EQ(
      cudaLaunchHostFunc(
          producer, [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(300)); },
          nullptr),
      cudaSuccess);
  ASSERT_EQ(
      cudaMemcpyAsync(grad.data(), pinned, n * sizeof(float), cudaMemcpyHostToDevice, producer),
      cudaSuccess);
  const auto t0 = std::chrono::steady_clock::now();
  gpu.waitForStream(producer);
  engine.addGradient(0, grad.data());
  const double enqueue_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(enqueue_ms, 150) << "the hand-over waited on the host";
  ASSERT_TRUE(engine.step(1.0f));  // SGD, lr 1, no momentum: p = 1 - 0.5
  std::vector<float> out(n);
  gpu.copyToHost(out.data(), engine.parameter(0), n * sizeof(float));
  int64_t wrong = 0;
  for (float v : out) wrong += v != 0.5f;
  EXPECT_EQ(wrong, 0) << "the engine read the gradient before the producer wrote it";
  cudaStreamSynchronize(producer);
  cudaStreamDestroy(producer);
  cudaFreeHost(pinned);
}

}  // namespace
}  // namespace zshard
