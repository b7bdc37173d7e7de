// Where the step makes the host wait for the device: a backend that counts
// its blocking calls (every call that returns a value or copies through
// the host waits for the device on a GPU) and its allocations runs the
// engine's steps on the host. The GPU runs the same calls (the engine does
// not know where it runs), so the counts bound the GPU step's host
// synchronisations: a few per optimizer step, the same for 5 parameters as
// for 40 (none per parameter or per collective), and no allocation or free
// once the first step has run.
#include <gtest/gtest.h>

#include <atomic>
#include <tuple>

#include "kernels/cpu/cpu_backend.h"
#include "runtime/zero/zero_engine.h"
#include "tests/runtime/zero/engine_fixture.h"

namespace zshard::zero {
namespace {

using namespace std::chrono_literals;
using namespace fixture;

class CountingBackend : public kernels::CpuBackend {
 public:
  std::string name() const override { return "counting"; }
  void synchronize() override { ++waits, CpuBackend::synchronize(); }
  void copyToHost(void* d, const void* s, size_t n) override {
    ++waits, CpuBackend::copyToHost(d, s, n);
  }
  void copyFromHost(void* d, const void* s, size_t n) override {
    ++waits, CpuBackend::copyFromHost(d, s, n);
  }
  void waitTransfer(uint64_t t) override { ++waits, CpuBackend::waitTransfer(t); }
  bool unscale(kernels::View x, int64_t n, float m) override {
    return ++waits, CpuBackend::unscale(x, n, m);
  }
  bool hasNonFinite(kernels::ConstView x, int64_t n) override {
    return ++waits, CpuBackend::hasNonFinite(x, n);
  }
  double squaredNorm(kernels::ConstView x, int64_t n) override {
    return ++waits, CpuBackend::squaredNorm(x, n);
  }
  void* allocate(size_t bytes) override { return ++allocations, CpuBackend::allocate(bytes); }
  void release(void* p) override { ++allocations, CpuBackend::release(p); }

  std::atomic<int> waits{0}, allocations{0};
};

struct Counts {
  double waits_per_step = 0;
  int allocations = 0;  // after the first steps
};

// One rank: `params` parameters of 37 elements, warm-up steps, then kTimed
// steps counted.
constexpr int kWarmup = 2, kTimed = 4;

Counts runRank(int rank, comm::Communicator& comm, int stage, config::OptimizerType type,
               DType dtype, int params) {
  CountingBackend device;
  std::vector<shard::ParamSpec> specs(params, shard::ParamSpec{{37}, DType::kFloat32});
  std::vector<std::vector<float>> init(params, std::vector<float>(37));
  std::vector<const float*> ptrs;
  for (int k = 0; k < params; ++k) {
    for (int i = 0; i < 37; ++i) init[k][i] = float(initialValue(k, i));
    ptrs.push_back(init[k].data());
  }
  EngineOptions o;
  o.backend = &device;
  o.stage = stage;
  o.param_dtype = o.grad_dtype = dtype;
  o.bucket_numel = 100;  // several buckets
  o.alignment = 4;
  o.gradient_clipping = 0.5;
  o.loss_scaling = dtype == DType::kFloat16;
  o.timeout = 30s;
  ZeroEngine engine(specs, ptrs, comm, optimizerOf(type), o);
  Counts out;
  for (int t = 0; t < kWarmup + kTimed; ++t) {
    if (t == kWarmup) device.waits = device.allocations = 0;
    for (int k = params - 1; k >= 0; --k) {
      std::vector<float> g(37);
      for (int i = 0; i < 37; ++i) g[i] = float(gradValue(rank, t, k, i)) * 1e-3f;
      engine.addGradient(k, encode(g, dtype).data());
    }
    engine.step(kLr);
  }
  out.waits_per_step = double(device.waits) / kTimed;
  out.allocations = device.allocations;
  return out;
}

Counts run(int stage, config::OptimizerType type, DType dtype, int params) {
  std::vector<Counts> counts(2);
  const auto failures = onRanks(2, [&](int r, comm::Communicator& comm) {
    counts[r] = runRank(r, comm, stage, type, dtype, params);
  });
  for (const std::string& f : failures) EXPECT_EQ(f, "");
  EXPECT_EQ(counts[0].waits_per_step, counts[1].waits_per_step);
  return counts[0];
}

class HostSync : public ::testing::TestWithParam<std::tuple<int, config::OptimizerType, DType>> {};

TEST_P(HostSync, AFewWaitsPerStepNonePerParameterAndNoAllocation) {
  const auto [stage, type, dtype] = GetParam();
  const Counts few = run(stage, type, dtype, 5);
  const Counts many = run(stage, type, dtype, 40);
  const std::string what =
      "stage " + std::to_string(stage) + " " + config::toString(type) + " " + dtypeName(dtype);
  EXPECT_EQ(few.waits_per_step, many.waits_per_step) << what << ": waits grow with parameters";
  // The overflow flag and global norm, gathered across ranks (their device
  // values out, the sums back); Lamb adds its per-parameter norms, read once
  // and summed across ranks the same way.
  EXPECT_LE(many.waits_per_step, type == config::OptimizerType::kLamb ? 4 : 2) << what;
  EXPECT_EQ(few.allocations, 0) << what;
  EXPECT_EQ(many.allocations, 0) << what;
}

INSTANTIATE_TEST_SUITE_P(StagesOptimizersDtypes, HostSync,
                         ::testing::Combine(::testing::Values(1, 2, 3),
                                            ::testing::Values(config::OptimizerType::kAdamW,
                                                              config::OptimizerType::kLamb),
                                            ::testing::Values(DType::kFloat32, DType::kBFloat16,
                                                              DType::kFloat16)));

}  // namespace
}  // namespace zshard::zero
