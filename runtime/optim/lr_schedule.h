#pragma once

#include <cstdint>

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
// staircase). OneCycle's stair counts and momentum cycling are not applied.
double scheduledLr(const config::SchedulerConfig& s, double base_lr, int64_t iteration);

}  // namespace zshard::optim
