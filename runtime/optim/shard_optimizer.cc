#include "runtime/optim/shard_optimizer.h"

#include <algorithm>
#include <cmath>

namespace zshard::optim {

namespace {

kernels::View offsetView(kernels::View v, int64_t elements) {
  if (v.data == nullptr) return v;
  return {static_cast<char*>(v.data) + elements * static_cast<int64_t>(dtypeSize(v.dtype)),
          v.dtype};
}

}  // namespace

ShardOptimizer::ShardOptimizer(const config::OptimizerConfig& cfg, kernels::Backend& backend,
                               const float* initial_host, int64_t numel,
                               std::vector<Segment> segments, int num_params)
    : cfg_(cfg),
      backend_(backend),
      numel_(numel),
      master_(backend, numel * sizeof(float)),
      segments_(std::move(segments)),
      num_params_(num_params) {
  backend.copyFromHost(master_.data(), initial_host, numel * sizeof(float));
  const size_t bytes = numel * sizeof(float);
  const bool sgd = cfg.type == config::OptimizerType::kSgd;
  if (!sgd || cfg.momentum != 0) m_ = kernels::DeviceBuffer(backend, bytes);
  if (!sgd) v_ = kernels::DeviceBuffer(backend, bytes);
  if (cfg.type == config::OptimizerType::kLamb) scratch_ = kernels::DeviceBuffer(backend, bytes);
}

std::vector<StateBuffer> ShardOptimizer::stateBuffers() {
  std::vector<StateBuffer> out = {{"master", master_.floats()}};
  const bool sgd = cfg_.type == config::OptimizerType::kSgd;
  if (!m_.empty()) out.push_back({sgd ? "momentum_buffer" : "exp_avg", m_.floats()});
  if (!v_.empty()) out.push_back({"exp_avg_sq", v_.floats()});
  return out;
}

int64_t ShardOptimizer::stateBytes() const {
  return static_cast<int64_t>(master_.size() + m_.size() + v_.size() + scratch_.size());
}

kernels::AdamHyper ShardOptimizer::adamHyper(float lr) const {
  kernels::AdamHyper h;
  h.lr = lr;
  h.beta1 = static_cast<float>(cfg_.betas[0]);
  h.beta2 = static_cast<float>(cfg_.betas[1]);
  h.eps = static_cast<float>(cfg_.eps);
  h.weight_decay = static_cast<float>(cfg_.weight_decay);
  h.adam_w_mode = cfg_.adam_w_mode;
  h.bias_correction = cfg_.bias_correction;
  h.step = step_;
  return h;
}

void ShardOptimizer::step(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                          float lr, const SumAcrossRanks& sum) {
  ++step_;
  switch (cfg_.type) {
    case config::OptimizerType::kSgd: {
      kernels::SgdHyper h;
      h.lr = lr;
      h.momentum = static_cast<float>(cfg_.momentum);
      h.dampening = static_cast<float>(cfg_.dampening);
      h.weight_decay = static_cast<float>(cfg_.weight_decay);
      h.nesterov = cfg_.nesterov;
      h.step = step_;
      backend_.sgdStep(master(), m_.empty() ? nullptr : m_.floats(), grad, model, numel(), h,
                       grad_multiplier);
      return;
    }
    case config::OptimizerType::kLamb: return lambStep(grad, model, grad_multiplier, lr, sum);
    default:
      backend_.adamStep(master(), m_.floats(), v_.floats(), grad, model, numel(), adamHyper(lr),
                        grad_multiplier);
  }
}

// Lamb: per-parameter trust ratio ||w|| / ||update||, clamped to
// [min_coeff, max_coeff], from norms summed over every rank's pieces.
void ShardOptimizer::lambStep(kernels::ConstView grad, kernels::View model, float grad_multiplier,
                              float lr, const SumAcrossRanks& sum) {
  float* update = scratch_.floats();
  backend_.lambUpdate(master(), m_.floats(), v_.floats(), grad, update, numel(), adamHyper(lr),
                      grad_multiplier);
  std::vector<double> norms(2 * static_cast<size_t>(num_params_), 0.0);
  for (const Segment& s : segments_) {
    norms[2 * s.param] += backend_.squaredNorm({master() + s.offset, DType::kFloat32}, s.numel);
    norms[2 * s.param + 1] += backend_.squaredNorm({update + s.offset, DType::kFloat32}, s.numel);
  }
  if (sum) sum(norms);
  for (const Segment& s : segments_) {
    const double w = std::sqrt(norms[2 * s.param]), u = std::sqrt(norms[2 * s.param + 1]);
    double ratio = (w > 0 && u > 0) ? w / u : 1.0;
    ratio = std::clamp(ratio, cfg_.min_coeff, cfg_.max_coeff);
    backend_.applyUpdate(master() + s.offset, update + s.offset, static_cast<float>(-lr * ratio),
                         offsetView(model, s.offset), s.numel);
  }
}

}  // namespace zshard::optim
