#include "runtime/zero/session.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "kernels/backend.h"
#include "runtime/comm/gather_values.h"
#include "runtime/comm/gloo/gloo_communicator.h"
#include "runtime/comm/nccl/nccl_communicator.h"
#include "runtime/config/summary.h"
#include "runtime/config/support.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/core/timeouts.h"
#include "runtime/observe/trace.h"
#include "runtime/optim/lr_schedule.h"

namespace zshard::zero {

namespace {

DType dtypeOf(config::Precision p) {
  switch (p) {
    case config::Precision::kBf16: return DType::kBFloat16;
    case config::Precision::kFp16: return DType::kFloat16;
    default: return DType::kFloat32;
  }
}

EngineOptions engineOptions(const config::Config& cfg, kernels::Backend& backend, int world) {
  EngineOptions o;
  o.backend = &backend;
  o.stage = cfg.zero.stage;
  o.param_dtype = dtypeOf(cfg.precision);
  o.grad_dtype = dtypeOf(config::gradientPrecision(cfg));
  o.bucket_numel = cfg.zero.reduce_bucket_size;
  o.timeout = cfg.collective_timeout.value_or(collectiveTimeout());
  o.overlap_comm = cfg.zero.overlap_comm;
  o.ignore_unused_parameters = cfg.zero.ignore_unused_parameters;
  o.accumulation_steps = static_cast<int>(
      cfg.batch.gradient_accumulation_steps > 0 ? cfg.batch.gradient_accumulation_steps : 1);
  o.gradient_clipping = config::clippingThreshold(cfg);
  o.grad_prescale = cfg.prescale_gradients ? 1.0 / world : 1.0 / cfg.gradient_predivide_factor;
  o.loss_scaling = cfg.precision == config::Precision::kFp16;
  const config::LossScaleConfig& l = cfg.loss_scale;
  o.loss_scaler = {l.static_scale,
                   l.initial_scale_power,
                   l.scale_window,
                   l.hysteresis,
                   l.consecutive_hysteresis,
                   l.min_scale,
                   2.0};
  if (cfg.zero.offload_optimizer == config::OffloadDevice::kCpu) {
    // One host memory for both: pinned when either block asks for it.
    const bool pin = cfg.zero.offload_optimizer_pin_memory ||
                     (cfg.zero.offload_param == config::OffloadDevice::kCpu &&
                      cfg.zero.offload_param_pin_memory);
    o.offload_backend = &backend.hostBackend(pin);
    o.offload_ratio = cfg.zero.offload_ratio;
    o.sub_group_numel = cfg.zero.sub_group_size.value_or(0);
    o.offload_params = cfg.zero.offload_param == config::OffloadDevice::kCpu;
  }
  return o;
}

// The host kernels' threads when the optimizer steps on the host: the
// user's OMP_NUM_THREADS (zlaunch sets one per worker) wins; else the cores
// this process may run on, shared with the node's other ranks unless its
// affinity already gives it cores of its own (srun --cpus-per-task).
int shareHostCores(const rendezvous::Topology& t) {
  if (std::getenv("OMP_NUM_THREADS") != nullptr) return kernels::hostThreads();
  cpu_set_t set;
  CPU_ZERO(&set);
  const int allowed = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  const int threads = allowed < online ? allowed : std::max(1, allowed / std::max(1, t.local_size));
  kernels::setHostThreads(threads);
  return threads;
}

}  // namespace

Session::Session(const config::Config& cfg, const std::vector<std::vector<int64_t>>& shapes,
                 const std::vector<const float*>& initial, bool use_gpu,
                 const std::vector<std::string>& names, int device, optim::ParamGroups groups)
    : cfg_(cfg),
      topology_(rendezvous::detectTopology()),
      use_gpu_(use_gpu),
      device_(use_gpu ? device : 0),
      shapes_(shapes) {
  if (!cfg.optimizer.given) {
    throw ConfigError(
        "optimizer: required; zshard steps its own fused optimizer (Adam, AdamW, Lamb or SGD)");
  }
  setLogRank(topology_.rank);
  kernels::Backend& backend = kernels::backendFor(use_gpu, device_);
  options_ = engineOptions(cfg, backend, topology_.world_size);
  options_.param_names = names;
  options_.param_groups = std::move(groups);
  static std::atomic<int> sessions{0};
  id_ = sessions++;
  rendezvous::Store& store = rendezvous::processJobStore().store();
  comm_ = makeCommunicator(store, backend, "");
  if (options_.stage == 3) {
    gather_comm_ = makeCommunicator(store, backend, "-gather");
    options_.gather_comm = gather_comm_.get();
  }
  std::vector<shard::ParamSpec> specs;
  int64_t total = 0;
  for (const auto& s : shapes) {
    specs.push_back({s, options_.param_dtype});
    total += shard::numelOf(s);
  }
  if (cfg.zero.reduce_bucket_size == 0) options_.bucket_numel = defaultBucketNumel(total);
  for (size_t i = 0; i < initial.size(); ++i) {
    if (initial[i] != nullptr) addToFingerprint(static_cast<int>(i), initial[i]);
  }
  checkSameStart();
  engine_ = std::make_unique<ZeroEngine>(specs, initial, *comm_, cfg.optimizer, options_);
  if (options_.offload_backend != nullptr) {
    const int threads = shareHostCores(topology_);
    if (topology_.rank == 0) {
      log(LogLevel::kInfo,
          "offload: the optimizer state is in " + options_.offload_backend->name() +
              " memory, stepped by " + std::to_string(threads) + " host thread(s) per rank (" +
              std::to_string(topology_.local_size) +
              " rank(s) on this node; OMP_NUM_THREADS overrides)" +
              (!use_gpu_ &&
                       (cfg.zero.offload_optimizer_pin_memory || cfg.zero.offload_param_pin_memory)
                   ? "; pin_memory: CPU workers have no device to pin for"
                   : ""));
    }
  }
}

// Gloo for host tensors, NCCL for GPU ones; `suffix` keeps a second
// communicator's store keys apart.
std::unique_ptr<comm::Communicator> Session::makeCommunicator(rendezvous::Store& store,
                                                              kernels::Backend& backend,
                                                              const std::string& suffix) {
  if (use_gpu_) {
    comm::NcclOptions nccl;
    nccl.name = keyPrefix("nccl" + suffix);
    nccl.timeout = options_.timeout;
    return comm::makeNcclCommunicator(store, topology_.rank, topology_.world_size, backend, device_,
                                      nccl);
  }
  comm::GlooOptions gloo;
  gloo.store_prefix = keyPrefix("gloo" + suffix);
  gloo.timeout = options_.timeout;
  return comm::makeGlooCommunicator(store, topology_.rank, topology_.world_size, gloo);
}

// The first session keeps the plain names ("gloo", "ckpt"); later ones
// add their number ("gloo-s1").
std::string Session::keyPrefix(const std::string& what) const {
  return id_ == 0 ? what : what + "-s" + std::to_string(id_);
}

Session::~Session() {
  // Rank 0 may serve the job store: let every rank finish with it first.
  try {
    comm_->barrier()->wait(std::chrono::seconds(60));
  } catch (const Error&) {
  }
}

void Session::setInitial(int i, const float* values) {
  if (i < 0 || i >= static_cast<int>(shapes_.size())) {
    throw UsageError("setInitial: " +
                     expectedGot("a parameter index below " + std::to_string(shapes_.size()),
                                 std::to_string(i)));
  }
  addToFingerprint(i, values);
  engine_->setInitial(i, values);
}

void Session::finishInitial() {
  engine_->finishInitial();
  checkSameStart();
}

void Session::addToFingerprint(int p, const float* values) {
  const int64_t n = shard::numelOf(shapes_.at(p));
  for (int64_t i = 0; i < n; ++i) {
    fingerprint_[0] += values[i];
    fingerprint_[1] += values[i] * double(i % 97 + 1);
  }
}

// Every rank must start from the same weights (nothing gathers them at
// start): compare a fingerprint of the initial values given so far
// (parameters set later by setWeights, as zero.Init's, are checked there).
void Session::checkSameStart() {
  const int world = topology_.world_size;
  const std::vector<double> all =
      comm::gatherValues(*comm_, kernels::backendFor(use_gpu_, device_),
                         {fingerprint_[0], fingerprint_[1]}, std::chrono::minutes(5));
  for (int r = 1; r < world; ++r) {
    if (all[2 * r] != all[0] || all[2 * r + 1] != all[1]) {
      throw Error(
          "parameters differ across ranks: rank " + std::to_string(r) +
          "'s initial values are not rank 0's; seed the model the same way on every rank (or "
          "load the same checkpoint) before initialize()");
    }
  }
}

// DeepSpeed steps its scheduler after applied steps only (not skipped
// ones), starting from its last_batch_iteration (-1: the beginning).
int64_t Session::scheduleIteration() const {
  return cfg_.scheduler.last_batch_iteration + scheduler_steps_;
}

void Session::setExternalOptimizer(const std::string& name, std::function<void()> update) {
  engine_->shardOptimizer();  // refuses offloaded state, as the shard view Python takes first does
  external_optimizer_ = name;
  engine_->setExternalStep(std::move(update));
}

bool Session::anyRank(bool flag) {
  const std::vector<double> all =
      comm::gatherValues(*comm_, engine_->backend(), {flag ? 1.0 : 0.0}, options_.timeout);
  for (double v : all) {
    if (v != 0) return true;
  }
  return false;
}

bool Session::cyclesMomentum() const {
  return optim::scheduledBetas(cfg_.scheduler, cfg_.optimizer.type, 0).has_value();
}

std::array<double, 2> Session::momentum() const {
  if (cfg_.optimizer.type == config::OptimizerType::kSgd) return {cfg_.optimizer.momentum, 0};
  if (auto b = optim::scheduledBetas(cfg_.scheduler, cfg_.optimizer.type, scheduleIteration()))
    return *b;
  return cfg_.optimizer.betas;
}

double Session::lr() const {
  return optim::scheduledLr(cfg_.scheduler, cfg_.optimizer.lr, scheduleIteration());
}

bool Session::step(const std::vector<double>& lrs) {
  const bool boundary = engine_->atBoundary();
  if (auto betas =
          optim::scheduledBetas(cfg_.scheduler, cfg_.optimizer.type, scheduleIteration())) {
    engine_->setBetas(*betas);
  }
  std::vector<float> rates(lrs.begin(), lrs.end());
  if (rates.empty()) rates.push_back(static_cast<float>(lr()));
  bool stepped = false;
  {
    observe::TraceScope scope(boundary ? "optimizer step" : "micro step end", "step");
    stepped = engine_->step(rates);
  }
  if (boundary) ++global_steps_;
  if (stepped) ++scheduler_steps_;
  return stepped;
}

void Session::setTrainBatchSize(int64_t train_batch_size) {
  config::BatchConfig& b = cfg_.batch;
  const int64_t per_step = b.micro_batch_per_gpu * topology_.world_size;
  if (train_batch_size < 1 || train_batch_size % per_step != 0) {
    throw UsageError("set_train_batch_size: " +
                     expectedGot("a multiple of micro batch x world size = " +
                                     std::to_string(b.micro_batch_per_gpu) + " x " +
                                     std::to_string(topology_.world_size),
                                 std::to_string(train_batch_size)));
  }
  engine_->setAccumulationSteps(static_cast<int>(train_batch_size / per_step));
  b.train_batch_size = train_batch_size;
  b.gradient_accumulation_steps = train_batch_size / per_step;
}

checkpoint::ModelInfo Session::modelInfo(const checkpoint::ModelNames& names) {
  if (names.params.size() != shapes_.size()) {
    throw Error("checkpoint: " + expectedGot(std::to_string(shapes_.size()) + " parameter names",
                                             std::to_string(names.params.size())));
  }
  checkpoint::ModelInfo m;
  m.names = names.params;
  m.module_state_names = names.module_state;
  m.shapes = shapes_;
  m.param_dtype = options_.param_dtype;
  m.stage = cfg_.zero.stage;
  m.optimizer_type = external_optimizer_.empty() ? config::toString(cfg_.optimizer.type)
                                                 : "client " + external_optimizer_;
  m.optimizer_state_per_rank = !external_optimizer_.empty();
  for (const char* name : engine_->stateBufferNames()) m.buffer_names.push_back(name);
  m.scheduler_type = config::toString(cfg_.scheduler.type);
  m.optimizer_summary = external_optimizer_.empty() ? config::optimizerLine(cfg_.optimizer)
                                                    : "optimizer: client " + external_optimizer_;
  m.scheduler_summary = config::schedulerLine(cfg_.scheduler);
  return m;
}

checkpoint::Group Session::checkpointGroup(rendezvous::PrefixStore& store) const {
  return {&store, topology_.rank, topology_.world_size,
          std::max<rendezvous::Millis>(options_.timeout, std::chrono::minutes(10))};
}

checkpoint::ShardState shardStateOf(ZeroEngine& engine) {
  checkpoint::ShardState s;
  for (const StatePart& p : engine.stateParts()) {
    s.pieces.push_back({p.backend, p.offset, p.numel, {}});
    for (const optim::StateBuffer& b : p.buffers) s.pieces.back().buffers.push_back(b.data);
  }
  return s;
}

// DeepSpeed's checkpoint.tag_validation: every rank must save under the
// same tag. A sharded save split over two tags could never load, so "Warn"
// refuses like "Fail" (the warning names the tags on every rank first);
// "Ignore" skips the check.
void Session::validateTag(const std::string& tag) {
  if (cfg_.checkpoint.tag_validation == "Ignore") return;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : tag) h = (h ^ c) * 1099511628211ull;
  const std::vector<double> all = comm::gatherValues(
      *comm_, engine_->backend(), {double(h >> 32), double(h & 0xffffffffu)}, options_.timeout);
  for (int r = 0; r < topology_.world_size; ++r) {
    if (all[2 * r] == all[0] && all[2 * r + 1] == all[1]) continue;
    const std::string message = "save_checkpoint: the tag \"" + tag + "\" of rank " +
                                std::to_string(topology_.rank) + " is not the tag of rank " +
                                (topology_.rank == 0 ? std::to_string(r) : "0") +
                                " (checkpoint.tag_validation " + cfg_.checkpoint.tag_validation +
                                "); pass the same tag on every rank (no rank-specific names)";
    if (cfg_.checkpoint.tag_validation == "Warn") log(LogLevel::kWarning, message);
    throw UsageError(message);
  }
}

std::string Session::saveCheckpoint(const checkpoint::SaveRequest& request,
                                    const checkpoint::ModelNames& names) {
  observe::TraceScope scope("checkpoint save", "checkpoint");
  validateTag(request.tag);
  if (engine_->midAccumulation()) {
    throw UsageError(
        "save_checkpoint: called in the middle of gradient accumulation (the accumulated "
        "gradients would be lost); call it after engine.step() at an accumulation boundary");
  }
  const checkpoint::ModelInfo model = modelInfo(names);
  rendezvous::PrefixStore store(rendezvous::processJobStore().store(),
                                keyPrefix("ckpt") + "/" + std::to_string(checkpoint_ops_++));
  engine_->backend().synchronize();
  const checkpoint::Counters counters{engine_->optimizerSteps(), global_steps_, scheduler_steps_,
                                      engine_->lossScalerState()};
  checkpoint::SaveRequest rotated = request;
  rotated.keep_last = cfg_.checkpoint.keep_last;
  return checkpoint::save(checkpointGroup(store), rotated, engine_->plan(), model,
                          shardStateOf(*engine_), counters);
}

checkpoint::LoadResult Session::loadCheckpoint(const std::string& dir, const std::string& tag,
                                               const checkpoint::ModelNames& names,
                                               const checkpoint::LoadOptions& options) {
  observe::TraceScope scope("checkpoint load", "checkpoint");
  const checkpoint::ModelInfo model = modelInfo(names);
  rendezvous::PrefixStore store(rendezvous::processJobStore().store(),
                                keyPrefix("ckpt") + "/" + std::to_string(checkpoint_ops_++));
  checkpoint::LoadResult r = checkpoint::load(checkpointGroup(store), dir, tag, options,
                                              engine_->plan(), model, shardStateOf(*engine_));
  if (!r.found) return r;
  const checkpoint::Counters& c = r.counters;
  engine_->resume(options.optimizer_states ? c.optimizer_step : 0,
                  options.optimizer_states ? &c.loss_scaler : nullptr);
  global_steps_ = c.global_steps;
  scheduler_steps_ = options.scheduler_state ? c.scheduler_iteration : 0;
  log(LogLevel::kInfo, "checkpoint loaded: " + r.path + " (saved on " +
                           std::to_string(r.saved_world_size) + " ranks, global step " +
                           std::to_string(global_steps_) + ")");
  return r;
}

}  // namespace zshard::zero
