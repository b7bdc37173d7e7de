#include "runtime/zero/zero_engine.h"

#include <algorithm>
#include <cmath>

#include "runtime/comm/gather_values.h"
#include "runtime/core/error.h"
#include "runtime/optim/grad_clip.h"

namespace zshard::zero {

namespace {

shard::ShardPlan planFor(const std::vector<shard::ParamSpec>& params, int world,
                         const EngineOptions& o) {
  if (o.stage < 0 || o.stage > 3) {
    throw ConfigError("zero_optimization.stage: the ZeRO engine runs stage 0 to 3, got " +
                      std::to_string(o.stage));
  }
  if (o.accumulation_steps < 1) throw ConfigError("gradient_accumulation_steps: expected >= 1");
  std::vector<shard::ParamSpec> typed = params;
  for (auto& p : typed) p.dtype = o.param_dtype;
  return shard::ShardPlan::build(typed, world, o.alignment);
}

Placement placementOf(const EngineOptions& o, kernels::Backend& backend) {
  if (o.offload_params && (o.stage != 3 || o.offload_backend == nullptr)) {
    throw ConfigError(
        "zero_optimization.offload_param: parameter offload needs stage 3 and a host backend");
  }
  Placement p;
  p.device = &backend;
  p.host = o.offload_backend;
  p.ratio = o.offload_ratio;
  p.sub_group_numel = o.sub_group_numel;
  p.params_on_host = o.offload_params;
  return p;
}

// This rank's segments of each parameter, for Lamb's per-parameter norms.
std::vector<optim::Segment> segmentsOf(const shard::ShardPlan& plan, int rank) {
  std::vector<optim::Segment> out;
  const int64_t base = plan.ownerRange(rank).begin;
  for (const shard::ParamSlice& s : plan.slicesInShard(rank)) {
    out.push_back({s.param, s.flat.begin - base, s.flat.size()});
  }
  return out;
}

}  // namespace

int64_t defaultBucketNumel(int64_t total_numel) {
  return std::clamp<int64_t>((total_numel + 3) / 4, int64_t{1} << 20, 500000000);
}

ZeroEngine::ZeroEngine(const std::vector<shard::ParamSpec>& params,
                       const std::vector<const float*>& initial, comm::Communicator& comm,
                       const config::OptimizerConfig& optimizer, const EngineOptions& options)
    : plan_(planFor(params, comm.size(), options)),
      comm_(comm),
      options_(options),
      backend_(options.backend != nullptr ? *options.backend : kernels::cpuBackend()),
      scaler_(options.loss_scaling ? options.loss_scaler : optim::LossScalerOptions{1.0}) {
  if (initial.size() != params.size()) {
    throw Error("ZeroEngine: " +
                expectedGot(std::to_string(params.size()) + " initial value arrays",
                            std::to_string(initial.size())));
  }
  if (options.stage == 3) {
    comm::Communicator& gathers = options.gather_comm != nullptr ? *options.gather_comm : comm;
    model_ = makeShardedCopy(plan_, gathers, backend_, modelShardBackend(), options.param_dtype,
                             nullptr, options.timeout);
  } else {
    model_ =
        makeReplicatedCopy(plan_, comm, backend_, options.param_dtype, nullptr, options.timeout);
  }
  {
    const std::vector<float> zeros(plan_.shardNumel(), 0.f);
    Placement placement = placementOf(options, backend_);
    // fp32 parameters on the device: their own shard is the master.
    if (options.param_dtype == DType::kFloat32 && &modelShardBackend() == &backend_) {
      placement.device_master = static_cast<float*>(model_->ownShard().data);
    }
    optimizer_ = std::make_unique<PlacedOptimizer>(
        optimizer, placement, zeros.data(), plan_.shardNumel(), segmentsOf(plan_, comm.rank()),
        static_cast<int>(params.size()), options.param_groups, options.grad_dtype,
        options.param_dtype);
  }
  // The master shard takes the exact initial values, the model copy their
  // rounding, parameter by parameter: the whole model is never staged.
  for (size_t i = 0; i < initial.size(); ++i) {
    if (initial[i] != nullptr) setInitial(static_cast<int>(i), initial[i]);
  }
  finishInitial();
  used_.assign(params.size(), false);
  ReducerOptions r;
  r.backend = &backend_;
  r.grad_dtype = options.grad_dtype;
  r.bucket_numel = options.bucket_numel;
  r.overlap = options.overlap_comm;
  r.prescale = static_cast<float>(options.grad_prescale);
  r.all_reduce = options.stage == 0;
  r.timeout = options.timeout;
  if (optimizer_->offloaded()) {  // the boundary's reduced buckets start for the host at once
    r.on_reduced = [this](shard::Range done) {
      const kernels::View grads = reducer_->ownedGradients();
      if (atBoundary()) optimizer_->gradientsFinal({grads.data, grads.dtype}, done);
    };
  }
  // Stage 3 reduces as stage 2: each gradient (of a gathered parameter) into
  // buckets reduce-scattered during backward.
  reducer_ =
      options.stage <= 1 ? makeBoundaryReducer(plan_, comm, r) : makeBucketReducer(plan_, comm, r);
}

void* ZeroEngine::parameter(int i) {
  if (options_.stage == 3) {
    throw UsageError("parameter " + paramName(i) +
                     ": at stage 3 only a shard is kept; gather the parameter's run instead");
  }
  return model_->gather(i, i);
}

void ZeroEngine::addGradient(int i, const void* grad) {
  if (reduced_early_) {
    throw UsageError(paramName(i) +
                     ": a gradient after the boundary's gradients were reduced (a second backward "
                     "before engine.step()); call engine.step() first");
  }
  try {
    reducer_->addGradient(i, grad, atBoundary());
  } catch (const UsageError& e) {
    throw UsageError(paramName(i) + ": " + e.what());
  }
  used_.at(i) = true;
}

std::string ZeroEngine::paramName(int i) const {
  if (static_cast<size_t>(i) < options_.param_names.size()) return options_.param_names[i];
  return "parameter " + std::to_string(i);
}

// DeepSpeed's ignore_unused_parameters=false: every trainable parameter
// must take part in every micro step's backward.
void ZeroEngine::checkAllUsed() const {
  std::string missing;
  int count = 0;
  for (size_t i = 0; i < used_.size(); ++i) {
    if (used_[i]) continue;
    if (count++ < 8) missing += (missing.empty() ? "" : ", ") + paramName(static_cast<int>(i));
  }
  if (count == 0) return;
  throw UsageError("zero_optimization.ignore_unused_parameters is false, but rank " +
                   std::to_string(comm_.rank()) + " got no gradient for " + std::to_string(count) +
                   " parameter(s) in micro step " + std::to_string(micro_steps_) + ": " + missing +
                   (count > 8 ? ", ..." : "") +
                   "; use every parameter in the loss, freeze it (requires_grad=False) before "
                   "initialize(), or set ignore_unused_parameters to true (they count as zero)");
}

// Sums a few scalars over ranks (flags, squared norms) in double: gathers
// every rank's values (allGather only moves bytes; a double travels as two
// fp32 slots) and adds them in rank order, so every rank gets the same sum.
// The gather runs in the backend's memory (device memory for NCCL).
void ZeroEngine::allReduceDoubles(std::vector<double>& values) {
  const size_t n = values.size();
  const std::vector<double> all =
      comm::gatherValues(comm_, backend_, values, options_.timeout, &scalar_scratch_);
  for (size_t i = 0; i < n; ++i) {
    values[i] = 0;
    for (int r = 0; r < comm_.size(); ++r) values[i] += all[r * n + i];
  }
}

// Whether any rank's reduced gradients hold an inf/nan, and their global
// squared norm: computed where the gradients are, gathered there, and read
// with the step's one wait for the host.
ZeroEngine::GradientCheck ZeroEngine::checkGradients(kernels::View grads) {
  const size_t slots = 2 * static_cast<size_t>(comm_.size());
  if (scalar_scratch_.size() < slots * sizeof(double)) {
    scalar_scratch_ = kernels::DeviceBuffer(backend_, slots * sizeof(double));
  }
  double* mine = reinterpret_cast<double*>(scalar_scratch_.data()) + 2 * comm_.rank();
  backend_.nonFiniteAndNorm({grads.data, grads.dtype}, plan_.shardNumel(), mine);
  const std::vector<double> all =
      comm::gatherDeviceValues(comm_, backend_, scalar_scratch_.data(), 2, options_.timeout);
  GradientCheck check;
  for (int r = 0; r < comm_.size(); ++r) {  // in rank order: the same sum everywhere
    check.overflow = check.overflow || all[2 * r] != 0;
    check.squared_norm += all[2 * r + 1];
  }
  return check;
}

bool ZeroEngine::step(const std::vector<float>& lrs) {
  const bool boundary = atBoundary();
  if (!options_.ignore_unused_parameters) checkAllUsed();
  used_.assign(used_.size(), false);
  if (!reduced_early_) reducer_->endMicroStep(boundary);
  ++micro_steps_;
  if (!boundary) return false;
  const kernels::View grads = reducer_->ownedGradients();
  // Every rank sees the same flag, so every rank skips together. Checked in
  // bf16 and fp32 too: a non-finite gradient never updates silently.
  const GradientCheck check = checkGradients(grads);
  // The gradients carry the scale they were produced with; the scaler may
  // raise it for the next step below.
  const double scale = scaler_.scale();
  if (scaler_.update(check.overflow)) {
    clearWindow();
    return false;
  }
  const double sq = check.squared_norm;
  const double div = reduced_early_ ? 1.0 : divisor();  // reduceBoundary() made the mean already
  last_grad_norm_ = std::sqrt(sq) / (scale * div);
  const float multiplier = optim::gradMultiplier(sq, div, scale, options_.gradient_clipping);
  const kernels::View model = model_->ownShard();
  if (external_step_) {
    shardOptimizer().externalStep({grads.data, grads.dtype}, model, multiplier, external_step_);
  } else {
    optimizer_->step({grads.data, grads.dtype}, model, multiplier, lrs,
                     [this](std::vector<double>& v) { allReduceDoubles(v); });
  }
  model_->publish();
  clearWindow();
  return true;
}

void ZeroEngine::resume(int64_t optimizer_step, const optim::LossScalerState* scaler) {
  optimizer_->setStepCount(optimizer_step);
  if (scaler != nullptr) scaler_.restore(*scaler);
  clearWindow();
  micro_steps_ = 0;
  rebuildModelCopy();
}

// The 16-bit model copy from the master weights: this rank's shard, then
// every rank's view.
void ZeroEngine::rebuildModelCopy() {
  optimizer_->writeModel(model_->ownShard(), modelShardBackend());
  model_->publish();
}

namespace {

// The parts of the shard's state stretch `r` (shard elements) lies in:
// calls f(part, piece of r in it).
template <typename F>
void forEachPart(std::vector<StatePart>& parts, shard::Range r, F f) {
  for (StatePart& p : parts) {
    const shard::Range piece = shard::intersect(r, {p.offset, p.offset + p.numel});
    if (piece.size() > 0) f(p, piece);
  }
}

int bufferIndex(const std::vector<const char*>& names, const std::string& name) {
  std::string kept;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
    kept += (kept.empty() ? "" : ", ") + std::string(names[i]);
  }
  throw UsageError("optimizer state \"" + name +
                   "\": " + expectedGot("one of " + kept, "a buffer this optimizer does not keep"));
}

}  // namespace

void ZeroEngine::setWeights(const std::vector<const float*>& values) {
  if (values.size() != plan_.params().size()) {
    throw Error("setWeights: " + expectedGot(std::to_string(plan_.params().size()) + " parameters",
                                             std::to_string(values.size())));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] != nullptr) writeMaster(static_cast<int>(i), values[i]);
  }
  rebuildModelCopy();
}

void ZeroEngine::setInitial(int param, const float* values) {
  writeMaster(param, values);
  model_->fillParam(param, values);
}

void ZeroEngine::finishInitial() {
  if (options_.stage == 3) rebuildModelCopy();  // nothing is gathered yet: local
}

// Parameter `param`'s part of this rank's shard of the fp32 master from
// `values` (its numel floats, host memory).
void ZeroEngine::writeMaster(int param, const float* values) {
  const shard::ParamSlot& slot = plan_.params().at(param);
  const shard::Range own = plan_.ownerRange(comm_.rank());
  const shard::Range mine = shard::intersect(slot.range(), own);
  if (mine.size() <= 0) return;
  const shard::Range r{mine.begin - own.begin, mine.end - own.begin};  // in the shard
  std::vector<StatePart> parts = optimizer_->parts();
  forEachPart(parts, r, [&](StatePart& p, shard::Range piece) {
    p.backend->copyFromHost(p.buffers[0].data + (piece.begin - p.offset),
                            values + (mine.begin - slot.offset) + (piece.begin - r.begin),
                            piece.size() * sizeof(float));
  });
}

void ZeroEngine::clearWindow() {
  reducer_->zero();
  optimizer_->forgetGradients();
  reduced_early_ = false;
}

bool ZeroEngine::reduceBoundary() {
  const kernels::View full = reducer_->fullGradients();
  if (full.data == nullptr) throw UsageError("reduceBoundary: only stage 0 keeps whole gradients");
  if (!atBoundary() || reduced_early_) return false;
  reducer_->endMicroStep(true);
  backend_.scale(full, plan_.totalNumel(), static_cast<float>(1.0 / divisor()));
  backend_.synchronize();
  reduced_early_ = true;
  return true;
}

const void* ZeroEngine::reducedGradient(int i) {
  if (!reduced_early_)
    throw UsageError("reducedGradient: no boundary was reduced (reduceBoundary)");
  return static_cast<const char*>(reducer_->fullGradients().data) +
         plan_.params().at(i).offset * dtypeSize(options_.grad_dtype);
}

int ZeroEngine::discardWindow() {
  bool in_micro_step = false;
  for (bool u : used_) in_micro_step = in_micro_step || u;
  if (in_micro_step) {
    reducer_->endMicroStep(false);
    used_.assign(used_.size(), false);
  }
  const int discarded = static_cast<int>(micro_steps_ % options_.accumulation_steps);
  micro_steps_ -= discarded;
  if (discarded > 0 || in_micro_step) clearWindow();
  return discarded + (in_micro_step ? 1 : 0);
}

void ZeroEngine::gatherParamState(int i, const std::string& name, float* out) {
  const int index = bufferIndex(optimizer_->bufferNames(), name);
  const shard::ParamSlot& slot = plan_.params().at(i);
  // Each rank writes its slices into a zeroed whole; a sum puts them together.
  kernels::DeviceBuffer whole(backend_, slot.numel * sizeof(float));
  const int64_t base = plan_.ownerRange(comm_.rank()).begin;
  std::vector<StatePart> parts = optimizer_->parts();
  for (const shard::ParamSlice& s : plan_.slicesInShard(comm_.rank())) {
    if (s.param != i) continue;
    const shard::Range r{s.flat.begin - base, s.flat.end - base};
    forEachPart(parts, r, [&](StatePart& p, shard::Range piece) {
      kernels::copyBetween(backend_, whole.floats() + s.param_offset + (piece.begin - r.begin),
                           *p.backend, p.buffers[index].data + (piece.begin - p.offset),
                           piece.size() * sizeof(float));
    });
  }
  comm_.allReduce(whole.data(), DType::kFloat32, slot.numel)->wait(options_.timeout);
  backend_.copyToHost(out, whole.data(), whole.size());
}

void ZeroEngine::setAccumulationSteps(int steps) {
  if (steps < 1)
    throw UsageError("gradient accumulation steps: " + expectedGot(">= 1", std::to_string(steps)));
  if (midAccumulation()) {
    throw UsageError(
        "the batch size changed in the middle of gradient accumulation; change it after "
        "engine.step() at an accumulation boundary");
  }
  options_.accumulation_steps = steps;
  micro_steps_ = 0;  // windows count from here
}

MemoryReport ZeroEngine::memory() const {
  return {model_->bytes(), reducer_->gradientBytes(), optimizer_->deviceBytes(),
          reducer_->bucketBytes(), optimizer_->hostBytes() + model_->offloadedBytes()};
}

}  // namespace zshard::zero
