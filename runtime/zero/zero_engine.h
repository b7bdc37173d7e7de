#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"
#include "runtime/config/config.h"
#include "runtime/core/timeouts.h"
#include "runtime/optim/loss_scaler.h"
#include "runtime/optim/shard_optimizer.h"
#include "runtime/shard/shard_plan.h"
#include "runtime/zero/gradient_reducer.h"
#include "runtime/zero/model_copy.h"
#include "runtime/zero/placed_optimizer.h"

namespace zshard::zero {

// The reduce bucket when the config gives none: a quarter of the model's
// `total_numel` elements, at least 2^20 and at most DeepSpeed's 5e8, so a
// model of more than 4M elements reduces in several buckets, the first
// while backward still runs.
int64_t defaultBucketNumel(int64_t total_numel);

struct EngineOptions {
  // Where parameters, gradients and optimizer state live (and the
  // communicator's buffers): nullptr = the host (cpuBackend()).
  kernels::Backend* backend = nullptr;
  int stage = 2;  // 0 (DDP-like: all-reduce), 1, 2 or 3 (parameters sharded too)
  DType param_dtype = DType::kBFloat16;  // the model's copy
  DType grad_dtype = DType::kBFloat16;
  int64_t bucket_numel = 500000000;  // reduce_bucket_size (Session: defaultBucketNumel when unset)
  bool overlap_comm = true;          // reductions overlap (the boundary's) backward
  // A parameter a rank gave no gradient in a micro step counts as zeros
  // (true) or is an error naming it on that rank (false).
  bool ignore_unused_parameters = true;
  // Names of the parameters, for messages (default "parameter <i>").
  std::vector<std::string> param_names;
  // Parameter groups with settings of their own; empty: the optimizer's.
  optim::ParamGroups param_groups;
  int64_t alignment = 16;  // elements; keeps shards vector-aligned
  int accumulation_steps = 1;
  double gradient_clipping = 0;  // max global norm; 0: off
  // Gradients are multiplied by this before they are reduced (DeepSpeed's
  // 1/gradient_predivide_factor, or 1/world with prescale_gradients): the
  // same mean, with 16-bit sums kept in range.
  double grad_prescale = 1.0;
  // Dynamic (or static) loss scaling; used when `loss_scaling` is set (fp16).
  bool loss_scaling = false;
  optim::LossScalerOptions loss_scaler;
  comm::Millis timeout = kDefaultCollectiveTimeout;
  // Stage 3: the communicator the parameter gathers use (outliving the
  // engine), kept apart from the gradient reductions' so that a rank that
  // runs other modules than its peers meets their gathers, not their
  // reductions: its gather check names the difference (or times out naming
  // the gather) instead of pairing mismatched collectives. nullptr: the
  // engine's communicator.
  comm::Communicator* gather_comm = nullptr;
  // ZeRO-Offload (offload_optimizer): the host memory the optimizer state
  // lives in, stepped there by the host kernels (nullptr: with the model on
  // `backend`); `offload_ratio` of each shard goes there, the rest stays
  // (Twin-Flow); the host steps `sub_group_numel` elements between
  // transfers. Stage 3 offload_param: the 16-bit shard lives there too.
  kernels::Backend* offload_backend = nullptr;
  double offload_ratio = 1.0;
  int64_t sub_group_numel = 0;  // 0: the whole offloaded part at once
  bool offload_params = false;
};

// What the engine allocated, in bytes (the caller's activations are not
// ours): on the device (the backend's memory), and offloaded to the host.
struct MemoryReport {
  int64_t parameters = 0;  // the flat model copy (stage 3: shard and live runs)
  int64_t gradients = 0;   // stage 1: flat; stage 2: this rank's shard
  int64_t optimizer = 0;   // fp32 master and moments of this rank's shard
  int64_t buckets = 0;     // communication buffers
  // Host memory of offload: optimizer state, its staging, parameter shard.
  int64_t offloaded = 0;
  int64_t total() const { return parameters + gradients + optimizer + buckets; }  // device
};

// ZeRO stage 1 or 2 data parallelism over raw host buffers: composes a
// ShardPlan (layout), a GradientReducer (the stage), a ShardOptimizer
// (fused step on this rank's shard), a LossScaler and a Communicator (which
// must outlive the engine). Gradients are averaged over ranks and micro
// steps (DeepSpeed's semantics). Every rank must make the same calls in the
// same order. Not thread-safe.
class ZeroEngine {
 public:
  // `initial[i]` holds parameter i's starting values (numel floats), or is
  // nullptr: zeros until setWeights (stage 3 then stages only this rank's
  // shard, never the whole model).
  ZeroEngine(const std::vector<shard::ParamSpec>& params, const std::vector<const float*>& initial,
             comm::Communicator& comm, const config::OptimizerConfig& optimizer,
             const EngineOptions& options);

  // Parameter i inside the flat model buffer (param_dtype, on the backend's
  // device); updated by step(). Stages 0-2 (UsageError at stage 3).
  void* parameter(int i);
  // Stage 3 (and, without communication, the others): parameters
  // [first, last] gathered whole until released; see ModelCopy. Collective
  // at stage 3.
  void* gather(int first, int last) { return model_->gather(first, last); }
  void release(int first) { model_->release(first); }
  std::shared_ptr<comm::Work> startGatherInto(int first, int last, void* out) {
    return model_->startGatherInto(first, last, out);
  }
  void endPass() { model_->endPass(); }
  const shard::ShardPlan& plan() const { return plan_; }

  // The backward hook: parameter i's gradient of this micro step.
  void addGradient(int i, const void* grad);
  // Ends a micro step. At every accumulation_steps-th call the optimizer
  // steps (returns true) or the step is skipped on every rank because some
  // rank's gradients overflowed (returns false, logged with the loss scale).
  // Between boundaries returns false without stepping.
  // Stage 0, after the boundary micro step's backward: all-reduces the
  // window's gradients now and makes them the mean over ranks and micro
  // steps (times the loss scale), DeepSpeed's p.grad after backward; the
  // next step() steps on them (then a further addGradient is a UsageError).
  // False (nothing done) away from the boundary or when already reduced.
  bool reduceBoundary();
  // Parameter i's reduced gradient (grad dtype, on the device) after
  // reduceBoundary(); valid until step() or discardWindow().
  const void* reducedGradient(int i);
  // `lrs`: one learning rate per parameter group, or one for all.
  bool step(const std::vector<float>& lrs);
  bool step(float lr) { return step(std::vector<float>{lr}); }

  // Optimizer betas from the next step on (OneCycle's momentum cycling).
  void setBetas(const std::array<double, 2>& betas) { optimizer_->setBetas(betas); }
  bool atBoundary() const { return (micro_steps_ + 1) % options_.accumulation_steps == 0; }
  double lossScale() const { return scaler_.scale(); }
  int64_t skippedSteps() const { return scaler_.skippedSteps(); }
  int64_t optimizerSteps() const { return optimizer_->stepCount(); }
  // The global gradient norm of the last boundary (unscaled, averaged).
  double lastGradNorm() const { return last_grad_norm_; }
  MemoryReport memory() const;
  // See GradientReducer::collectiveBytes.
  std::vector<int64_t> reductionCollectiveBytes() const { return reducer_->collectiveBytes(); }

  // Checkpoint access (Session composes save and load from these).
  kernels::Backend& backend() { return backend_; }
  // This rank's fp32 state, in parts by where each lives (see PlacedOptimizer).
  std::vector<StatePart> stateParts() { return optimizer_->parts(); }
  std::vector<const char*> stateBufferNames() { return optimizer_->bufferNames(); }
  // From now on the optimizer steps are `update`'s (see
  // ShardOptimizer::externalStep); shardOptimizer() shows it the shard
  // (UsageError when the state is offloaded).
  void setExternalStep(std::function<void()> update) { external_step_ = std::move(update); }
  optim::ShardOptimizer& shardOptimizer() { return optimizer_->inPlace(); }
  optim::LossScalerState lossScalerState() const { return scaler_.state(); }
  // Whether gradients of an unfinished accumulation are held (a save then
  // would lose them).
  bool midAccumulation() const { return micro_steps_ % options_.accumulation_steps != 0; }
  // After stateParts()' buffers were overwritten (a loaded checkpoint): continues
  // from `optimizer_step` (and the scaler state, when given), drops any
  // accumulated gradients and rebuilds the model copy from the master
  // weights on every rank. Collective: every rank calls it.
  void resume(int64_t optimizer_step, const optim::LossScalerState* scaler);
  // New weights from outside (a state dict loaded into the model):
  // `values[i]` holds parameter i's fp32 values (numel floats, host), or is
  // nullptr to keep parameter i. Each rank copies its shard into the master
  // weights, then the model copy is rebuilt everywhere; optimizer moments
  // and step are kept. Collective.
  void setWeights(const std::vector<const float*>& values);
  // Parameter `param`'s first values (fp32 host, its numel floats) for one
  // the constructor was given none for: into the master shard and the model
  // copy, without communicating (the constructor sets those it was given
  // the same way). After the last one, finishInitial() (local too). What
  // lets the caller free each of the model's tensors as soon as it is
  // copied.
  void setInitial(int param, const float* values);
  void finishInitial();
  // Forgets the gradients of the unfinished accumulation window (finishing
  // a micro step whose backward already ran, which is collective: every
  // rank calls it at the same point). Returns the micro steps discarded.
  int discardWindow();
  // A new window length (DeepSpeed's set_train_batch_size), from the next
  // micro step on. Only between windows: a UsageError mid-accumulation.
  void setAccumulationSteps(int steps);
  // Parameter i's whole fp32 state buffer `name` ("master", "exp_avg",
  // "exp_avg_sq", "momentum_buffer"), put together from every rank's shard
  // into `out` (numel floats, host). Collective. UsageError for a buffer
  // this optimizer does not keep.
  void gatherParamState(int i, const std::string& name, float* out);

 private:
  void writeMaster(int param, const float* values);
  struct GradientCheck {
    bool overflow = false;
    double squared_norm = 0;
  };
  GradientCheck checkGradients(kernels::View grads);
  void allReduceDoubles(std::vector<double>& values);
  // What the reduced gradients are divided by to give the mean.
  double divisor() const {
    return comm_.size() * options_.accumulation_steps * options_.grad_prescale;
  }
  void checkAllUsed() const;
  void clearWindow();  // the reducer's buffers zeroed, nothing reduced early
  void rebuildModelCopy();
  kernels::Backend& modelShardBackend() {
    return options_.offload_params ? *options_.offload_backend : backend_;
  }
  std::string paramName(int i) const;

  shard::ShardPlan plan_;
  comm::Communicator& comm_;
  EngineOptions options_;
  kernels::Backend& backend_;
  std::unique_ptr<ModelCopy> model_;  // the 16-bit parameters
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<PlacedOptimizer> optimizer_;
  std::function<void()> external_step_;  // empty: the fused optimizer steps
  optim::LossScaler scaler_;
  kernels::DeviceBuffer scalar_scratch_;  // staging of the step's scalars, kept across steps
  std::vector<bool> used_;                // parameters given a gradient this micro step
  int64_t micro_steps_ = 0;
  double last_grad_norm_ = 0;
  bool reduced_early_ = false;  // reduceBoundary() ran for this window
};

}  // namespace zshard::zero
