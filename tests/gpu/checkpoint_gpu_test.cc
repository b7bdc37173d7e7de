// Checkpoints of an engine on GPU buffers: saved from device memory (staged
// through the host in chunks), loaded back into a GPU engine and, resharded
// 1 -> 2, into host engines on two ranks; every resumed run must retrace the
// uninterrupted GPU run. Skipped without a GPU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

#include "kernels/backend.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/comm/nccl/nccl_communicator.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/zero/session.h"
#include "runtime/zero/zero_engine.h"

namespace zshard {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::vector<shard::ParamSpec> kParams = {
    {{64, 33}, DType::kFloat32}, {{1000}, DType::kFloat32}, {{3}, DType::kFloat32}};

int64_t numel(const shard::ParamSpec& p) {
  int64_t n = 1;
  for (int64_t d : p.shape) n *= d;
  return n;
}

std::unique_ptr<zero::ZeroEngine> makeEngine(comm::Communicator& comm, kernels::Backend& backend,
                                             float seed) {
  std::vector<std::vector<float>> init;
  std::vector<const float*> ptrs;
  for (const auto& p : kParams) {
    init.emplace_back(numel(p));
    for (int64_t i = 0; i < numel(p); ++i) init.back()[i] = std::cos(seed * i + init.size());
    ptrs.push_back(init.back().data());
  }
  config::OptimizerConfig adam;
  adam.type = config::OptimizerType::kAdamW;
  adam.weight_decay = 0.01;
  zero::EngineOptions o;
  o.backend = &backend;
  o.param_dtype = o.grad_dtype = DType::kFloat32;
  o.bucket_numel = 700;
  o.gradient_clipping = 0.5;
  return std::make_unique<zero::ZeroEngine>(kParams, ptrs, comm, adam, o);
}

void train(zero::ZeroEngine& engine, kernels::Backend& backend, int first, int steps) {
  for (int t = first; t < first + steps; ++t) {
    for (int k = static_cast<int>(kParams.size()) - 1; k >= 0; --k) {
      std::vector<float> g(numel(kParams[k]));
      for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.01f * (i + 1) * (t + 1) + k);
      kernels::DeviceBuffer dev(backend, g.size() * sizeof(float));
      backend.copyFromHost(dev.data(), g.data(), dev.size());
      engine.addGradient(k, dev.data());
      backend.synchronize();
    }
    engine.step(1e-2f);
  }
}

std::vector<float> weights(zero::ZeroEngine& engine, kernels::Backend& backend) {
  std::vector<float> out;
  for (size_t k = 0; k < kParams.size(); ++k) {
    std::vector<float> f(numel(kParams[k]));
    backend.copyToHost(f.data(), engine.parameter(static_cast<int>(k)), f.size() * sizeof(float));
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

checkpoint::ModelInfo modelInfo(zero::ZeroEngine& engine) {
  checkpoint::ModelInfo m;
  for (size_t k = 0; k < kParams.size(); ++k) {
    m.names.push_back("w" + std::to_string(k));
    m.shapes.push_back(kParams[k].shape);
  }
  m.optimizer_type = "AdamW";
  for (const char* name : engine.stateBufferNames()) m.buffer_names.push_back(name);
  m.scheduler_type = "none";
  return m;
}

double relativeDifference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, double(std::fabs(a[i] - b[i])));
    scale = std::max(scale, double(std::fabs(b[i])));
  }
  return worst / scale;
}

// Loads into `engine` and continues it for 10 steps.
std::vector<float> resume(zero::ZeroEngine& engine, kernels::Backend& backend,
                          rendezvous::Store& store, int rank, int world, const std::string& dir) {
  checkpoint::LoadResult r =
      checkpoint::load({&store, rank, world, 60s}, dir, "", {}, engine.plan(), modelInfo(engine),
                       zero::shardStateOf(engine));
  EXPECT_TRUE(r.found);
  engine.resume(r.counters.optimizer_step, &r.counters.loss_scaler);
  train(engine, backend, 10, 10);
  return weights(engine, backend);
}

TEST(CheckpointOnGpu, SavedFromDeviceMemoryResumesOnGpuAndOnTwoHostRanks) {
  if (!kernels::cudaAvailable()) GTEST_SKIP() << "no usable CUDA GPU here";
  kernels::Backend& gpu = kernels::cudaBackend(0);
  const std::string dir =
      (fs::temp_directory_path() / ("zshard_gpu_ckpt_" + std::to_string(getpid()))).string();
  std::vector<float> want;
  {
    rendezvous::HashStore store;
    auto nccl = comm::makeNcclCommunicator(store, 0, 1, gpu, 0);
    auto engine = makeEngine(*nccl, gpu, 0.1f);
    train(*engine, gpu, 0, 10);
    rendezvous::PrefixStore op(store, "save");
    checkpoint::save({&op, 0, 1, 60s}, {dir, "t10", true, "", ""}, engine->plan(),
                     modelInfo(*engine), zero::shardStateOf(*engine),
                     {engine->optimizerSteps(), 10, 10, engine->lossScalerState()});
    train(*engine, gpu, 10, 10);
    want = weights(*engine, gpu);
  }
  {
    rendezvous::HashStore store;
    auto nccl = comm::makeNcclCommunicator(store, 0, 1, gpu, 0);
    auto engine = makeEngine(*nccl, gpu, 0.7f);
    const double d = relativeDifference(resume(*engine, gpu, store, 0, 1, dir), want);
    std::printf("GPU -> GPU resume: max relative difference %.3g\n", d);
    EXPECT_LT(d, 1e-6);
  }
  rendezvous::HashStore store;
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.emplace_back([&, rank] {
      auto gloo = comm::makeGlooCommunicator(store, rank, 2);
      auto engine = makeEngine(*gloo, kernels::cpuBackend(), 0.7f);
      rendezvous::PrefixStore op(store, "load");
      const double d =
          relativeDifference(resume(*engine, kernels::cpuBackend(), op, rank, 2, dir), want);
      std::printf("GPU (1 rank) -> host (2 ranks) resume, rank %d: max relative difference %.3g\n",
                  rank, d);
      EXPECT_LT(d, 1e-6);
    });
  }
  for (auto& t : ranks) t.join();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace zshard
