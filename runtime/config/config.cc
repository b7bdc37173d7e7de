#include "runtime/config/config.h"

namespace zshard::config {

const char* toString(Precision p) {
  switch (p) {
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
    default: return "fp32";
  }
}

const char* toString(OptimizerType t) {
  switch (t) {
    case OptimizerType::kAdam: return "Adam";
    case OptimizerType::kLamb: return "Lamb";
    case OptimizerType::kSgd: return "SGD";
    default: return "AdamW";
  }
}

const char* toString(SchedulerType t) {
  switch (t) {
    case SchedulerType::kWarmupLR: return "WarmupLR";
    case SchedulerType::kWarmupDecayLR: return "WarmupDecayLR";
    case SchedulerType::kWarmupCosineLR: return "WarmupCosineLR";
    case SchedulerType::kOneCycle: return "OneCycle";
    case SchedulerType::kLRRangeTest: return "LRRangeTest";
    default: return "none";
  }
}

const char* toString(OffloadDevice d) {
  switch (d) {
    case OffloadDevice::kCpu: return "cpu";
    case OffloadDevice::kNvme: return "nvme";
    default: return "none";
  }
}

}  // namespace zshard::config
