#pragma once

#include <cstdint>

namespace zshard::optim {

struct LossScalerOptions {
  // > 0: a static scale that never changes; 0: dynamic scaling.
  double static_scale = 0;
  int initial_scale_power = 16;
  int scale_window = 1000;
  int hysteresis = 2;
  bool consecutive_hysteresis = false;
  double min_scale = 1;
  double scale_factor = 2;
};

// The scaler's evolving state, for checkpoints.
struct LossScalerState {
  double scale = 0;
  int64_t iteration = 0;
  int64_t last_overflow_iteration = -1;
  int hysteresis_left = 0;
  int64_t skipped = 0;
};

// DeepSpeed's loss scaler (runtime/fp16/loss_scaler.py DynamicLossScaler):
// on overflow the scale is divided by scale_factor once `hysteresis`
// overflows have been absorbed; after scale_window clean steps since the
// last overflow it is multiplied by scale_factor. An overflow at the
// minimum scale is an Error (training cannot go on). Every overflow is
// logged with the scale. Not thread-safe; identical on every rank when fed
// the same (globally reduced) overflow flags.
class LossScaler {
 public:
  explicit LossScaler(const LossScalerOptions& options);

  double scale() const { return scale_; }
  bool dynamic() const { return options_.static_scale == 0; }
  // Records one step's outcome; returns true when the step must be skipped.
  bool update(bool overflow);
  int64_t skippedSteps() const { return skipped_; }
  LossScalerState state() const;
  // Continues from a saved state (the options stay this scaler's own).
  void restore(const LossScalerState& state);

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t iteration_ = 0;
  int64_t last_overflow_iteration_ = -1;
  int hysteresis_left_;
  int64_t skipped_ = 0;
};

}  // namespace zshard::optim
