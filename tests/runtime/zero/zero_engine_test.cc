// ZeRO-1/2 against an independent single-process AdamW (and Lamb, SGD) in
// double on the averaged gradients; ranks as threads over a HashStore and as
// forked processes over a TcpStore (the real path). One-step behaviours are
// in zero_engine_steps_test.cc.
#include "runtime/zero/zero_engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <thread>

#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/rendezvous/tcp_store.h"
#include "tests/runtime/zero/engine_fixture.h"
#include "tests/support/store_server.h"

namespace zshard::zero {
namespace {

using namespace std::chrono_literals;
using namespace fixture;

struct Scenario {
  int stage = 2;
  DType dtype = DType::kFloat32;  // params and grads
  int accumulation = 2;
  double clipping = 0.5;
  int64_t bucket = 40;  // elements: many buckets, straddling parameters
  config::OptimizerType optimizer = config::OptimizerType::kAdamW;
  // Ranks leave out different parameters on different micro steps (a
  // branch, MoE): those count as zero gradients.
  bool unused = false;
  bool overlap = true;
  double prescale = 1.0;  // gradient_predivide_factor / prescale_gradients
  // Parameter groups: every other parameter in a group with no decay, half
  // the lr, betas (0.8, 0.99) and eps 1e-6 (Adam/Lamb) of its own.
  bool groups = false;
};

// What parameter p is stepped with: optimizerOf's settings, or its group's.
struct Hyper {
  double lr = kLr, wd = double(0.01f), b1 = double(0.9f), b2 = double(0.999f), eps = double(1e-8f);
};
Hyper hyperOf(const Scenario& s, size_t p) {
  if (!s.groups) return {};
  if (p % 2 == 0) return {kLr, double(0.05f), double(0.9f), double(0.999f), double(1e-8f)};
  return {double(kLr * 0.5f), 0.0, double(0.8f), double(0.99f), double(1e-6f)};
}

optim::ParamGroups groupsOf(const Scenario& s) {
  optim::ParamGroups g;
  if (!s.groups) return g;
  g.groups.resize(2);
  g.groups[0].weight_decay = 0.05f;
  g.groups[1].weight_decay = 0.0;
  g.groups[1].betas = std::array<double, 2>{0.8f, 0.99f};
  g.groups[1].eps = 1e-6f;
  for (size_t k = 0; k < kShapes.size(); ++k) g.param_group.push_back(int(k % 2));
  return g;
}

std::vector<float> lrsOf(const Scenario& s) {
  return s.groups ? std::vector<float>{kLr, kLr * 0.5f} : std::vector<float>{kLr};
}

// Whether rank r computes a gradient for parameter p at micro step t.
bool uses(const Scenario& s, int r, int t, size_t p) {
  return !s.unused || (r + 2 * t + int(p)) % 3 != 0 || (r == 0 && p == 0);
}

// The optimizers in double on the mean over ranks and micro steps, with
// DeepSpeed's clipping; written from their papers' formulas (AdamW; Lamb
// with a per-parameter trust ratio clamped to [min_coeff, max_coeff]; SGD
// with momentum, torch semantics), not from zshard.
std::vector<std::vector<double>> reference(int world, const Scenario& s) {
  std::vector<std::vector<double>> p, m, v;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    std::vector<double> x(numel(kShapes[k]));
    for (int64_t i = 0; i < numel(kShapes[k]); ++i) x[i] = float(initialValue(k, i));
    p.push_back(x);
    m.emplace_back(x.size(), 0.0);
    v.emplace_back(x.size(), 0.0);
  }
  for (int step = 1; step <= kSteps; ++step) {
    std::vector<std::vector<double>> g;
    double sq = 0;
    for (size_t k = 0; k < kShapes.size(); ++k) {
      g.emplace_back(p[k].size(), 0.0);
      for (int64_t i = 0; i < numel(kShapes[k]); ++i) {
        for (int r = 0; r < world; ++r) {
          for (int a = 0; a < s.accumulation; ++a) {
            const int t = (step - 1) * s.accumulation + a;
            if (uses(s, r, t, k)) g[k][i] += float(gradValue(r, t, k, i));
          }
        }
        g[k][i] /= world * s.accumulation;
        sq += g[k][i] * g[k][i];
      }
    }
    const double norm = std::sqrt(sq);
    const double clip =
        s.clipping > 0 && (norm + 1e-6) / s.clipping > 1 ? (norm + 1e-6) / s.clipping : 1;
    for (size_t k = 0; k < kShapes.size(); ++k) {
      const Hyper h = hyperOf(s, k);
      const double wd = h.wd, b1 = h.b1, b2 = h.b2, eps = h.eps, lr = h.lr;
      const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
      std::vector<double> update(p[k].size());
      double wn = 0, un = 0;
      for (size_t i = 0; i < p[k].size(); ++i) {
        const double gi = g[k][i] / clip;
        if (s.optimizer == config::OptimizerType::kSgd) {
          const double d = gi + wd * p[k][i];  // torch SGD: L2 decay in the gradient
          m[k][i] = step == 1 ? d : double(0.9f) * m[k][i] + d;
          update[i] = m[k][i];
          continue;
        }
        m[k][i] = b1 * m[k][i] + (1 - b1) * gi;
        v[k][i] = b2 * v[k][i] + (1 - b2) * gi * gi;
        update[i] = (m[k][i] / bc1) / (std::sqrt(v[k][i] / bc2) + eps) + wd * p[k][i];
        wn += p[k][i] * p[k][i];
        un += update[i] * update[i];
      }
      double ratio = 1;
      if (s.optimizer == config::OptimizerType::kLamb && wn > 0 && un > 0) {
        ratio = std::min(10.0, std::max(double(0.01), std::sqrt(wn) / std::sqrt(un)));
      }
      for (size_t i = 0; i < p[k].size(); ++i) p[k][i] -= lr * ratio * update[i];
    }
  }
  return p;
}

// One rank's whole run; returns the max relative error of its final
// parameters against the reference (norm-wise per parameter).
double runRank(int rank, int world, rendezvous::Store& store, const Scenario& s) {
  comm::GlooOptions gloo;
  gloo.timeout = 30s;
  auto comm = comm::makeGlooCommunicator(store, rank, world, gloo);
  std::vector<std::vector<float>> init;
  std::vector<const float*> init_ptrs;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    init.emplace_back(numel(kShapes[k]));
    for (int64_t i = 0; i < numel(kShapes[k]); ++i) init[k][i] = float(initialValue(k, i));
    init_ptrs.push_back(init[k].data());
  }
  EngineOptions o;
  o.stage = s.stage;
  o.param_dtype = o.grad_dtype = s.dtype;
  o.bucket_numel = s.bucket;
  o.overlap_comm = s.overlap;
  o.grad_prescale = s.prescale;
  o.param_groups = groupsOf(s);
  o.alignment = 4;
  o.accumulation_steps = s.accumulation;
  o.gradient_clipping = s.clipping;
  o.timeout = 30s;
  ZeroEngine engine(specs(), init_ptrs, *comm, optimizerOf(s.optimizer), o);
  for (int t = 0; t < kSteps * s.accumulation; ++t) {
    // Backward order: last parameter first, as hooks fire.
    for (int k = static_cast<int>(kShapes.size()) - 1; k >= 0; --k) {
      if (!uses(s, rank, t, k)) continue;
      std::vector<float> g(numel(kShapes[k]));
      for (int64_t i = 0; i < numel(kShapes[k]); ++i) g[i] = float(gradValue(rank, t, k, i));
      engine.addGradient(k, encode(g, s.dtype).data());
    }
    const bool stepped = engine.step(lrsOf(s));
    if (stepped != ((t + 1) % s.accumulation == 0)) throw Error("stepped at the wrong micro step");
  }
  const auto ref = reference(world, s);
  double worst = 0;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    double diff = 0, base = 0;
    // Stage 3 keeps a shard: the parameter is gathered (collective) to be read.
    const int p = static_cast<int>(k);
    const char* values = static_cast<const char*>(engine.gather(p, p));
    for (int64_t i = 0; i < numel(kShapes[k]); ++i) {
      float got;
      kernels::cast({values + i * dtypeSize(s.dtype), s.dtype}, {&got, DType::kFloat32}, 1);
      diff = std::max(diff, std::fabs(double(got) - ref[k][i]));
      base = std::max(base, std::fabs(ref[k][i]));
    }
    engine.release(p);
    worst = std::max(worst, diff / base);
  }
  return worst;
}

// Ranks as threads over one HashStore.
std::vector<double> onThreads(int world, const Scenario& s) {
  rendezvous::HashStore store;
  std::vector<double> errors(world, -1);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        errors[r] = runRank(r, world, store, s);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "rank " << r << ": " << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

class ZeroEquivalence : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(ZeroEquivalence, Fp32MatchesSingleProcessAdamWOnThreads) {
  Scenario s;
  s.stage = std::get<0>(GetParam());
  const int world = std::get<1>(GetParam());
  for (double err : onThreads(world, s)) {
    EXPECT_GE(err, 0);
    EXPECT_LT(err, 1e-6);
  }
}

TEST_P(ZeroEquivalence, Fp32MatchesSingleProcessAdamWInProcessesOverTcp) {
  Scenario s;
  s.stage = std::get<0>(GetParam());
  const int world = std::get<1>(GetParam());
  auto [server, port] = testing::forkTcpStoreServer("tok");
  const auto codes = testing::runRanks(
      world,
      [&, port = port](int rank) {
        rendezvous::TcpStore store("127.0.0.1", port, "tok", 10s);
        const double err = runRank(rank, world, store, s);
        std::fprintf(stderr, "stage %d world %d rank %d: max relative error %.3g\n", s.stage, world,
                     rank, err);
        return err < 1e-6 ? 0 : 2;
      },
      120s);
  EXPECT_EQ(codes, std::vector<int>(world, 0));
}

INSTANTIATE_TEST_SUITE_P(StagesWorlds, ZeroEquivalence,
                         ::testing::Combine(::testing::Values(0, 1, 2, 3),
                                            ::testing::Values(1, 2, 3, 4)));

// Ranks that use different parameters (each rank skips others on each
// micro step) still sum the right gradients: the reductions pair up by a
// fixed order, not by arrival. Before the fix stage 2 summed one rank's
// bucket with another rank's different bucket.
TEST_P(ZeroEquivalence, RanksUsingDifferentParametersMatchTheReference) {
  for (bool overlap : {true, false}) {
    Scenario s;
    s.stage = std::get<0>(GetParam());
    s.unused = true;
    s.overlap = overlap;
    const int world = std::get<1>(GetParam());
    for (double err : onThreads(world, s)) {
      EXPECT_GE(err, 0);
      EXPECT_LT(err, 1e-6) << "overlap_comm " << overlap;
    }
  }
}

// Clipping hides any constant factor in the gradients, and so does Adam;
// SGD without clipping sees a wrong averaging divisor (over ranks and
// micro steps) directly.
TEST_P(ZeroEquivalence, UnclippedSgdSeesTheAveragingDivisor) {
  for (auto type : {config::OptimizerType::kSgd, config::OptimizerType::kAdamW}) {
    Scenario s;
    s.stage = std::get<0>(GetParam());
    s.clipping = 0;
    s.optimizer = type;
    const int world = std::get<1>(GetParam());
    for (double err : onThreads(world, s)) {
      EXPECT_GE(err, 0);
      EXPECT_LT(err, 1e-6) << config::toString(type);
    }
  }
}

// Dividing before the reduction (1/world: prescale_gradients; 1/3:
// gradient_predivide_factor 3) gives the same mean, clipped or not.
TEST_P(ZeroEquivalence, PrescaledGradientsGiveTheSameMean) {
  const int world = std::get<1>(GetParam());
  for (double prescale : {1.0 / world, 1.0 / 3}) {
    for (double clipping : {0.0, 0.5}) {
      Scenario s;
      s.stage = std::get<0>(GetParam());
      s.optimizer = config::OptimizerType::kSgd;
      s.prescale = prescale;
      s.clipping = clipping;
      for (double err : onThreads(world, s)) {
        EXPECT_GE(err, 0);
        EXPECT_LT(err, 1e-6) << "prescale " << prescale << " clipping " << clipping;
      }
    }
  }
}

// Parameter groups: each parameter stepped with its group's lr, weight
// decay, betas and eps, for every optimizer, also where a shard boundary
// splits a parameter.
TEST(ZeroEngine, ParameterGroupsUseTheirOwnSettings) {
  for (auto type :
       {config::OptimizerType::kAdamW, config::OptimizerType::kLamb, config::OptimizerType::kSgd}) {
    for (int stage : {1, 2}) {
      for (int world : {1, 3}) {
        Scenario s;
        s.optimizer = type;
        s.stage = stage;
        s.groups = true;
        const double tolerance = type == config::OptimizerType::kLamb ? 2e-6 : 1e-6;
        for (double err : onThreads(world, s)) {
          EXPECT_GE(err, 0);
          EXPECT_LT(err, tolerance)
              << config::toString(type) << " stage " << stage << " world " << world;
        }
      }
    }
  }
}

TEST(ZeroEngine, LambAndSgdMatchTheirReferences) {
  for (auto type : {config::OptimizerType::kLamb, config::OptimizerType::kSgd}) {
    for (int world : {1, 3}) {
      Scenario s;
      s.optimizer = type;
      // Lamb's trust ratio (a quotient of two norms) roughly doubles the
      // fp32 reduction error seen by AdamW.
      const double tolerance = type == config::OptimizerType::kLamb ? 2e-6 : 1e-6;
      for (double err : onThreads(world, s)) {
        EXPECT_LT(err, tolerance) << config::toString(type) << " world " << world;
      }
    }
  }
}

TEST(ZeroEngine, SixteenBitStaysWithinRounding) {
  // 16-bit gradients carry 2^-8 (bf16) or 2^-11 (fp16) relative error and
  // the model copy is rounded likewise; Adam's update is about lr per step,
  // so after 20 steps the weights stay within a few percent of their range.
  for (DType dtype : {DType::kBFloat16, DType::kFloat16}) {
    for (int stage : {1, 2}) {
      Scenario s;
      s.stage = stage;
      s.dtype = dtype;
      const double tolerance = dtype == DType::kBFloat16 ? 0.03 : 0.005;
      for (double err : onThreads(3, s))
        EXPECT_LT(err, tolerance) << dtypeName(dtype) << " stage " << stage;
    }
  }
}

}  // namespace
}  // namespace zshard::zero

namespace zshard::zero {
namespace {

// DeepSpeed's 5e8 default makes every smaller model one bucket (nothing of
// the reduction overlaps backward): unset, the bucket is a quarter of the
// model, within [2^20, 5e8] elements.
TEST(DefaultBucket, AQuarterOfTheModelBetween2To20And5e8) {
  EXPECT_EQ(defaultBucketNumel(1000), int64_t{1} << 20);
  EXPECT_EQ(defaultBucketNumel(int64_t{40} << 20), int64_t{10} << 20);
  EXPECT_EQ(defaultBucketNumel((int64_t{40} << 20) + 1), (int64_t{10} << 20) + 1);
  EXPECT_EQ(defaultBucketNumel(int64_t{7} << 30), 500000000);
}

}  // namespace
}  // namespace zshard::zero
