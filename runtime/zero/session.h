#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/comm/communicator.h"
#include "runtime/config/config.h"
#include "runtime/rendezvous/job_store.h"
#include "runtime/rendezvous/topology.h"
#include "runtime/shard/shard_plan.h"
#include "runtime/zero/zero_engine.h"

namespace zshard::zero {

// A checkpoint's view of the engine's state buffers on this rank.
checkpoint::ShardState shardStateOf(ZeroEngine& engine);

// One training process's runtime, composed from a validated Config: its
// topology, the job store, a communicator (Gloo for host tensors, NCCL for
// GPU ones), and the ZeRO engine over the given parameters. What the Python
// engine binds; it holds no logic of its own beyond mapping the config.
// ZeRO stage 0 all-reduces the gradients (every rank holds them all, as
// DeepSpeed's p.grad after backward) and still shards the optimizer
// state. A process may hold several sessions (a GAN's two models), made in
// the same order on every rank. Not thread-safe.
class Session {
 public:
  // `initial[i]` holds parameter i's values as fp32 host memory (nullptr:
  // set later by setWeights, as zero.Init's parameters are); `names`
  // (optional) names them in messages; `groups` (optional: DeepSpeed's
  // parameter groups) override the optimizer's settings. With `use_gpu` the engine
  // works on CUDA device `device`, the one the model's parameters are on (under srun
  // --gpus-per-task every task sees its GPU as device 0, so the local rank is not a device index).
  Session(const config::Config& cfg, const std::vector<std::vector<int64_t>>& shapes,
          const std::vector<const float*>& initial, bool use_gpu,
          const std::vector<std::string>& names = {}, int device = 0,
          optim::ParamGroups groups = {});
  ~Session();

  const rendezvous::Topology& topology() const { return topology_; }
  DType paramDtype() const { return options_.param_dtype; }
  DType gradDtype() const { return options_.grad_dtype; }
  bool onGpu() const { return use_gpu_; }
  int deviceIndex() const { return device_; }

  void* parameter(int i) { return engine_->parameter(i); }
  // Stage 3: see ModelCopy::startGatherInto (collective).
  std::shared_ptr<comm::Work> startGatherInto(int first, int last, void* out) {
    return engine_->startGatherInto(first, last, out);
  }
  // Stage 3: see ModelCopy::endPass (collective).
  void endPass() { engine_->endPass(); }
  comm::Millis timeout() const { return options_.timeout; }
  const shard::ShardPlan& plan() const { return engine_->plan(); }
  // See ZeroEngine::reduceBoundary and reducedGradient (stage 0; collective).
  bool reduceBoundary() { return engine_->reduceBoundary(); }
  const void* reducedGradient(int i) { return engine_->reducedGradient(i); }
  // Parameter i's gradient, written by work queued on `producer` (the
  // caller's CUDA stream; nullptr on the host): the engine's stream waits
  // for it on the GPU, not the host. The caller must keep the memory until
  // the engine's stream() has passed this point (torch: record_stream).
  void addGradient(int i, const void* grad, void* producer = nullptr) {
    if (producer != nullptr) engine_->backend().waitForStream(producer);
    engine_->addGradient(i, grad);
  }
  // The engine's compute stream (cudaStream_t); nullptr on the host.
  void* stream() { return engine_->backend().stream(); }
  // See ZeroEngine::setWeights and discardWindow (both collective).
  void setWeights(const std::vector<const float*>& values) { engine_->setWeights(values); }
  // Parameter i's initial values (fp32 host memory, its numel floats) for
  // one the constructor was given none for (nullptr): local, so the caller
  // may free each of the model's tensors as it is copied. Then every rank
  // calls finishInitial() (collective): an Error naming the rank whose
  // values differ from rank 0's (constructor's and setInitial's together).
  void setInitial(int i, const float* values);
  void finishInitial();
  int discardWindow() { return engine_->discardWindow(); }
  // DeepSpeed's set_train_batch_size: the micro batch stays, the number of
  // micro steps per optimizer step changes. A UsageError unless divisible
  // by micro batch x world size, or mid-accumulation.
  void setTrainBatchSize(int64_t train_batch_size);
  // See ZeroEngine::gatherParamState (collective).
  void gatherParamState(int i, const std::string& name, float* out) {
    engine_->gatherParamState(i, name, out);
  }
  // Ends a micro step; steps the optimizer at the accumulation boundary
  // with `lrs` when given (one per parameter group, or one for all: a
  // client scheduler's or the optimizer's live param_groups), else the
  // config schedule's. True when the optimizer stepped.
  bool step(const std::vector<double>& lrs = {});
  bool atBoundary() const { return engine_->atBoundary(); }
  // A client optimizer (DeepSpeed's zero_allow_untested_optimizer) steps
  // this rank's shard from now on: `update` runs at each applied step (see
  // ShardOptimizer::externalStep); `name` ("Adagrad") marks checkpoints,
  // whose optimizer state then resumes only on as many ranks.
  void setExternalOptimizer(const std::string& name, std::function<void()> update);
  optim::ShardOptimizer& shardOptimizer() { return engine_->shardOptimizer(); }
  double lr() const;
  // The optimizer's momentum for the next step: Adam/Lamb betas (cycled by
  // OneCycle), or SGD's momentum as {momentum, 0}.
  std::array<double, 2> momentum() const;
  // Whether the config's schedule cycles the betas (OneCycle), overriding
  // every parameter group's own.
  bool cyclesMomentum() const;
  // Whether `flag` is true on any rank (a small all-gather): every rank
  // gets the same answer, so all act at the same step. Collective.
  bool anyRank(bool flag);
  double lossScale() const { return engine_->lossScale(); }
  int64_t globalSteps() const { return global_steps_; }
  int64_t skippedSteps() const { return engine_->skippedSteps(); }
  double lastGradNorm() const { return engine_->lastGradNorm(); }
  MemoryReport memory() const { return engine_->memory(); }
  std::vector<int64_t> reductionCollectiveBytes() const {
    return engine_->reductionCollectiveBytes();
  }
  comm::Communicator& communicator() { return *comm_; }

  // DeepSpeed's save_checkpoint: every rank saves its shard under
  // <dir>/<tag>; `names` names the tensors (the manifest records them).
  // Refused in the middle of gradient accumulation. Returns the tag's path.
  std::string saveCheckpoint(const checkpoint::SaveRequest& request,
                             const checkpoint::ModelNames& names);
  // DeepSpeed's load_checkpoint, on any number of ranks: weights always;
  // the optimizer state, step and loss scaler with `optimizer_states`; the
  // lr schedule's position with `scheduler_state`. global_steps is restored.
  checkpoint::LoadResult loadCheckpoint(const std::string& dir, const std::string& tag,
                                        const checkpoint::ModelNames& names,
                                        const checkpoint::LoadOptions& options);
  const config::Config& config() const { return cfg_; }

 private:
  int64_t scheduleIteration() const;
  void validateTag(const std::string& tag);
  checkpoint::ModelInfo modelInfo(const checkpoint::ModelNames& names);
  checkpoint::Group checkpointGroup(rendezvous::PrefixStore& store) const;
  void addToFingerprint(int i, const float* values);
  void checkSameStart();

  config::Config cfg_;
  rendezvous::Topology topology_;
  bool use_gpu_;
  int device_;
  EngineOptions options_;
  std::unique_ptr<comm::Communicator> comm_;
  std::unique_ptr<comm::Communicator> gather_comm_;  // stage 3's gathers (EngineOptions)
  std::unique_ptr<ZeroEngine> engine_;
  std::vector<std::vector<int64_t>> shapes_;
  int64_t global_steps_ = 0;        // optimizer steps taken or skipped (DeepSpeed's global_steps)
  std::string external_optimizer_;  // "" : the fused optimizer
  int64_t scheduler_steps_ = 0;     // steps the lr schedule advanced (not on skipped steps)
  int64_t checkpoint_ops_ = 0;      // numbers each save/load's store keys
  double fingerprint_[2] = {0, 0};  // of the initial values given so far (checkSameStart)
  // Which of this process's sessions this is (0, 1, ...: every rank makes
  // them in the same order): keeps their store keys apart.
  int id_ = 0;
  std::string keyPrefix(const std::string& what) const;
  std::unique_ptr<comm::Communicator> makeCommunicator(rendezvous::Store& store,
                                                       kernels::Backend& backend,
                                                       const std::string& suffix);
};

}  // namespace zshard::zero
