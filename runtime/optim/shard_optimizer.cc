#include "runtime/optim/shard_optimizer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/core/error.h"

namespace zshard::optim {

namespace {

kernels::View offsetView(kernels::View v, int64_t elements) {
  if (v.data == nullptr) return v;
  return {static_cast<char*>(v.data) + elements * static_cast<int64_t>(dtypeSize(v.dtype)),
          v.dtype};
}

kernels::ConstView offsetView(kernels::ConstView v, int64_t elements) {
  return {static_cast<const char*>(v.data) + elements * static_cast<int64_t>(dtypeSize(v.dtype)),
          v.dtype};
}

float* offset(float* p, int64_t elements) {
  return p == nullptr ? nullptr : p + elements;
}

}  // namespace

// Consecutive segments of one group become one run; with one group the
// whole shard is one run (one kernel per step).
std::vector<ShardOptimizer::Run> ShardOptimizer::groupRuns() const {
  if (groups_.groups.empty()) return {{0, numel_, 0}};
  std::vector<Run> runs;
  for (const Segment& s : segments_) {
    const int g = groupOf(s.param);
    if (!runs.empty() && runs.back().group == g) {
      runs.back().numel = s.offset + s.numel - runs.back().offset;
    } else {
      runs.push_back({s.offset, s.numel, g});
    }
  }
  return runs;
}

namespace {

void checkGroups(const ParamGroups& g, int num_params) {
  if (g.groups.empty()) return;
  if (static_cast<int>(g.param_group.size()) != num_params) {
    throw Error("ShardOptimizer: " + expectedGot(std::to_string(num_params) + " group indices",
                                                 std::to_string(g.param_group.size())));
  }
  for (int group : g.param_group) {
    if (group < 0 || group >= g.size()) {
      throw Error("ShardOptimizer: " +
                  expectedGot("group indices in 0.." + std::to_string(g.size() - 1),
                              std::to_string(group)));
    }
  }
}

}  // namespace

ShardOptimizer::ShardOptimizer(const config::OptimizerConfig& cfg, kernels::Backend& backend,
                               const float* initial_host, int64_t numel,
                               std::vector<Segment> segments, int num_params, ParamGroups groups,
                               float* master_storage)
    : cfg_(cfg),
      backend_(backend),
      numel_(numel),
      master_(master_storage != nullptr ? kernels::DeviceBuffer()
                                        : kernels::DeviceBuffer(backend, numel * sizeof(float))),
      master_data_(master_storage != nullptr ? master_storage : master_.floats()),
      segments_(std::move(segments)),
      num_params_(num_params),
      groups_(std::move(groups)) {
  checkGroups(groups_, num_params);
  runs_ = groupRuns();
  backend.copyFromHost(master_data_, initial_host, numel * sizeof(float));
  const size_t bytes = numel * sizeof(float);
  const bool sgd = cfg.type == config::OptimizerType::kSgd;
  if (!sgd || cfg.momentum != 0) m_ = kernels::DeviceBuffer(backend, bytes);
  if (!sgd) v_ = kernels::DeviceBuffer(backend, bytes);
  if (cfg.type == config::OptimizerType::kLamb) scratch_ = kernels::DeviceBuffer(backend, bytes);
}

void ShardOptimizer::setBetas(const std::array<double, 2>& betas) {
  cfg_.betas = betas;
  for (GroupSettings& g : groups_.groups) g.betas = betas;
}

float ShardOptimizer::lrOf(const std::vector<float>& lrs, int group) const {
  if (lrs.size() == 1) return lrs[0];
  if (static_cast<int>(lrs.size()) != groups_.size()) {
    throw Error("ShardOptimizer::step: " +
                expectedGot("1 or " + std::to_string(groups_.size()) + " learning rates",
                            std::to_string(lrs.size())));
  }
  return lrs[group];
}

std::vector<StateBuffer> ShardOptimizer::stateBuffers() {
  std::vector<StateBuffer> out = {{"master", master()}};
  const bool sgd = cfg_.type == config::OptimizerType::kSgd;
  if (!m_.empty()) out.push_back({sgd ? "momentum_buffer" : "exp_avg", m_.floats()});
  if (!v_.empty()) out.push_back({"exp_avg_sq", v_.floats()});
  return out;
}

int64_t ShardOptimizer::stateBytes() const {
  return static_cast<int64_t>(master_.size() + m_.size() + v_.size() + scratch_.size() +
                              staged_.size());
}

const GroupSettings& ShardOptimizer::settings(int group) const {
  static const GroupSettings kConfigs;
  return groups_.groups.empty() ? kConfigs : groups_.groups[group];
}

double ShardOptimizer::weightDecay(int group) const {
  return settings(group).weight_decay.value_or(cfg_.weight_decay);
}

kernels::AdamHyper ShardOptimizer::adamHyper(int group, float lr) const {
  const GroupSettings& g = settings(group);
  const std::array<double, 2> betas = g.betas.value_or(cfg_.betas);
  kernels::AdamHyper h;
  h.lr = lr;
  h.beta1 = static_cast<float>(betas[0]);
  h.beta2 = static_cast<float>(betas[1]);
  h.eps = static_cast<float>(g.eps.value_or(cfg_.eps));
  h.weight_decay = static_cast<float>(weightDecay(group));
  h.adam_w_mode = cfg_.adam_w_mode;
  h.bias_correction = cfg_.bias_correction;
  h.step = step_;
  return h;
}

kernels::SgdHyper ShardOptimizer::sgdHyper(int group, float lr) const {
  kernels::SgdHyper h;
  h.lr = lr;
  h.momentum = static_cast<float>(cfg_.momentum);
  h.dampening = static_cast<float>(cfg_.dampening);
  h.weight_decay = static_cast<float>(weightDecay(group));
  h.nesterov = cfg_.nesterov;
  h.step = step_;
  return h;
}

kernels::View ShardOptimizer::output(kernels::View model) const {
  if (model.data == master_data_ && model.dtype == DType::kFloat32) return {nullptr, model.dtype};
  return model;
}

void ShardOptimizer::step(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                          const std::vector<float>& lrs, const SumAcrossRanks& sum) {
  beginStep();
  if (!elementwise()) return lambStep(grad, model, grad_multiplier, lrs, sum);
  stepRange(grad, model, grad_multiplier, lrs, 0, numel_);
}

void ShardOptimizer::stepRange(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                               const std::vector<float>& lrs, int64_t begin, int64_t end) {
  if (!elementwise()) throw UsageError("ShardOptimizer::stepRange: Lamb steps the whole shard");
  model = output(model);
  for (const Run& run : runs_) {
    const int64_t from = std::max(begin, run.offset);
    const int64_t to = std::min(end, run.offset + run.numel);
    if (from >= to) continue;
    const float lr = lrOf(lrs, run.group);
    if (cfg_.type == config::OptimizerType::kSgd) {
      backend_.sgdStep(master() + from, offset(m_.empty() ? nullptr : m_.floats(), from),
                       offsetView(grad, from), offsetView(model, from), to - from,
                       sgdHyper(run.group, lr), grad_multiplier);
      continue;
    }
    backend_.adamStep(master() + from, m_.floats() + from, v_.floats() + from,
                      offsetView(grad, from), offsetView(model, from), to - from,
                      adamHyper(run.group, lr), grad_multiplier);
  }
}

float* ShardOptimizer::stagedGradients() {
  if (staged_.empty()) staged_ = kernels::DeviceBuffer(backend_, numel_ * sizeof(float));
  return staged_.floats();
}

void ShardOptimizer::externalStep(kernels::ConstView grad, kernels::View model,
                                  float grad_multiplier, const std::function<void()>& update) {
  ++step_;
  const kernels::View staged{stagedGradients(), DType::kFloat32};
  backend_.cast(grad, staged, numel_);
  backend_.scale(staged, numel_, grad_multiplier);
  backend_.synchronize();
  update();
  writeModel(model);
}

void ShardOptimizer::writeModel(kernels::View model) {
  model = output(model);
  if (model.data != nullptr) backend_.cast({master(), DType::kFloat32}, model, numel_);
}

// Lamb: per-parameter trust ratio ||w|| / ||update||, clamped to
// [min_coeff, max_coeff], from norms summed over every rank's pieces.
void ShardOptimizer::lambStep(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                              const std::vector<float>& lrs, const SumAcrossRanks& sum) {
  model = output(model);
  float* update = scratch_.floats();
  for (const Run& r : runs_) {
    const kernels::AdamHyper h = adamHyper(r.group, lrOf(lrs, r.group));
    backend_.lambUpdate(master() + r.offset, m_.floats() + r.offset, v_.floats() + r.offset,
                        offsetView(grad, r.offset), update + r.offset, r.numel, h, grad_multiplier);
  }
  // Every segment's two norms into device memory, read back with one wait.
  const size_t count = 2 * segments_.size();
  if (norm_scratch_.size() < count * sizeof(double)) {
    norm_scratch_ = kernels::DeviceBuffer(backend_, count * sizeof(double));
  }
  double* device_norms = reinterpret_cast<double*>(norm_scratch_.data());
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    backend_.squaredNormInto({master() + s.offset, DType::kFloat32}, s.numel, device_norms + 2 * i);
    backend_.squaredNormInto({update + s.offset, DType::kFloat32}, s.numel,
                             device_norms + 2 * i + 1);
  }
  std::vector<double> segment_norms(count);
  if (count > 0) backend_.copyToHost(segment_norms.data(), device_norms, count * sizeof(double));
  std::vector<double> norms(2 * static_cast<size_t>(num_params_), 0.0);
  for (size_t i = 0; i < segments_.size(); ++i) {
    norms[2 * segments_[i].param] += segment_norms[2 * i];
    norms[2 * segments_[i].param + 1] += segment_norms[2 * i + 1];
  }
  if (sum) sum(norms);
  for (const Segment& s : segments_) {
    const double w = std::sqrt(norms[2 * s.param]), u = std::sqrt(norms[2 * s.param + 1]);
    double ratio = (w > 0 && u > 0) ? w / u : 1.0;
    ratio = std::clamp(ratio, cfg_.min_coeff, cfg_.max_coeff);
    const double lr = lrOf(lrs, groupOf(s.param));
    backend_.applyUpdate(master() + s.offset, update + s.offset, static_cast<float>(-lr * ratio),
                         offsetView(model, s.offset), s.numel);
  }
}

}  // namespace zshard::optim
