#pragma once

#include "runtime/config/config.h"

namespace zshard::pb {
class DeepSpeedConfig;
}

namespace zshard::config {

// Copies a validated message into the typed Config (batch and auto_keys are
// filled by the caller). Internal to runtime/config.
Config toConfig(const pb::DeepSpeedConfig& cfg);

}  // namespace zshard::config
