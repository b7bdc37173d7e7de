#pragma once

#include <string>

#include "runtime/config/config.h"

namespace zshard::config {

// A short normalized description of what zshard will do with a config, a
// few lines of "name: values", as printed by `zlaunch check-config`.
std::string summarize(const Config& config);

// Its optimizer and scheduler lines ("optimizer: AdamW lr=0.01 ..."), also
// recorded in checkpoints to say what a run was saved with.
std::string optimizerLine(const OptimizerConfig& optimizer);
std::string schedulerLine(const SchedulerConfig& scheduler);

}  // namespace zshard::config
