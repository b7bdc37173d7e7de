#pragma once

#include "runtime/config/diagnostic.h"

namespace zshard::pb {
class DeepSpeedConfig;
}

namespace zshard::config {

// Maps deprecated keys onto their replacements (e.g. zero_optimization.
// cpu_offload -> offload_optimizer.device = "cpu") so later steps see one
// spelling. Internal to runtime/config.
void normalizeDeprecated(pb::DeepSpeedConfig& cfg);

// Cross-key rules one field's options cannot express: fp16 vs bf16, offload
// vs ZeRO stage, NVMe paths, scheduler step/lr orderings, loss-scale bounds,
// unsupported optimizer variants. Reports under the offending key path.
// Batch sizes are checked by resolveBatch() (batch_size.h).
void checkSemantics(const pb::DeepSpeedConfig& cfg, Diagnostics& diags);

}  // namespace zshard::config
