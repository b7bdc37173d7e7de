#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "runtime/config/config.h"

namespace zshard::optim {

// The learning rate DeepSpeed's scheduler of `s.type` gives after it was
// stepped to `iteration` (its last_batch_iteration: 0 after the first
// optimizer step; -1 before any, which gives the schedule's starting lr).
// `base_lr` is the optimizer's lr (WarmupCosineLR scales it; the others
// carry their own lrs; kNone returns it unchanged). Pure function.
// Formulas of deepspeed/runtime/lr_schedules.py: WarmupLR and
// WarmupDecayLR (log or linear warmup from warmup_min_lr to warmup_max_lr,
// then constant or a linear decay to 0 at total_num_steps), WarmupCosineLR
// (warmup from warmup_min_ratio, cosine down to cos_min_ratio), OneCycle
// (linear up then down between cycle_min_lr and cycle_max_lr, then
// cycle_min_lr / (1 + decay_lr_rate * steps / decay_step_size)), and
// LRRangeTest (min_lr * (1 + step_rate * interval), interval floored with
// staircase). OneCycle's stair counts are not applied (nor by DeepSpeed).
double scheduledLr(const config::SchedulerConfig& s, double base_lr, int64_t iteration);

// OneCycle's momentum cycling (cycle_momentum) for optimizers with betas
// (Adam, AdamW, Lamb): DeepSpeed's (beta1, 0.99), beta1 going from
// cycle_max_mom down to cycle_min_mom while the lr rises and back, then
// cycle_max_mom * (1 + decay_mom_rate * steps / decay_step_size). Nothing
// for other schedules, SGD, or cycle_momentum false. Pure function.
std::optional<std::array<double, 2>> scheduledBetas(const config::SchedulerConfig& s,
                                                    config::OptimizerType optimizer,
                                                    int64_t iteration);

}  // namespace zshard::optim
