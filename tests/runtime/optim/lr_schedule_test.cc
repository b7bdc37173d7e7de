// Learning-rate schedules against values worked out by hand from
// DeepSpeed's formulas (deepspeed/runtime/lr_schedules.py).
#include "runtime/optim/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "runtime/config/load.h"

namespace zshard::optim {
namespace {

config::SchedulerConfig scheduler(const std::string& json) {
  return config::loadConfig(R"({"train_batch_size": 8, "scheduler": )" + json + "}")
      .config.scheduler;
}

TEST(LrSchedule, WarmupLRLogAndLinear) {
  auto s = scheduler(R"({"type": "WarmupLR", "params": {"warmup_min_lr": 0.0, "warmup_max_lr": 0.01,
                          "warmup_num_steps": 100}})");
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, -1), 0.0);
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 0), 0.0);                                        // log(1) = 0
  EXPECT_NEAR(scheduledLr(s, 1, 9), 0.01 * std::log(10.0) / std::log(100.0), 1e-15);  // 0.005
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 100), 0.01);
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 5000), 0.01);  // constant after warmup
  s.warmup_linear = true;
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 25), 0.0025);
}

// DeepSpeed warms up over max(2, warmup_num_steps) steps, so 0 and 1 mean
// 2: iteration 1 is half way (linear) or at log 2 / log 2 (log).
TEST(LrSchedule, WarmupTakesAtLeastTwoStepsAsInDeepSpeed) {
  for (int steps : {0, 1, 2}) {
    auto s =
        scheduler(R"({"type": "WarmupLR", "params": {"warmup_min_lr": 0.0, "warmup_max_lr": 0.01,
                            "warmup_type": "linear", "warmup_num_steps": )" +
                  std::to_string(steps) + "}}");
    EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 0), 0.0) << steps;
    EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 1), 0.005) << steps;
    EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 2), 0.01) << steps;
    s.warmup_linear = false;
    EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 1), 0.01) << steps;  // log(2) / log(2)
  }
}

TEST(LrSchedule, WarmupDecayLRDecaysLinearlyToZero) {
  auto s =
      scheduler(R"({"type": "WarmupDecayLR", "params": {"warmup_min_lr": 0, "warmup_max_lr": 0.001,
                          "warmup_num_steps": 10, "total_num_steps": 110, "warmup_type": "linear"}})");
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 5), 0.0005);
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 10), 0.001);   // (110 - 10) / 100
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 60), 0.0005);  // (110 - 60) / 100
  EXPECT_DOUBLE_EQ(scheduledLr(s, 1, 200), 0.0);
}

TEST(LrSchedule, WarmupCosineLRScalesTheOptimizerLr) {
  auto s = scheduler(
      R"({"type": "WarmupCosineLR", "params": {"total_num_steps": 110, "warmup_num_steps": 10,
                          "warmup_min_ratio": 0.1, "cos_min_ratio": 0.0, "warmup_type": "linear"}})");
  EXPECT_DOUBLE_EQ(scheduledLr(s, 2.0, 5), 2.0 * (0.1 + 0.5 * 0.9));
  // After warmup: (1 + cos(pi * real_step / 100)) / 2 with real_step = it - 10 + 1.
  EXPECT_NEAR(scheduledLr(s, 2.0, 59), 2.0 * 0.5, 1e-12);  // real_step 50: cos(pi/2) = 0
  EXPECT_NEAR(scheduledLr(s, 2.0, 109), 0.0, 1e-12);
}

TEST(LrSchedule, OneCycleGoesUpDownThenDecays) {
  auto s =
      scheduler(R"({"type": "OneCycle", "params": {"cycle_min_lr": 0.001, "cycle_max_lr": 0.011,
                          "cycle_first_step_size": 10, "decay_lr_rate": 0.5, "decay_step_size": 10}})");
  EXPECT_NEAR(scheduledLr(s, 1, 4), 0.001 + 0.01 * 0.5,
              1e-12);                               // x = 5/20 = 0.25 -> 0.5 of the way up
  EXPECT_NEAR(scheduledLr(s, 1, 9), 0.011, 1e-12);  // the peak
  EXPECT_NEAR(scheduledLr(s, 1, 14), 0.001 + 0.01 * 0.5, 1e-12);       // halfway down
  EXPECT_NEAR(scheduledLr(s, 1, 29), 0.001 / (1 + 0.5 * 1.0), 1e-12);  // 10 steps into decay
}

// cycle_momentum (on by default): beta1 moves against the lr, beta2 is
// DeepSpeed's 0.99; SGD (no betas) and other schedules are left alone.
TEST(LrSchedule, OneCycleCyclesBeta1AgainstTheLr) {
  auto s =
      scheduler(R"({"type": "OneCycle", "params": {"cycle_min_lr": 0.001, "cycle_max_lr": 0.011,
                          "cycle_first_step_size": 10, "cycle_min_mom": 0.8, "cycle_max_mom": 0.9,
                          "decay_mom_rate": 0.1, "decay_step_size": 10}})");
  using config::OptimizerType;
  auto beta1 = [&](int64_t it) { return scheduledBetas(s, OptimizerType::kAdamW, it).value()[0]; };
  EXPECT_DOUBLE_EQ(beta1(-1), 0.8);          // before the first step: cycle_min_mom
  EXPECT_NEAR(beta1(4), 0.9 - 0.05, 1e-12);  // halfway up the lr: halfway down the momentum
  EXPECT_NEAR(beta1(9), 0.8, 1e-12);         // lr peak: momentum trough
  EXPECT_NEAR(beta1(19), 0.9, 1e-12);        // back at the top
  EXPECT_NEAR(beta1(29), 0.9 * (1 + 0.1 * 1.0), 1e-12);  // 10 steps into decay
  EXPECT_DOUBLE_EQ(scheduledBetas(s, OptimizerType::kLamb, 4).value()[1], 0.99);
  EXPECT_FALSE(scheduledBetas(s, OptimizerType::kSgd, 4).has_value());
  s.cycle_momentum = false;
  EXPECT_FALSE(scheduledBetas(s, OptimizerType::kAdamW, 4).has_value());
  auto w = scheduler(R"({"type": "WarmupLR"})");
  EXPECT_FALSE(scheduledBetas(w, OptimizerType::kAdamW, 4).has_value());
}

TEST(LrSchedule, LRRangeTestContinuousAndStaircase) {
  auto s = scheduler(R"({"type": "LRRangeTest", "params": {"lr_range_test_min_lr": 0.001,
                          "lr_range_test_step_size": 10, "lr_range_test_step_rate": 2.0}})");
  EXPECT_NEAR(scheduledLr(s, 1, 4), 0.001 * (1 + 2.0 * 0.5), 1e-15);
  s.lr_range_test_staircase = true;
  EXPECT_NEAR(scheduledLr(s, 1, 4), 0.001, 1e-15);
  EXPECT_NEAR(scheduledLr(s, 1, 9), 0.001 * 3, 1e-15);
}

TEST(LrSchedule, NoSchedulerKeepsTheOptimizerLr) {
  config::SchedulerConfig none;
  EXPECT_EQ(scheduledLr(none, 0.3, 17), 0.3);
}

}  // namespace
}  // namespace zshard::optim
