#include "runtime/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace zshard::optim {

namespace {

// DeepSpeed's warmup length: at least 2 steps (its schedulers take
// max(2, warmup_num_steps), so log warmup never divides by log 1).
int64_t warmupSteps(const config::SchedulerConfig& s) {
  return std::max<int64_t>(2, s.warmup_num_steps);
}

// Warmup progress in [0, 1): log(it + 1) / log(steps) or it / steps.
double warmupGamma(const config::SchedulerConfig& s, int64_t it) {
  const double steps = double(warmupSteps(s));
  if (s.warmup_linear) return double(it) / steps;
  return std::log(double(it + 1)) / std::log(steps);
}

double warmupDecay(const config::SchedulerConfig& s, int64_t it, bool decay) {
  double gamma = 1.0;
  const int64_t warmup = warmupSteps(s);
  if (it < warmup) {
    gamma = warmupGamma(s, it);
  } else if (decay) {
    gamma = std::max(0.0, double(s.total_num_steps - it) /
                              std::max<double>(1.0, double(s.total_num_steps - warmup)));
  }
  return s.warmup_min_lr + (s.warmup_max_lr - s.warmup_min_lr) * gamma;
}

double cosine(const config::SchedulerConfig& s, double base_lr, int64_t it) {
  const int64_t warmup = warmupSteps(s);
  if (it < warmup) {
    return base_lr * (s.warmup_min_ratio + warmupGamma(s, it) * (1.0 - s.warmup_min_ratio));
  }
  const double real_step = double(it - warmup + 1);
  const double real_total = std::max<double>(1.0, double(s.total_num_steps - warmup));
  const double wave = (1.0 + std::cos(M_PI * real_step / real_total)) / 2.0;
  return base_lr * std::max(0.0, s.cos_min_ratio + (1.0 - s.cos_min_ratio) * wave);
}

double cycleTotal(const config::SchedulerConfig& s) {
  return double(s.cycle_first_step_size + s.cycle_second_step_size);
}

// Position in the cycle: 0 -> 1 over the first step size, back to 0.
double cycleScale(const config::SchedulerConfig& s, int64_t it) {
  const double total = cycleTotal(s);
  const double batch = double(it + 1);
  const double cycle = std::floor(1.0 + batch / total);
  const double x = 1.0 + batch / total - cycle;
  const double step_ratio = double(s.cycle_first_step_size) / total;
  return x <= step_ratio ? x / step_ratio : (x - 1.0) / (step_ratio - 1.0);
}

double oneCycle(const config::SchedulerConfig& s, int64_t it) {
  const double total = cycleTotal(s);
  if (double(it) < total) {
    return s.cycle_min_lr + (s.cycle_max_lr - s.cycle_min_lr) * cycleScale(s, it);
  }
  if (s.decay_step_size <= 0) return s.cycle_min_lr;
  const double interval = double(it - int64_t(total) + 1) / double(s.decay_step_size);
  return s.cycle_min_lr / (1.0 + s.decay_lr_rate * interval);
}

double rangeTest(const config::SchedulerConfig& s, int64_t it) {
  const double raw = double(it + 1) / double(std::max<int64_t>(1, s.lr_range_test_step_size));
  const double interval = s.lr_range_test_staircase ? std::floor(raw) : raw;
  return s.lr_range_test_min_lr * (1.0 + s.lr_range_test_step_rate * interval);
}

}  // namespace

double scheduledLr(const config::SchedulerConfig& s, double base_lr, int64_t iteration) {
  const int64_t it = std::max<int64_t>(iteration, 0);
  switch (s.type) {
    case config::SchedulerType::kWarmupLR:
      return iteration < 0 ? s.warmup_min_lr : warmupDecay(s, it, false);
    case config::SchedulerType::kWarmupDecayLR:
      return iteration < 0 ? s.warmup_min_lr : warmupDecay(s, it, true);
    case config::SchedulerType::kWarmupCosineLR:
      return iteration < 0 ? base_lr * s.warmup_min_ratio : cosine(s, base_lr, it);
    case config::SchedulerType::kOneCycle: return iteration < 0 ? s.cycle_min_lr : oneCycle(s, it);
    case config::SchedulerType::kLRRangeTest:
      return iteration < 0 ? s.lr_range_test_min_lr : rangeTest(s, it);
    default: return base_lr;
  }
}

std::optional<std::array<double, 2>> scheduledBetas(const config::SchedulerConfig& s,
                                                    config::OptimizerType optimizer,
                                                    int64_t iteration) {
  if (s.type != config::SchedulerType::kOneCycle || !s.cycle_momentum ||
      optimizer == config::OptimizerType::kSgd) {
    return std::nullopt;
  }
  constexpr double kBeta2 = 0.99;
  if (iteration < 0) return std::array<double, 2>{s.cycle_min_mom, kBeta2};
  const double total = cycleTotal(s);
  if (double(iteration) < total) {
    const double height = (s.cycle_max_mom - s.cycle_min_mom) * cycleScale(s, iteration);
    return std::array<double, 2>{s.cycle_max_mom - height, kBeta2};
  }
  if (s.decay_step_size <= 0 || s.decay_mom_rate == 0) {
    return std::array<double, 2>{s.cycle_max_mom, kBeta2};
  }
  const double interval = double(iteration - int64_t(total) + 1) / double(s.decay_step_size);
  return std::array<double, 2>{s.cycle_max_mom * (1.0 + s.decay_mom_rate * interval), kBeta2};
}

}  // namespace zshard::optim
