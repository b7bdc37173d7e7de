#include "runtime/zero/placed_optimizer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/core/error.h"

namespace zshard::zero {

namespace {

// Elements [0, k) of the shard offloaded: ratio x numel, rounded up to 16
// elements so that both parts start vector-aligned.
int64_t offloadedCount(const Placement& p, int64_t numel) {
  if (p.host == nullptr) return 0;
  const auto k = static_cast<int64_t>(std::ceil(p.ratio * static_cast<double>(numel)));
  return std::min(numel, (k + 15) / 16 * 16);
}

// The segments inside `r`, shifted to start at r.begin.
std::vector<optim::Segment> segmentsIn(const std::vector<optim::Segment>& all, shard::Range r) {
  std::vector<optim::Segment> out;
  for (const optim::Segment& s : all) {
    const shard::Range part = shard::intersect({s.offset, s.offset + s.numel}, r);
    if (part.size() > 0) out.push_back({s.param, part.begin - r.begin, part.size()});
  }
  return out;
}

kernels::View at(kernels::View v, int64_t elements) {
  return {static_cast<char*>(v.data) + elements * static_cast<int64_t>(dtypeSize(v.dtype)),
          v.dtype};
}

kernels::ConstView at(kernels::ConstView v, int64_t elements) {
  return {static_cast<const char*>(v.data) + elements * static_cast<int64_t>(dtypeSize(v.dtype)),
          v.dtype};
}

}  // namespace

PlacedOptimizer::PlacedOptimizer(const config::OptimizerConfig& cfg, const Placement& placement,
                                 const float* initial_host, int64_t numel,
                                 const std::vector<optim::Segment>& segments, int num_params,
                                 const optim::ParamGroups& groups, DType grad_dtype,
                                 DType param_dtype)
    : placement_(placement),
      grad_dtype_(grad_dtype),
      param_dtype_(param_dtype),
      offloaded_(offloadedCount(placement, numel)) {
  if (placement.device == nullptr) throw Error("PlacedOptimizer: no device backend");
  if (cfg.type == config::OptimizerType::kLamb && offloaded_ > 0 && offloaded_ < numel) {
    throw ConfigError(
        "zero_optimization.offload_optimizer.ratio: Lamb's trust ratios need each parameter's "
        "state in one place; with Lamb use ratio 1 (everything offloaded) or no offload");
  }
  if (offloaded_ > 0) {
    addPart(cfg, *placement.host, {0, offloaded_}, initial_host, segments, num_params, groups);
    grad_staging_ = kernels::DeviceBuffer(*placement.host, offloaded_ * dtypeSize(grad_dtype));
    if (!placement.params_on_host) {
      model_staging_ = kernels::DeviceBuffer(*placement.host, offloaded_ * dtypeSize(param_dtype));
    }
  }
  if (offloaded_ < numel || parts_.empty()) {
    float* master = placement.device_master;
    addPart(cfg, *placement.device, {offloaded_, numel}, initial_host, segments, num_params, groups,
            master == nullptr ? nullptr : master + offloaded_);
  }
}

void PlacedOptimizer::addPart(const config::OptimizerConfig& cfg, kernels::Backend& backend,
                              shard::Range r, const float* initial_host,
                              const std::vector<optim::Segment>& segments, int num_params,
                              const optim::ParamGroups& groups, float* master) {
  auto o =
      std::make_unique<optim::ShardOptimizer>(cfg, backend, initial_host + r.begin, r.size(),
                                              segmentsIn(segments, r), num_params, groups, master);
  parts_.push_back({&backend, r.begin, r.size(), std::move(o)});
}

PlacedOptimizer::Part* PlacedOptimizer::hostPart() {
  return offloaded_ > 0 ? &parts_.front() : nullptr;
}

PlacedOptimizer::Part* PlacedOptimizer::devicePart() {
  return offloaded_ == 0 || parts_.size() > 1 ? &parts_.back() : nullptr;
}

void PlacedOptimizer::queue(kernels::ConstView grads, shard::Range r) {
  const size_t e = dtypeSize(grad_dtype_);
  const uint64_t ticket = placement_.device->copyToHostAsync(grad_staging_.data() + r.begin * e,
                                                             at(grads, r.begin).data, r.size() * e);
  queued_.emplace_back(r, ticket);
}

void PlacedOptimizer::gradientsFinal(kernels::ConstView grads, shard::Range r) {
  const shard::Range mine = shard::intersect(r, {0, offloaded_});
  if (mine.size() > 0) queue(grads, mine);
}

// The offloaded elements no copy covers yet (buckets that never reported,
// the stage-1 path) are queued now, in order.
void PlacedOptimizer::queueRest(kernels::ConstView grads) {
  std::vector<shard::Range> covered;
  for (const auto& [r, ticket] : queued_) covered.push_back(r);
  std::sort(covered.begin(), covered.end(),
            [](const shard::Range& a, const shard::Range& b) { return a.begin < b.begin; });
  int64_t at_element = 0;
  for (const shard::Range& r : covered) {
    if (r.begin > at_element) queue(grads, {at_element, r.begin});
    at_element = std::max(at_element, r.end);
  }
  if (at_element < offloaded_) queue(grads, {at_element, offloaded_});
}

uint64_t PlacedOptimizer::ticketCovering(shard::Range r) const {
  uint64_t t = 0;
  for (const auto& [q, ticket] : queued_) {
    if (shard::intersect(q, r).size() > 0) t = std::max(t, ticket);
  }
  return t;
}

void PlacedOptimizer::step(kernels::ConstView grads, kernels::View model, float multiplier,
                           const std::vector<float>& lrs, const optim::SumAcrossRanks& sum) {
  // The rest of the gradients start for the host, then the device part's
  // kernels: on a GPU they run while the host steps.
  if (hostPart() != nullptr) queueRest(grads);
  if (Part* d = devicePart()) {
    d->optimizer->step(at(grads, d->offset), at(model, d->offset), multiplier, lrs, sum);
  }
  if (Part* h = hostPart()) stepHost(*h, model, multiplier, lrs, sum);
  queued_.clear();
}

// The host part, sub-group by sub-group: wait for its gradients, step it,
// start its 16-bit values back to the device; the last copy is waited for.
void PlacedOptimizer::stepHost(Part& host, kernels::View model, float multiplier,
                               const std::vector<float>& lrs, const optim::SumAcrossRanks& sum) {
  kernels::Backend& device = *placement_.device;
  const kernels::ConstView staged{grad_staging_.data(), grad_dtype_};
  const kernels::View target =
      placement_.params_on_host ? model : kernels::View{model_staging_.data(), param_dtype_};
  const size_t e = dtypeSize(param_dtype_);
  uint64_t back = 0;
  const auto copyBack = [&](shard::Range r) {
    if (placement_.params_on_host) return;
    back =
        device.copyFromHostAsync(at(model, r.begin).data, at(target, r.begin).data, r.size() * e);
  };
  if (!host.optimizer->elementwise()) {
    device.waitTransfer(ticketCovering({0, offloaded_}));
    host.optimizer->step(staged, target, multiplier, lrs, sum);
    copyBack({0, offloaded_});
  } else {
    host.optimizer->beginStep();
    const int64_t group = placement_.sub_group_numel > 0 ? placement_.sub_group_numel
                                                         : std::max<int64_t>(1, offloaded_);
    for (int64_t begin = 0; begin < offloaded_; begin += group) {
      const shard::Range g{begin, std::min(offloaded_, begin + group)};
      device.waitTransfer(ticketCovering(g));
      host.optimizer->stepRange(staged, target, multiplier, lrs, g.begin, g.end);
      copyBack(g);
    }
  }
  device.waitTransfer(back);
}

void PlacedOptimizer::writeModel(kernels::View model, kernels::Backend& model_backend) {
  for (Part& p : parts_) {
    if (&p != hostPart() || placement_.params_on_host) {  // the model is where the part is
      p.optimizer->writeModel(at(model, p.offset));
      continue;
    }
    const kernels::ConstView master{p.optimizer->master(), DType::kFloat32};
    p.backend->cast(master, {model_staging_.data(), param_dtype_}, p.numel);
    kernels::copyBetween(model_backend, at(model, p.offset).data, *p.backend, model_staging_.data(),
                         p.numel * dtypeSize(param_dtype_));
  }
}

std::vector<StatePart> PlacedOptimizer::parts() {
  std::vector<StatePart> out;
  for (Part& p : parts_) {
    out.push_back({p.backend, p.offset, p.numel, p.optimizer->stateBuffers()});
  }
  return out;
}

std::vector<const char*> PlacedOptimizer::bufferNames() {
  std::vector<const char*> names;
  for (const optim::StateBuffer& b : parts_.front().optimizer->stateBuffers()) {
    names.push_back(b.name);
  }
  return names;
}

optim::ShardOptimizer& PlacedOptimizer::inPlace() {
  if (offloaded()) {
    throw UsageError(
        "the optimizer state is offloaded (zero_optimization.offload_optimizer): a client "
        "optimizer cannot step it in place (as DeepSpeed's zero_force_ds_cpu_optimizer); use an "
        "optimizer from the config (Adam, AdamW, SGD, Lamb, stepped on the host by zshard), or "
        "remove offload_optimizer");
  }
  return *parts_.front().optimizer;
}

void PlacedOptimizer::setStepCount(int64_t step) {
  for (Part& p : parts_) p.optimizer->setStepCount(step);
}

void PlacedOptimizer::setBetas(const std::array<double, 2>& betas) {
  for (Part& p : parts_) p.optimizer->setBetas(betas);
}

int64_t PlacedOptimizer::deviceBytes() const {
  int64_t bytes = 0;
  for (const Part& p : parts_) {
    if (&p != &parts_.front() || offloaded_ == 0) bytes += p.optimizer->stateBytes();
  }
  return bytes;
}

int64_t PlacedOptimizer::hostBytes() const {
  if (offloaded_ == 0) return 0;
  return parts_.front().optimizer->stateBytes() + static_cast<int64_t>(grad_staging_.size()) +
         static_cast<int64_t>(model_staging_.size());
}

}  // namespace zshard::zero
