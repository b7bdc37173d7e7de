// ZeRO-Offload: the optimizer state in host memory (all of it or a ratio),
// stepped in sub-groups between transfers, gives the bits of the state kept
// with the model, at stages 1-3, for every optimizer; and the bytes are
// where the placement says. The host plays both placements here (two
// backends that keep their own accounts); the GPU runs the same calls.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cpu/cpu_backend.h"
#include "runtime/zero/zero_engine.h"
#include "tests/runtime/zero/engine_fixture.h"

namespace zshard::zero {
namespace {

using namespace std::chrono_literals;
using namespace fixture;

// The host backend, keeping an account of the bytes it holds.
class AccountingBackend : public kernels::CpuBackend {
 public:
  explicit AccountingBackend(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void* allocate(size_t bytes) override {
    void* p = CpuBackend::allocate(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = bytes;
    return p;
  }
  void release(void* p) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.erase(p);
    }
    CpuBackend::release(p);
  }
  int64_t liveBytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t total = 0;
    for (const auto& [p, n] : live_) total += static_cast<int64_t>(n);
    return total;
  }

 private:
  std::string name_;
  std::mutex mutex_;
  std::map<void*, size_t> live_;
};

struct Offload {
  bool on = false;
  double ratio = 1.0;
  int64_t sub_group = 0;
  bool params = false;  // stage 3 offload_param
};

struct Outcome {
  std::vector<char> model;                // every parameter's final 16-bit/fp32 values, gathered
  std::vector<std::vector<float>> state;  // every parameter's whole fp32 state buffers
  MemoryReport memory;
  int64_t device_live = 0, host_live = 0;
};

// One rank's run: kSteps steps of accumulation 2 with clipping, gradients
// that differ per rank, the last parameter's gradients skipped on rank 1
// every other micro step.
Outcome runRank(int rank, comm::Communicator& comm, int stage, config::OptimizerType type,
                DType dtype, const Offload& off) {
  AccountingBackend device("device"), host("host");
  std::vector<std::vector<float>> init;
  std::vector<const float*> ptrs;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    init.emplace_back(numel(kShapes[k]));
    for (int64_t i = 0; i < numel(kShapes[k]); ++i) init[k][i] = float(initialValue(k, i));
    ptrs.push_back(init[k].data());
  }
  EngineOptions o;
  o.backend = &device;
  o.stage = stage;
  o.param_dtype = o.grad_dtype = dtype;
  o.bucket_numel = 40;
  o.alignment = 4;
  o.accumulation_steps = 2;
  o.gradient_clipping = 0.5;
  o.loss_scaling = dtype == DType::kFloat16;
  o.timeout = 30s;
  if (off.on) {
    o.offload_backend = &host;
    o.offload_ratio = off.ratio;
    o.sub_group_numel = off.sub_group;
    o.offload_params = off.params;
  }
  Outcome out;
  {
    ZeroEngine engine(specs(), ptrs, comm, optimizerOf(type), o);
    for (int t = 0; t < 2 * kSteps; ++t) {
      for (int k = static_cast<int>(kShapes.size()) - 1; k >= 0; --k) {
        if (rank == 1 && k == 4 && t % 2 == 0) continue;
        std::vector<float> g(numel(kShapes[k]));
        for (int64_t i = 0; i < numel(kShapes[k]); ++i) g[i] = float(gradValue(rank, t, k, i));
        engine.addGradient(k, encode(g, dtype).data());
      }
      engine.step(kLr);
    }
    out.memory = engine.memory();
    out.device_live = device.liveBytes();
    out.host_live = host.liveBytes();
    for (size_t k = 0; k < kShapes.size(); ++k) {
      const int p = static_cast<int>(k);
      const char* values = static_cast<const char*>(engine.gather(p, p));
      out.model.insert(out.model.end(), values, values + numel(kShapes[k]) * dtypeSize(dtype));
      engine.release(p);
      for (const char* name : engine.stateBufferNames()) {
        out.state.emplace_back(numel(kShapes[k]));
        engine.gatherParamState(p, name, out.state.back().data());
      }
    }
  }
  return out;
}

std::vector<Outcome> run(int world, int stage, config::OptimizerType type, DType dtype,
                         const Offload& off) {
  std::vector<Outcome> outcomes(world);
  const auto failures = onRanks(world, [&](int r, comm::Communicator& comm) {
    outcomes[r] = runRank(r, comm, stage, type, dtype, off);
  });
  for (int r = 0; r < world; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
  return outcomes;
}

std::string describe(const Offload& off) {
  return "ratio " + std::to_string(off.ratio) + " sub_group " + std::to_string(off.sub_group) +
         (off.params ? " offload_param" : "");
}

class OffloadEquivalence : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(OffloadEquivalence, OffloadedStateGivesTheSameBitsAsStateOnTheDevice) {
  const auto [stage, world] = GetParam();
  for (auto type : {config::OptimizerType::kAdamW, config::OptimizerType::kSgd}) {
    for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      const std::vector<Outcome> base = run(world, stage, type, dtype, {});
      std::vector<Offload> offloads = {
          {true, 1.0, 0}, {true, 1.0, 24}, {true, 0.5, 8}, {true, 0.0, 0}};
      if (stage == 3) offloads.push_back({true, 1.0, 16, true});
      for (const Offload& off : offloads) {
        const std::vector<Outcome> got = run(world, stage, type, dtype, off);
        for (int r = 0; r < world; ++r) {
          EXPECT_EQ(got[r].memory.offloaded > 0, off.ratio > 0) << describe(off);
          EXPECT_EQ(got[r].model, base[r].model)
              << config::toString(type) << " " << dtypeName(dtype) << " " << describe(off);
          EXPECT_EQ(got[r].state, base[r].state)
              << config::toString(type) << " " << dtypeName(dtype) << " " << describe(off);
        }
      }
    }
  }
}

// Lamb's trust ratios need the whole step: offloaded whole, same bits.
TEST_P(OffloadEquivalence, LambOffloadedWholeGivesTheSameBits) {
  const auto [stage, world] = GetParam();
  const auto lamb = config::OptimizerType::kLamb;
  const std::vector<Outcome> base = run(world, stage, lamb, DType::kFloat32, {});
  const std::vector<Outcome> got = run(world, stage, lamb, DType::kFloat32, {true, 1.0, 16});
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(got[r].model, base[r].model);
    EXPECT_EQ(got[r].state, base[r].state);
  }
}

INSTANTIATE_TEST_SUITE_P(StagesWorlds, OffloadEquivalence,
                         ::testing::Combine(::testing::Values(1, 2, 3), ::testing::Values(2, 3)));

// Where the bytes are: offloaded, the device holds the model copy,
// gradients and buckets and no fp32 optimizer state; the host holds master,
// m and v (12 bytes per shard element for AdamW) and the staging.
TEST(Offload, TheDeviceAccountHoldsNoOptimizerState) {
  for (int stage : {1, 2, 3}) {
    for (double ratio : {1.0, 0.5}) {
      const std::vector<Outcome> got =
          run(2, stage, config::OptimizerType::kAdamW, DType::kBFloat16, {true, ratio, 0});
      const auto plan = shard::ShardPlan::build(specs(), 2, 4);
      for (const Outcome& o : got) {
        const MemoryReport& m = o.memory;
        const int64_t shard = plan.shardNumel();
        const int64_t on_host = static_cast<int64_t>(std::ceil(ratio * shard) + 15) / 16 * 16;
        const int64_t offloaded = std::min(shard, on_host);
        EXPECT_EQ(m.optimizer, 12 * (shard - offloaded)) << "stage " << stage << " ratio " << ratio;
        // fp32 master, m, v plus bf16 gradient and model staging per offloaded element.
        EXPECT_EQ(m.offloaded, (12 + 2 + 2) * offloaded) << "stage " << stage;
        EXPECT_EQ(o.host_live, m.offloaded) << "stage " << stage;
        // The device holds what the report says, and a few scalars more.
        EXPECT_GE(o.device_live, m.total());
        EXPECT_LT(o.device_live, m.total() + 1024) << "stage " << stage;
      }
    }
  }
}

TEST(Offload, LambWithARatioIsRefusedNamingTheKey) {
  const auto failures = onRanks(1, [&](int r, comm::Communicator& comm) {
    runRank(r, comm, 2, config::OptimizerType::kLamb, DType::kFloat32, {true, 0.5, 0});
  });
  EXPECT_NE(failures[0].find("offload_optimizer.ratio"), std::string::npos) << failures[0];
}

}  // namespace
}  // namespace zshard::zero
