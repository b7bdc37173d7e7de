// ZeRO-1/2 against an independent single-process AdamW in double on the
// averaged gradients; ranks as threads over a HashStore and as forked
// processes over a TcpStore (the real path); overflow skipping; memory.
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
#include "tests/support/store_server.h"

namespace zshard::zero {
namespace {

using namespace std::chrono_literals;

const std::vector<std::vector<int64_t>> kShapes = {{13, 7}, {50}, {3, 3, 3}, {1}, {129}};
constexpr int kSteps = 20;
constexpr float kLr = 1e-2f;

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
  bool groups = false;    // parameter groups: every other parameter without decay
};

// The weight decay of parameter p (optimizerOf's 0.01 unless groups).
double decayOf(const Scenario& s, size_t p) {
  return s.groups ? (p % 2 == 0 ? double(0.05f) : 0.0) : double(0.01f);
}

// Whether rank r computes a gradient for parameter p at micro step t.
bool uses(const Scenario& s, int r, int t, size_t p) {
  return !s.unused || (r + 2 * t + int(p)) % 3 != 0 || (r == 0 && p == 0);
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

double initialValue(size_t p, int64_t i) {
  return std::cos(0.3 * double(i) + double(p));
}
// The gradient rank r computes at micro step t.
double gradValue(int r, int t, size_t p, int64_t i) {
  return std::sin(0.1 * double(i + 1) * double(t + 1) + 0.7 * r + double(p)) * (1 + 0.5 * r);
}

config::OptimizerConfig optimizerOf(config::OptimizerType type) {
  config::OptimizerConfig c;
  c.type = type;
  c.given = true;
  c.lr = kLr;
  c.betas = {0.9, 0.999};
  c.eps = 1e-8;
  c.weight_decay = 0.01;
  c.adam_w_mode = true;
  c.bias_correction = true;
  c.momentum = 0.9;
  c.max_coeff = 10;
  c.min_coeff = 0.01;
  return c;
}

config::OptimizerConfig adamW() {
  return optimizerOf(config::OptimizerType::kAdamW);
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
  const double lr = kLr, eps = double(1e-8f);
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
    const double b1 = 0.9f, b2 = 0.999f, bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
    for (size_t k = 0; k < kShapes.size(); ++k) {
      const double wd = decayOf(s, k);
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

std::vector<char> encode(const std::vector<float>& values, DType dtype) {
  std::vector<char> out(values.size() * dtypeSize(dtype));
  kernels::cast({values.data(), DType::kFloat32}, {out.data(), dtype},
                static_cast<int64_t>(values.size()));
  return out;
}

std::vector<shard::ParamSpec> specs() {
  std::vector<shard::ParamSpec> out;
  for (const auto& s : kShapes) out.push_back({s, DType::kFloat32});
  return out;
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
  if (s.groups) {
    for (size_t k = 0; k < kShapes.size(); ++k) o.param_weight_decay.push_back(decayOf(s, k));
  }
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
    const bool stepped = engine.step(kLr);
    if (stepped != ((t + 1) % s.accumulation == 0)) throw Error("stepped at the wrong micro step");
  }
  const auto ref = reference(world, s);
  double worst = 0;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    double diff = 0, base = 0;
    for (int64_t i = 0; i < numel(kShapes[k]); ++i) {
      float got;
      kernels::cast(
          {static_cast<char*>(engine.parameter(static_cast<int>(k))) + i * dtypeSize(s.dtype),
           s.dtype},
          {&got, DType::kFloat32}, 1);
      diff = std::max(diff, std::fabs(double(got) - ref[k][i]));
      base = std::max(base, std::fabs(ref[k][i]));
    }
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
                         ::testing::Combine(::testing::Values(1, 2),
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

// Parameter groups: each parameter stepped with its group's weight decay,
// for every optimizer, also where a shard boundary splits a parameter.
TEST(ZeroEngine, ParameterGroupsUseTheirOwnWeightDecay) {
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

// The host backend, counting the calls that wait for the device on a GPU
// (a value or memory coming back to the host).
class CountingBackend : public kernels::Backend {
 public:
  int round_trips = 0;
  kernels::Backend& b = kernels::cpuBackend();
  std::string name() const override { return "counting-cpu"; }
  bool onHost() const override { return true; }
  void* allocate(size_t bytes) override { return b.allocate(bytes); }
  void release(void* p) override { b.release(p); }
  void copy(void* d, const void* s, size_t n) override { b.copy(d, s, n); }
  void copyToHost(void* d, const void* s, size_t n) override {
    ++round_trips;
    b.copyToHost(d, s, n);
  }
  void copyFromHost(void* d, const void* s, size_t n) override { b.copyFromHost(d, s, n); }
  void zero(void* p, size_t n) override { b.zero(p, n); }
  void synchronize() override {
    ++round_trips;
    b.synchronize();
  }
  void* stream() const override { return nullptr; }
  void waitForStream(void* s) override { b.waitForStream(s); }
  void adamStep(float* master, float* m, float* v, kernels::ConstView g, kernels::View model,
                int64_t n, const kernels::AdamHyper& h, float gs) override {
    b.adamStep(master, m, v, g, model, n, h, gs);
  }
  void sgdStep(float* master, float* buf, kernels::ConstView g, kernels::View model, int64_t n,
               const kernels::SgdHyper& h, float gs) override {
    b.sgdStep(master, buf, g, model, n, h, gs);
  }
  void lambUpdate(const float* master, float* m, float* v, kernels::ConstView g, float* u,
                  int64_t n, const kernels::AdamHyper& h, float gs) override {
    b.lambUpdate(master, m, v, g, u, n, h, gs);
  }
  void applyUpdate(float* master, const float* u, float a, kernels::View model,
                   int64_t n) override {
    b.applyUpdate(master, u, a, model, n);
  }
  bool unscale(kernels::View x, int64_t n, float mult) override {
    ++round_trips;
    return b.unscale(x, n, mult);
  }
  bool hasNonFinite(kernels::ConstView x, int64_t n) override {
    ++round_trips;
    return b.hasNonFinite(x, n);
  }
  double squaredNorm(kernels::ConstView x, int64_t n) override {
    ++round_trips;
    return b.squaredNorm(x, n);
  }
  void nonFiniteAndNorm(kernels::ConstView x, int64_t n, double* out) override {
    b.nonFiniteAndNorm(x, n, out);
  }
  void scale(kernels::View x, int64_t n, float s) override { b.scale(x, n, s); }
  void cast(kernels::ConstView s, kernels::View d, int64_t n) override { b.cast(s, d, n); }
  void accumulate(kernels::View d, kernels::ConstView s, int64_t n) override {
    b.accumulate(d, s, n);
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

TEST(ZeroEngine, RefusesStage3AndBadInput) {
  rendezvous::HashStore store;
  auto comm = comm::makeGlooCommunicator(store, 0, 1);
  std::vector<float> a(4);
  EngineOptions o;
  o.stage = 3;
  EXPECT_THROW(ZeroEngine({{{4}, DType::kFloat32}}, {a.data()}, *comm, adamW(), o), ConfigError);
  o.stage = 2;
  EXPECT_THROW(ZeroEngine({{{4}, DType::kFloat32}}, {}, *comm, adamW(), o), Error);
  ZeroEngine engine({{{4}, DType::kFloat32}}, {a.data()}, *comm, adamW(), o);
  std::vector<char> g(16, 0);
  engine.addGradient(0, g.data());
  EXPECT_THROW(engine.addGradient(0, g.data()), Error);  // twice in one micro step
}

// Two backward passes in one micro step (re-entrant activation
// checkpointing) give a parameter two gradients: they are summed, or at
// stage 2 refused naming the parameter once its bucket went.
TEST(ZeroEngine, ASecondGradientInOneMicroStepIsSummedWhileItsBucketWaits) {
  for (int stage : {1, 2}) {
    rendezvous::HashStore store;
    auto comm = comm::makeGlooCommunicator(store, 0, 1);
    std::vector<float> a(8, 1.f), b(8, 1.f);
    EngineOptions o;
    o.stage = stage;
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
    if (stage == 2) {
      try {
        engine.addGradient(1, g.data());
        ADD_FAILURE() << "a gradient after its bucket's reduction was accepted";
      } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("last: got a second gradient"), std::string::npos)
            << e.what();
      }
    } else {
      engine.addGradient(1, g.data());
    }
    ASSERT_TRUE(engine.step(1.0f));
    EXPECT_FLOAT_EQ(*static_cast<float*>(engine.parameter(0)), 0.5f) << "stage " << stage;
    EXPECT_FLOAT_EQ(*static_cast<float*>(engine.parameter(1)), stage == 2 ? 0.75f : 0.5f);
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
