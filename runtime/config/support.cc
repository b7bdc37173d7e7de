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
  if (c.zero.offload_optimizer == OffloadDevice::kNvme) {
    diags.error("zero_optimization.offload_optimizer.device",
                std::string("\"nvme\": NVMe offload (ZeRO-Infinity) ") + kNotYet +
                    "; use \"cpu\" (host memory) or \"none\"");
  }
  if (c.zero.offload_param == OffloadDevice::kNvme) {
    diags.error("zero_optimization.offload_param.device",
                std::string("\"nvme\": NVMe offload (ZeRO-Infinity) ") + kNotYet +
                    "; use \"cpu\" (host memory) or \"none\"");
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

// Offload settings that only act with offload on (or that cannot work).
void checkOffloadSettings(const Config& c, Diagnostics& diags) {
  const ZeroConfig& z = c.zero;
  const bool offload = z.offload_optimizer == OffloadDevice::kCpu;
  if (!offload && (z.offload_optimizer_pin_memory || z.offload_ratio != 1.0)) {
    diags.warn("zero_optimization.offload_optimizer",
               "pin_memory and ratio act only with \"device\": \"cpu\"; the device is " +
                   std::string(toString(z.offload_optimizer)) + ", so they change nothing");
  }
  if (z.offload_param != OffloadDevice::kCpu && z.offload_param_pin_memory) {
    diags.warn("zero_optimization.offload_param.pin_memory",
               "acts only with offload_param \"device\": \"cpu\"; it changes nothing here");
  }
  if (!offload && z.sub_group_size) {
    diags.warn("zero_optimization.sub_group_size",
               "it sizes the pieces the offloaded optimizer steps between transfers; without "
               "offload_optimizer the fused step covers the shard in one pass");
  }
  if (z.offload_param == OffloadDevice::kCpu && !offload) {
    diags.error("zero_optimization.offload_param.device",
                "\"cpu\" needs offload_optimizer {\"device\": \"cpu\"} too: the host step "
                "writes the host parameter shard; add it (or remove offload_param)");
  }
  if (offload && c.optimizer.type == OptimizerType::kLamb && z.offload_ratio > 0 &&
      z.offload_ratio < 1) {
    diags.error("zero_optimization.offload_optimizer.ratio",
                "Lamb's trust ratios need each parameter's state in one place; with Lamb use "
                "ratio 1 (all offloaded) or no offload");
  }
}

}  // namespace

void checkSupported(const Config& c, Diagnostics& diags) {
  checkUnsupported(c, diags);
  checkOffloadSettings(c, diags);
  checkMomentumCycling(c, diags);
}

}  // namespace zshard::config
