#pragma once

// What the ZeRO engine tests share: a parameter list, gradients that
// differ per rank and micro step, the optimizers' settings, encoding,
// ranks as threads.
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "kernels/kernels.h"
#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/config/config.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/shard/shard_plan.h"

namespace zshard::zero::fixture {

inline const std::vector<std::vector<int64_t>> kShapes = {{13, 7}, {50}, {3, 3, 3}, {1}, {129}};
constexpr int kSteps = 20;
constexpr float kLr = 1e-2f;

inline int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

inline double initialValue(size_t p, int64_t i) {
  return std::cos(0.3 * double(i) + double(p));
}
// The gradient rank r computes at micro step t.
inline double gradValue(int r, int t, size_t p, int64_t i) {
  return std::sin(0.1 * double(i + 1) * double(t + 1) + 0.7 * r + double(p)) * (1 + 0.5 * r);
}

inline config::OptimizerConfig optimizerOf(config::OptimizerType type) {
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

inline config::OptimizerConfig adamW() {
  return optimizerOf(config::OptimizerType::kAdamW);
}

inline std::vector<char> encode(const std::vector<float>& values, DType dtype) {
  std::vector<char> out(values.size() * dtypeSize(dtype));
  kernels::cast({values.data(), DType::kFloat32}, {out.data(), dtype},
                static_cast<int64_t>(values.size()));
  return out;
}

inline std::vector<shard::ParamSpec> specs() {
  std::vector<shard::ParamSpec> out;
  for (const auto& s : kShapes) out.push_back({s, DType::kFloat32});
  return out;
}

// Runs body(rank, communicator) on `world` threads over one HashStore and
// Gloo; returns each rank's failure ("" when none).
inline std::vector<std::string> onRanks(int world,
                                        const std::function<void(int, comm::Communicator&)>& body) {
  rendezvous::HashStore store;
  std::vector<std::string> failures(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto comm = comm::makeGlooCommunicator(store, r, world);
        body(r, *comm);
      } catch (const std::exception& e) {
        failures[r] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return failures;
}

}  // namespace zshard::zero::fixture
