#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
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

// One parameter group's own settings (torch's and DeepSpeed's
// param_groups); an unset field is the optimizer config's. Its lr is given
// at each step.
struct GroupSettings {
  std::optional<double> weight_decay;
  std::optional<std::array<double, 2>> betas;  // Adam, AdamW, Lamb
  std::optional<double> eps;                   // Adam, AdamW, Lamb
};

// Which group each parameter is in. Empty: one group of every parameter,
// with the config's settings.
struct ParamGroups {
  std::vector<GroupSettings> groups;
  std::vector<int> param_group;  // one per parameter, indexes groups
  int size() const { return groups.empty() ? 1 : static_cast<int>(groups.size()); }
};

// Sums a vector of doubles over all ranks in place (a blocking allreduce).
using SumAcrossRanks = std::function<void(std::vector<double>&)>;

// The optimizer state of one rank's shard: fp32 master weights and the
// chosen optimizer's moments, stepped by the fused kernels. Owns its
// buffers (the master's unless given one); not thread-safe.
class ShardOptimizer {
 public:
  // `initial_host` (numel floats, host memory) seeds the master weights;
  // all state lives on `backend`'s device. `groups` overrides cfg per
  // parameter group. `master_storage` (numel floats on the device, owned
  // by the caller, may be null): the memory the master weights live in —
  // fp32 parameters' own shard, which then is the master itself, so a step
  // given it as `model` writes it once. Throws Error when groups do not
  // cover num_params.
  ShardOptimizer(const config::OptimizerConfig& cfg, kernels::Backend& backend,
                 const float* initial_host, int64_t numel, std::vector<Segment> segments,
                 int num_params, ParamGroups groups = {}, float* master_storage = nullptr);

  // One step over the shard: grads (reduced, still scaled) times
  // grad_multiplier; writes the updated weights to `model` (may be none).
  // `lrs`: one learning rate per group, or one for every group. `sum` is
  // used by Lamb only (one allreduce of 2 x num_params doubles).
  void step(kernels::ConstView grad, kernels::View model, float grad_multiplier,
            const std::vector<float>& lrs, const SumAcrossRanks& sum);
  // The same step in pieces, for a step that overlaps transfers: begin
  // counts the step, then stepRange over elements [begin, end) of the
  // shard (views of the whole shard, as step's), each element once in any
  // order, gives step()'s bits. Elementwise optimizers only (UsageError for
  // Lamb, whose trust ratios need the whole step's norms).
  void beginStep() { ++step_; }
  void stepRange(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                 const std::vector<float>& lrs, int64_t begin, int64_t end);
  bool elementwise() const { return cfg_.type != config::OptimizerType::kLamb; }
  int numGroups() const { return groups_.size(); }
  // A step by someone else's optimizer (a client torch optimizer on this
  // shard, DeepSpeed's zero_allow_untested_optimizer): the gradients times
  // grad_multiplier go to stagedGradients() (fp32), `update` changes
  // master() in place, and the result is written to `model`. The backend's
  // queued work is done before `update` runs; `update` must finish its
  // device work before it returns.
  void externalStep(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                    const std::function<void()>& update);
  float* stagedGradients();  // numel() floats, allocated on first use
  // The master weights rounded into `model` (numel() elements on this
  // optimizer's backend); nothing to do when `model` is the master.
  void writeModel(kernels::View model);
  // Where each group's pieces of the shard lie: (offset, numel, group).
  struct Run {
    int64_t offset = 0;
    int64_t numel = 0;
    int group = 0;
  };
  const std::vector<Run>& runs() const { return runs_; }

  // Device pointers (host pointers on the CPU backend).
  float* master() { return master_data_; }
  float* exp_avg() { return m_.floats(); }
  float* exp_avg_sq() { return v_.floats(); }
  // Every state buffer this optimizer keeps, master first, in a fixed order
  // per optimizer type (scratch space excluded).
  std::vector<StateBuffer> stateBuffers();
  int64_t numel() const { return numel_; }
  int64_t stepCount() const { return step_; }
  // Adam/Lamb betas of every group from the next step on (a schedule's
  // momentum cycling, which DeepSpeed applies to every group).
  void setBetas(const std::array<double, 2>& betas);
  void setStepCount(int64_t step) { step_ = step; }
  // Bytes of optimizer state held (master + moments + scratch).
  int64_t stateBytes() const;

 private:
  void lambStep(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                const std::vector<float>& lrs, const SumAcrossRanks& sum);
  // Where a step writes the weights: none when `model` is the master.
  kernels::View output(kernels::View model) const;
  const GroupSettings& settings(int group) const;  // unset fields: cfg_'s
  double weightDecay(int group) const;
  // The group's settings over cfg_'s, with the group's lr.
  kernels::AdamHyper adamHyper(int group, float lr) const;
  kernels::SgdHyper sgdHyper(int group, float lr) const;
  int groupOf(int param) const { return groups_.groups.empty() ? 0 : groups_.param_group[param]; }
  float lrOf(const std::vector<float>& lrs, int group) const;
  std::vector<Run> groupRuns() const;

  config::OptimizerConfig cfg_;
  kernels::Backend& backend_;
  int64_t numel_;
  kernels::DeviceBuffer master_, m_, v_, scratch_;  // master_: empty when given storage
  float* master_data_ = nullptr;
  kernels::DeviceBuffer norm_scratch_;  // Lamb: each segment's two squared norms
  kernels::DeviceBuffer staged_;        // externalStep's gradients, made on first use
  std::vector<Segment> segments_;
  int num_params_;
  ParamGroups groups_;
  std::vector<Run> runs_;
  int64_t step_ = 0;
};

}  // namespace zshard::optim
