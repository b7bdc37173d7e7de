#include "runtime/optim/loss_scaler.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/optim/grad_clip.h"

namespace zshard::optim {
namespace {

// Feeds a sequence of overflow flags and returns the scale after each;
// expected values are worked out by hand from DeepSpeed's rules.
std::vector<double> scales(LossScalerOptions o, const std::vector<bool>& overflows) {
  setLogSink([](LogLevel, const std::string&) {});
  LossScaler s(o);
  std::vector<double> out;
  for (bool f : overflows) {
    s.update(f);
    out.push_back(s.scale());
  }
  setLogSink(nullptr);
  return out;
}

TEST(LossScaler, StartsAtTwoToTheInitialPower) {
  LossScalerOptions o;
  EXPECT_EQ(LossScaler(o).scale(), 65536.0);
  o.static_scale = 128;
  EXPECT_EQ(LossScaler(o).scale(), 128.0);
  EXPECT_FALSE(LossScaler(o).dynamic());
}

TEST(LossScaler, HalvesOnOverflowWithoutHysteresis) {
  LossScalerOptions o;
  o.initial_scale_power = 4, o.hysteresis = 1, o.scale_window = 3;
  // overflow at 0: 8; clean 1,2,3: (it - last_overflow) % 3 == 0 at it=3 -> 16
  EXPECT_EQ(scales(o, {true, false, false, false, false, false, false}),
            (std::vector<double>{8, 8, 8, 16, 16, 16, 32}));
}

TEST(LossScaler, HysteresisAbsorbsOverflowsAndResetsAtTheWindow) {
  LossScalerOptions o;
  o.initial_scale_power = 4, o.hysteresis = 2, o.scale_window = 2;
  // it0 overflow: hysteresis 2 -> 1, scale kept; it1 overflow: halve to 8;
  // it2 clean ((2-1)%2 != 0); it3 clean ((3-1)%2 == 0): hysteresis reset, x2.
  EXPECT_EQ(scales(o, {true, true, false, false, true, true}),
            (std::vector<double>{16, 8, 8, 16, 16, 8}));
}

TEST(LossScaler, ConsecutiveHysteresisResetsOnEveryCleanStep) {
  LossScalerOptions o;
  o.initial_scale_power = 4, o.hysteresis = 2, o.scale_window = 100,
  o.consecutive_hysteresis = true;
  // overflow, clean (reset to 2), overflow (absorbed again): scale never drops.
  EXPECT_EQ(scales(o, {true, false, true, false, true}), (std::vector<double>{16, 16, 16, 16, 16}));
  o.consecutive_hysteresis = false;
  EXPECT_EQ(scales(o, {true, false, true, false, true}), (std::vector<double>{16, 16, 8, 8, 4}));
}

TEST(LossScaler, NeverBelowMinimumAndAnErrorAtIt) {
  LossScalerOptions o;
  o.initial_scale_power = 2, o.hysteresis = 1, o.min_scale = 2;
  setLogSink([](LogLevel, const std::string&) {});
  LossScaler s(o);
  s.update(true);
  EXPECT_EQ(s.scale(), 2.0);
  try {
    s.update(true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("minimum"), std::string::npos);
  }
  setLogSink(nullptr);
}

TEST(LossScaler, StaticScaleNeverChangesButStillSkips) {
  LossScalerOptions o;
  o.static_scale = 8;
  setLogSink([](LogLevel, const std::string&) {});
  LossScaler s(o);
  EXPECT_TRUE(s.update(true));
  EXPECT_FALSE(s.update(false));
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_EQ(s.skippedSteps(), 1);
  setLogSink(nullptr);
}

TEST(GradClip, MultiplierFollowsDeepSpeed) {
  // No clipping: 1 / (world * scale).
  EXPECT_FLOAT_EQ(gradMultiplier(100.0, 4, 8.0, 0.0), 1.0f / 32);
  // Norm of the mean unscaled gradient: sqrt(1600)/(4*1) = 10 > max 1:
  // multiplier = 1 / (4 * 10.000001).
  EXPECT_FLOAT_EQ(gradMultiplier(1600.0, 4, 1.0, 1.0), float(1.0 / (4 * (10 + 1e-6))));
  // Below the threshold: unchanged.
  EXPECT_FLOAT_EQ(gradMultiplier(1.0, 1, 1.0, 5.0), 1.0f);
}

}  // namespace
}  // namespace zshard::optim
