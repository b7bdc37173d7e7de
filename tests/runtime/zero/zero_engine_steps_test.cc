// The ZeRO engine's behaviour on one step at a time: overflow skipping,
// memory, host round trips, loss-scale growth, gradients given twice or
// not at all, predivision; single engines or ranks as threads.
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/zero/zero_engine.h"
#include "tests/runtime/zero/engine_fixture.h"

namespace zshard::zero {
namespace {

using namespace fixture;

// Stage 0 at the boundary, before step(): every rank reads every
// parameter's gradient averaged over ranks and micro steps (DeepSpeed's
// p.grad), computed in double here; a further gradient is refused; an
// in-place change reaches the step (SGD: w - lr * changed gradient).
TEST(ZeroEngine, StageZeroShowsTheMeanGradientBeforeTheStep) {
  const int world = 3, accumulation = 2;
  const auto failures = onRanks(world, [&](int r, comm::Communicator& comm) {
    std::vector<float> w(5, 1.0f);
    EngineOptions o;
    o.stage = 0;
    o.param_dtype = o.grad_dtype = DType::kFloat32;
    o.accumulation_steps = accumulation;
    o.alignment = 1;
    config::OptimizerConfig sgd = optimizerOf(config::OptimizerType::kSgd);
    sgd.weight_decay = 0;
    ZeroEngine engine({{{5}, DType::kFloat32}}, {w.data()}, comm, sgd, o);
    auto grad = [](int rank, int t, int i) { return float(rank + 1) * float(t + 1) + float(i); };
    for (int t = 0; t < accumulation; ++t) {
      std::vector<float> g(5);
      for (int i = 0; i < 5; ++i) g[i] = grad(r, t, i);
      engine.addGradient(0, g.data());
      if (t + 1 < accumulation) {
        EXPECT_FALSE(engine.reduceBoundary());
        engine.step(kLr);
      }
    }
    ASSERT_TRUE(engine.reduceBoundary());
    EXPECT_FALSE(engine.reduceBoundary());  // once per window
    float* mean = static_cast<float*>(const_cast<void*>(engine.reducedGradient(0)));
    for (int i = 0; i < 5; ++i) {
      double expected = 0;
      for (int q = 0; q < world; ++q)
        for (int t = 0; t < accumulation; ++t) expected += grad(q, t, i);
      expected /= world * accumulation;
      EXPECT_NEAR(mean[i], expected, 1e-5 * expected) << i;
      mean[i] *= 0.5f;
    }
    EXPECT_THROW(engine.addGradient(0, w.data()), UsageError);
    const std::vector<float> changed(mean, mean + 5);
    ASSERT_TRUE(engine.step(kLr));
    const float* after = static_cast<const float*>(engine.parameter(0));
    for (int i = 0; i < 5; ++i) EXPECT_NEAR(after[i], 1.0f - kLr * changed[i], 1e-6) << i;
  });
  for (const std::string& f : failures) EXPECT_EQ(f, "");
}

// Stage 3's own account: the 16-bit parameters, like the optimizer state,
// fall as 1/N (the shard, alignment padding aside); a run gathered for use
// adds only its own size, and nothing once released.
TEST(ZeroEngine, StageThreeParameterBytesFallAsOneOverN) {
  const std::vector<shard::ParamSpec> params = {
      {{256, 64}, DType::kFloat32}, {{64}, DType::kFloat32}, {{64, 256}, DType::kFloat32}};
  const int64_t total = 256 * 64 * 2 + 64;
  for (int world : {1, 2, 4}) {
    std::vector<MemoryReport> reports(world);
    const auto failures = onRanks(world, [&](int r, comm::Communicator& comm) {
      std::vector<std::vector<float>> init = {std::vector<float>(256 * 64, 0.5f),
                                              std::vector<float>(64, 0.5f),
                                              std::vector<float>(64 * 256, 0.5f)};
      EngineOptions o;
      o.stage = 3;
      o.param_dtype = o.grad_dtype = DType::kFloat32;
      ZeroEngine engine(params, {init[0].data(), init[1].data(), init[2].data()}, comm, adamW(), o);
      reports[r] = engine.memory();
      engine.gather(0, 1);
      const int64_t gathered = engine.memory().parameters - reports[r].parameters;
      EXPECT_EQ(gathered, int64_t(256 * 64 + 64) * 4);
      engine.release(0);
      EXPECT_EQ(engine.memory().parameters, reports[r].parameters);
    });
    for (const std::string& f : failures) EXPECT_EQ(f, "");
    for (const MemoryReport& m : reports) {
      EXPECT_GE(m.parameters * world, total * 4) << world;
      EXPECT_LE(m.parameters * world, (total + 16 * world) * 4)
          << world;  // padding to the alignment
      EXPECT_LE(m.optimizer * world, (total + 16 * world) * 4 * 3) << world;  // master, m, v
    }
  }
}

// What predividing is for: fp16 gradients whose sum over ranks overflows
// (2 x 40000 > 65504) skip the step; divided by 2 first, they do not.
TEST(ZeroEngine, PredividingKeepsFp16SumsInRange) {
  for (int stage : {1, 2}) {
    for (double prescale : {1.0, 0.5}) {
      const int world = 2;
      rendezvous::HashStore store;
      std::vector<int64_t> skipped(world, -1);
      std::vector<std::thread> threads;
      for (int r = 0; r < world; ++r) {
        threads.emplace_back([&, r] {
          auto comm = comm::makeGlooCommunicator(store, r, world);
          std::vector<float> a(8, 0.5f);
          EngineOptions o;
          o.stage = stage;
          o.param_dtype = o.grad_dtype = DType::kFloat16;
          o.loss_scaling = true;
          o.loss_scaler.initial_scale_power = 0;
          o.grad_prescale = prescale;
          ZeroEngine engine({{{8}, DType::kFloat16}}, {a.data()}, *comm, adamW(), o);
          engine.addGradient(0, encode(std::vector<float>(8, 40000.f), DType::kFloat16).data());
          engine.step(kLr);
          skipped[r] = engine.skippedSteps();
        });
      }
      for (auto& t : threads) t.join();
      for (int64_t n : skipped) EXPECT_EQ(n, prescale == 1.0 ? 1 : 0) << "stage " << stage;
    }
  }
}

// fp16 with dynamic loss scaling: rank 1 produces an inf at micro step 3;
// every rank skips that step and the scale halves (hysteresis 1).
TEST(ZeroEngine, InfOnOneRankSkipsTheStepEverywhereAndHalvesTheScale) {
  const int world = 3;
  rendezvous::HashStore store;
  std::vector<std::string> failures(world);
  std::vector<std::thread> threads;
  std::mutex log_mutex;
  std::vector<std::string> logged;
  setLogSink([&](LogLevel, const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mutex);
    logged.push_back(line);
  });
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto comm = comm::makeGlooCommunicator(store, r, world);
        std::vector<std::vector<float>> init;
        std::vector<const float*> ptrs;
        for (size_t k = 0; k < kShapes.size(); ++k) {
          init.emplace_back(numel(kShapes[k]), 0.5f);
          ptrs.push_back(init[k].data());
        }
        EngineOptions o;
        o.param_dtype = o.grad_dtype = DType::kFloat16;
        o.bucket_numel = 64;
        o.loss_scaling = true;
        o.loss_scaler.initial_scale_power = 8;
        o.loss_scaler.hysteresis = 1;
        ZeroEngine engine(specs(), ptrs, *comm, adamW(), o);
        for (int t = 0; t < 6; ++t) {
          const double scale = engine.lossScale();
          std::vector<char> before(static_cast<char*>(engine.parameter(0)),
                                   static_cast<char*>(engine.parameter(0)) + 91 * 2);
          for (int k = static_cast<int>(kShapes.size()) - 1; k >= 0; --k) {
            std::vector<float> g(numel(kShapes[k]));
            for (int64_t i = 0; i < numel(kShapes[k]); ++i)
              g[i] = float(gradValue(r, t, k, i) * scale);
            if (t == 3 && r == 1 && k == 2) g[5] = INFINITY;
            engine.addGradient(k, encode(g, DType::kFloat16).data());
          }
          const bool stepped = engine.step(kLr);
          const bool unchanged =
              std::memcmp(before.data(), engine.parameter(0), before.size()) == 0;
          if (t == 3) {
            if (stepped || !unchanged) throw Error("step 3 was not skipped");
            if (engine.lossScale() != 128.0)
              throw Error("scale not halved: " + std::to_string(engine.lossScale()));
          } else if (!stepped || unchanged) {
            throw Error("step " + std::to_string(t) + " did not update");
          }
        }
        if (engine.skippedSteps() != 1 || engine.optimizerSteps() != 5)
          throw Error("wrong step counts");
      } catch (const std::exception& e) {
        failures[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  setLogSink(nullptr);
  for (int r = 0; r < world; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
  int skip_lines = 0;
  for (const auto& line : logged) {
    if (line.find("skipping step 3 at loss scale 256; scale reduced to 128") != std::string::npos)
      ++skip_lines;
  }
  EXPECT_EQ(skip_lines, world);  // every rank logs its skip with the scale
}

// 16-bit parameters: stage 2 holds 2Ψ + 14Ψ/N bytes (+ buckets), stage 1
// 4Ψ + 12Ψ/N, within 5%.
TEST(ZeroEngine, MemoryMatchesTheZeroFormulas) {
  const int world = 4;
  const std::vector<shard::ParamSpec> big = {{{1000, 1000}, DType::kBFloat16},
                                             {{500, 1000}, DType::kBFloat16}};
  const double psi = 1.5e6;
  for (int stage : {1, 2}) {
    rendezvous::HashStore store;
    std::vector<MemoryReport> reports(world);
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      threads.emplace_back([&, r] {
        auto comm = comm::makeGlooCommunicator(store, r, world);
        std::vector<float> a(1000000, 0.1f), b(500000, 0.2f);
        EngineOptions o;
        o.stage = stage;
        o.bucket_numel = 100000;
        ZeroEngine engine(big, {a.data(), b.data()}, *comm, adamW(), o);
        std::vector<char> g(1000000 * 2, 0);
        engine.addGradient(1, g.data());
        engine.addGradient(0, g.data());
        engine.step(kLr);
        reports[r] = engine.memory();
      });
    }
    for (auto& t : threads) t.join();
    const double expected = stage == 2 ? 2 * psi + 14 * psi / world : 4 * psi + 12 * psi / world;
    for (const MemoryReport& m : reports) {
      const double held = static_cast<double>(m.total() - m.buckets);
      EXPECT_NEAR(held / expected, 1.0, 0.05) << "stage " << stage << " held " << held;
      if (stage == 2) EXPECT_LE(m.buckets, 2 * 100000 * 2 + 64);  // double-buffered buckets
      if (stage == 1) EXPECT_EQ(m.buckets, 0);
    }
  }
}

// fp32 parameters are their own master weights (DeepSpeed's fp32 stage 0
// steps the parameters too): AdamW holds 8 bytes per shard element, not 12,
// the parameters read back are the master's values, and they still step
// as the reference does (zero_engine_test.cc); 16-bit parameters keep a
// separate fp32 master.
TEST(ZeroEngine, Fp32ParametersAreTheirOwnMaster) {
  const int world = 2;
  for (int stage : {0, 1, 2, 3}) {
    for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      const auto failures = onRanks(world, [&](int r, comm::Communicator& comm) {
        std::vector<float> a(1000, 0.5f), b(24, -0.25f);
        EngineOptions o;
        o.stage = stage;
        o.param_dtype = o.grad_dtype = dtype;
        o.alignment = 4;
        ZeroEngine engine({{{1000}, dtype}, {{24}, dtype}}, {a.data(), b.data()}, comm, adamW(), o);
        const int64_t shard = (1024 / world) * 4;  // bytes of one fp32 buffer of the shard
        EXPECT_EQ(engine.memory().optimizer, (dtype == DType::kFloat32 ? 2 : 3) * shard)
            << "stage " << stage << " " << dtypeName(dtype);
        for (int t = 0; t < 3; ++t) {
          engine.addGradient(1, encode(std::vector<float>(24, 0.1f * (r + 1)), dtype).data());
          engine.addGradient(0, encode(std::vector<float>(1000, -0.2f), dtype).data());
          ASSERT_TRUE(engine.step(kLr));
        }
        if (dtype != DType::kFloat32) return;
        std::vector<float> master(1000);
        engine.gatherParamState(0, "master", master.data());
        const float* p = static_cast<const float*>(engine.gather(0, 0));
        for (int i = 0; i < 1000; ++i) ASSERT_EQ(p[i], master[i]) << i;
        EXPECT_NE(master[0], 0.5f);  // it stepped
        engine.release(0);
      });
      for (const std::string& f : failures) EXPECT_EQ(f, "");
    }
  }
}

// The host backend, counting the calls that wait for the device on a GPU
// (a value or memory coming back to the host).
class CountingBackend : public kernels::CpuBackend {
 public:
  int round_trips = 0;
  std::string name() const override { return "counting-cpu"; }
  void copyToHost(void* d, const void* s, size_t n) override {
    ++round_trips;
    CpuBackend::copyToHost(d, s, n);
  }
  void synchronize() override { ++round_trips; }
  bool unscale(kernels::View x, int64_t n, float mult) override {
    ++round_trips;
    return CpuBackend::unscale(x, n, mult);
  }
  bool hasNonFinite(kernels::ConstView x, int64_t n) override {
    ++round_trips;
    return CpuBackend::hasNonFinite(x, n);
  }
  double squaredNorm(kernels::ConstView x, int64_t n) override {
    ++round_trips;
    return CpuBackend::squaredNorm(x, n);
  }
};

// One host wait per optimizer step (the overflow flag and the norm come
// back together), none per gradient, with clipping, fp16 loss scaling and
// predivision all on; the GPU backend runs the same calls.
TEST(ZeroEngine, OneHostRoundTripPerStep) {
  for (int stage : {1, 2}) {
    const int world = 2;
    rendezvous::HashStore store;
    std::vector<std::vector<int>> trips(world);
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      threads.emplace_back([&, r] {
        auto comm = comm::makeGlooCommunicator(store, r, world);
        CountingBackend backend;
        std::vector<std::vector<float>> init;
        std::vector<const float*> ptrs;
        for (const auto& shape : kShapes) {
          init.emplace_back(numel(shape), 0.25f);
          ptrs.push_back(init.back().data());
        }
        EngineOptions o;
        o.backend = &backend;
        o.stage = stage;
        o.param_dtype = o.grad_dtype = DType::kFloat16;
        o.bucket_numel = 40;
        o.gradient_clipping = 0.5;
        o.loss_scaling = true;
        o.grad_prescale = 0.5;
        o.accumulation_steps = 2;
        ZeroEngine engine(specs(), ptrs, *comm, adamW(), o);
        for (int t = 0; t < 6; ++t) {
          backend.round_trips = 0;
          for (int k = static_cast<int>(kShapes.size()) - 1; k >= 0; --k) {
            std::vector<float> g(numel(kShapes[k]), 0.01f * float(k + 1));
            engine.addGradient(k, encode(g, DType::kFloat16).data());
          }
          engine.step(kLr);
          trips[r].push_back(backend.round_trips);
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int r = 0; r < world; ++r) {
      EXPECT_EQ(trips[r], (std::vector<int>{0, 1, 0, 1, 0, 1})) << "stage " << stage;
    }
  }
}

// The gradients of a step carry the loss scale they were produced with,
// also at the step where the dynamic scaler raises it for the next one.
// Before, that step was divided by the new scale: half the update.
TEST(ZeroEngine, AStepWhereTheLossScaleGrowsUsesTheScaleItsGradientsHave) {
  rendezvous::HashStore store;
  auto comm = comm::makeGlooCommunicator(store, 0, 1);
  std::vector<float> a(16, 1.0f);
  EngineOptions o;
  o.param_dtype = o.grad_dtype = DType::kFloat32;
  o.loss_scaling = true;
  o.loss_scaler.initial_scale_power = 4;
  o.loss_scaler.scale_window = 1;  // the scale doubles after every good step
  config::OptimizerConfig sgd = optimizerOf(config::OptimizerType::kSgd);
  sgd.momentum = 0;
  sgd.weight_decay = 0;
  ZeroEngine engine({{{16}, DType::kFloat32}}, {a.data()}, *comm, sgd, o);
  for (int t = 0; t < 4; ++t) {
    const double scale = engine.lossScale();
    std::vector<float> g(16, float(0.5 * scale));
    engine.addGradient(0, g.data());
    ASSERT_TRUE(engine.step(0.25f));
    EXPECT_EQ(engine.lossScale(), 2 * scale);
    EXPECT_NEAR(engine.lastGradNorm(), 0.5 * 4, 1e-9);  // sqrt(16) * 0.5
    const float p = *static_cast<float*>(engine.parameter(0));
    EXPECT_NEAR(p, 1.0 - 0.125 * (t + 1), 1e-6) << "step " << t;
  }
}

TEST(ZeroEngine, RefusesABadStageAndBadInput) {
  rendezvous::HashStore store;
  auto comm = comm::makeGlooCommunicator(store, 0, 1);
  std::vector<float> a(4);
  EngineOptions o;
  o.stage = 4;
  EXPECT_THROW(ZeroEngine({{{4}, DType::kFloat32}}, {a.data()}, *comm, adamW(), o), ConfigError);
  o.stage = 3;  // only a shard: parameters are gathered, not addressed
  EXPECT_THROW(ZeroEngine({{{4}, DType::kFloat32}}, {a.data()}, *comm, adamW(), o).parameter(0),
               UsageError);
  o.stage = 2;
  EXPECT_THROW(ZeroEngine({{{4}, DType::kFloat32}}, {}, *comm, adamW(), o), Error);
  ZeroEngine engine({{{4}, DType::kFloat32}}, {a.data()}, *comm, adamW(), o);
  std::vector<char> g(16, 0);
  engine.addGradient(0, g.data());
  EXPECT_THROW(engine.addGradient(0, g.data()), Error);  // twice in one micro step
}

// Two backward passes in one micro step (re-entrant activation
// checkpointing) give a parameter two gradients: they are summed, or
// refused naming the parameter once its bucket went (stage 2, and stage 1
// with overlap_comm, whose boundary reduces buckets during backward).
TEST(ZeroEngine, ASecondGradientInOneMicroStepIsSummedWhileItsBucketWaits) {
  for (auto [stage, overlap] :
       std::vector<std::pair<int, bool>>{{1, false}, {1, true}, {2, true}}) {
    SCOPED_TRACE("stage " + std::to_string(stage) + " overlap " + std::to_string(overlap));
    const bool refused = overlap;
    rendezvous::HashStore store;
    auto comm = comm::makeGlooCommunicator(store, 0, 1);
    std::vector<float> a(8, 1.f), b(8, 1.f);
    EngineOptions o;
    o.stage = stage;
    o.overlap_comm = overlap;
    o.param_dtype = o.grad_dtype = DType::kFloat32;
    o.bucket_numel = 8;  // one bucket per parameter
    o.alignment = 8;
    o.param_names = {"first", "last"};
    config::OptimizerConfig sgd = optimizerOf(config::OptimizerType::kSgd);
    sgd.momentum = 0;
    sgd.weight_decay = 0;
    ZeroEngine engine({{{8}, DType::kFloat32}, {{8}, DType::kFloat32}}, {a.data(), b.data()}, *comm,
                      sgd, o);
    const std::vector<float> g(8, 0.25f);
    engine.addGradient(0, g.data());  // "first" waits for the later bucket
    engine.addGradient(0, g.data());
    engine.addGradient(1, g.data());  // now both go
    if (refused) {
      try {
        engine.addGradient(1, g.data());
        ADD_FAILURE() << "a gradient after its bucket's reduction was accepted";
      } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("last: got a second gradient"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("overlap_comm"), std::string::npos) << e.what();
      }
    } else {
      engine.addGradient(1, g.data());
    }
    ASSERT_TRUE(engine.step(1.0f));
    EXPECT_FLOAT_EQ(*static_cast<float*>(engine.parameter(0)), 0.5f);
    EXPECT_FLOAT_EQ(*static_cast<float*>(engine.parameter(1)), refused ? 0.75f : 0.5f);
  }
}

TEST(ZeroEngine, AnUnusedParameterIsAnErrorNamingItWhenNotIgnored) {
  for (int stage : {1, 2}) {
    rendezvous::HashStore store;
    auto comm = comm::makeGlooCommunicator(store, 0, 1);
    std::vector<float> a(4), b(3);
    EngineOptions o;
    o.stage = stage;
    o.param_dtype = o.grad_dtype = DType::kFloat32;
    o.ignore_unused_parameters = false;
    o.param_names = {"encoder.weight", "head.bias"};
    ZeroEngine engine({{{4}, DType::kFloat32}, {{3}, DType::kFloat32}}, {a.data(), b.data()}, *comm,
                      adamW(), o);
    std::vector<float> g(4, 1.f);
    engine.addGradient(1, g.data());
    engine.addGradient(0, g.data());
    EXPECT_TRUE(engine.step(kLr));
    engine.addGradient(0, g.data());
    try {
      engine.step(kLr);
      ADD_FAILURE() << "an unused parameter was accepted";
    } catch (const UsageError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("rank 0 got no gradient for 1 parameter(s)"), std::string::npos) << what;
      EXPECT_NE(what.find("head.bias"), std::string::npos) << what;
      EXPECT_EQ(what.find("encoder.weight"), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace zshard::zero
