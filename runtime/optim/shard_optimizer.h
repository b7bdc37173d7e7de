#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/backend.h"
#include "runtime/config/config.h"

namespace zshard::optim {

// A contiguous piece of one parameter inside the owned shard (Lamb's trust
// ratio is per parameter, so it needs to know where parameters start).
struct Segment {
  int param = 0;       // global parameter index
  int64_t offset = 0;  // in the shard
  int64_t numel = 0;
};

// One named fp32 state buffer of the shard (checkpoints save them by name).
struct StateBuffer {
  const char* name;  // "master", "exp_avg", "exp_avg_sq", "momentum_buffer"
  float* data;       // device memory, numel() floats
};

// Sums a vector of doubles over all ranks in place (a blocking allreduce).
using SumAcrossRanks = std::function<void(std::vector<double>&)>;

// The optimizer state of one rank's shard: fp32 master weights and the
// chosen optimizer's moments, stepped by the fused kernels. Owns its
// buffers; not thread-safe.
class ShardOptimizer {
 public:
  // `initial_host` (numel floats, host memory) seeds the master weights;
  // all state lives on `backend`'s device. `param_weight_decay` (one per
  // parameter, from parameter groups) overrides cfg.weight_decay; empty:
  // every parameter has cfg's.
  ShardOptimizer(const config::OptimizerConfig& cfg, kernels::Backend& backend,
                 const float* initial_host, int64_t numel, std::vector<Segment> segments,
                 int num_params, const std::vector<double>& param_weight_decay = {});

  // One step over the shard: grads (reduced, still scaled) times
  // grad_multiplier; writes the updated weights to `model` (may be none).
  // `sum` is used by Lamb only (one allreduce of 2 x num_params doubles).
  void step(kernels::ConstView grad, kernels::View model, float grad_multiplier, float lr,
            const SumAcrossRanks& sum);

  // Device pointers (host pointers on the CPU backend).
  float* master() { return master_.floats(); }
  float* exp_avg() { return m_.floats(); }
  float* exp_avg_sq() { return v_.floats(); }
  // Every state buffer this optimizer keeps, master first, in a fixed order
  // per optimizer type (scratch space excluded).
  std::vector<StateBuffer> stateBuffers();
  int64_t numel() const { return numel_; }
  int64_t stepCount() const { return step_; }
  // Adam/Lamb betas from the next step on (a schedule's momentum cycling).
  void setBetas(const std::array<double, 2>& betas) { cfg_.betas = betas; }
  void setStepCount(int64_t step) { step_ = step; }
  // Bytes of optimizer state held (master + moments + scratch).
  int64_t stateBytes() const;

 private:
  void lambStep(kernels::ConstView grad, kernels::View model, float grad_multiplier, float lr,
                const SumAcrossRanks& sum);
  kernels::AdamHyper adamHyper(float lr) const;
  // A range of the shard stepped with one weight decay.
  struct Run {
    int64_t offset = 0;
    int64_t numel = 0;
    double weight_decay = 0;
  };
  std::vector<Run> decayRuns(const std::vector<double>& decay) const;

  config::OptimizerConfig cfg_;
  kernels::Backend& backend_;
  int64_t numel_;
  kernels::DeviceBuffer master_, m_, v_, scratch_;
  std::vector<Segment> segments_;
  int num_params_;
  std::vector<Run> runs_;
  int64_t step_ = 0;
};

}  // namespace zshard::optim
