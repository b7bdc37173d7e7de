#include "runtime/config/support.h"

#include <algorithm>

namespace zshard::config {

Precision gradientPrecision(const Config& c) {
  if (c.communication_data_type) return *c.communication_data_type;
  if (c.grad_accum_dtype) return *c.grad_accum_dtype;
  return c.precision;
}

double clippingThreshold(const Config& c) {
  const double lamb = c.optimizer.type == OptimizerType::kLamb ? c.optimizer.max_grad_norm : 0;
  if (c.gradient_clipping > 0 && lamb > 0) return std::min(c.gradient_clipping, lamb);
  return std::max(c.gradient_clipping, lamb);
}

namespace {

constexpr const char* kNotYet = "is not supported yet";

void checkUnsupported(const Config& c, Diagnostics& diags) {
  if (c.zero.offload_optimizer != OffloadDevice::kNone) {
    diags.error("zero_optimization.offload_optimizer.device",
                std::string("\"") + toString(c.zero.offload_optimizer) + "\": optimizer offload " +
                    kNotYet + "; remove offload_optimizer (or set its device to \"none\")");
  }
  if (c.zero.offload_param != OffloadDevice::kNone) {
    diags.error("zero_optimization.offload_param.device",
                std::string("\"") + toString(c.zero.offload_param) + "\": parameter offload " +
                    kNotYet + "; remove offload_param (or set its device to \"none\")");
  }
  if (c.communication_data_type && c.grad_accum_dtype &&
      *c.communication_data_type != *c.grad_accum_dtype) {
    diags.error("data_types.grad_accum_dtype",
                std::string(toString(*c.grad_accum_dtype)) + " with communication_data_type " +
                    toString(*c.communication_data_type) + " " + kNotYet +
                    ": zshard accumulates gradients in the dtype it reduces them in; give one "
                    "dtype, or drop one of the two keys");
  }
}

void checkMomentumCycling(const Config& c, Diagnostics& diags) {
  if (c.scheduler.type == SchedulerType::kOneCycle && c.scheduler.cycle_momentum &&
      c.optimizer.type == OptimizerType::kSgd) {
    diags.warn("scheduler.params.cycle_momentum",
               "SGD has no betas, so OneCycle does not cycle its momentum (as in DeepSpeed); set "
               "cycle_momentum to false to silence this");
  }
}

}  // namespace

void checkSupported(const Config& c, Diagnostics& diags) {
  checkUnsupported(c, diags);
  checkMomentumCycling(c, diags);
}

}  // namespace zshard::config
