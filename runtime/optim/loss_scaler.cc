#include "runtime/optim/loss_scaler.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace zshard::optim {

LossScaler::LossScaler(const LossScalerOptions& options)
    : options_(options),
      scale_(options.static_scale > 0 ? options.static_scale
                                      : std::ldexp(1.0, options.initial_scale_power)),
      hysteresis_left_(options.hysteresis) {
  if (options.scale_window < 1 || options.hysteresis < 1 || options.min_scale <= 0) {
    throw Error("LossScaler: expected scale_window >= 1, hysteresis >= 1, min_scale > 0");
  }
}

bool LossScaler::update(bool overflow) {
  if (overflow) {
    ++skipped_;
    std::ostringstream msg;
    msg << "gradient overflow (inf/nan): skipping step " << iteration_ << " at loss scale "
        << scale_;
    if (!dynamic()) {
      log(LogLevel::kWarning, msg.str() + " (static scale: unchanged)");
    } else if (options_.hysteresis == 1 || hysteresis_left_ == 1) {
      if (scale_ <= options_.min_scale) {
        throw Error("loss scale is already at its minimum (" + std::to_string(options_.min_scale) +
                    ") and gradients still overflow at step " + std::to_string(iteration_) +
                    "; lower the learning rate, check the model for inf/nan, or lower "
                    "fp16.min_loss_scale");
      }
      scale_ = std::max(scale_ / options_.scale_factor, options_.min_scale);
      msg << "; scale reduced to " << scale_;
      log(LogLevel::kWarning, msg.str());
    } else {
      --hysteresis_left_;
      msg << "; scale kept (hysteresis " << hysteresis_left_ << " left)";
      log(LogLevel::kWarning, msg.str());
    }
    last_overflow_iteration_ = iteration_;
  } else if (dynamic()) {
    if (options_.consecutive_hysteresis) hysteresis_left_ = options_.hysteresis;
    if ((iteration_ - last_overflow_iteration_) % options_.scale_window == 0) {
      if (!options_.consecutive_hysteresis) hysteresis_left_ = options_.hysteresis;
      scale_ *= options_.scale_factor;
    }
  }
  ++iteration_;
  return overflow;
}

LossScalerState LossScaler::state() const {
  return {scale_, iteration_, last_overflow_iteration_, hysteresis_left_, skipped_};
}

void LossScaler::restore(const LossScalerState& s) {
  if (!(s.scale > 0) || s.hysteresis_left < 1) {
    throw Error("loss scaler state: expected scale > 0 and hysteresis_left >= 1, got scale " +
                std::to_string(s.scale) + ", hysteresis_left " + std::to_string(s.hysteresis_left));
  }
  scale_ = dynamic() ? s.scale : options_.static_scale;
  iteration_ = s.iteration;
  last_overflow_iteration_ = s.last_overflow_iteration;
  hysteresis_left_ = s.hysteresis_left;
  skipped_ = s.skipped;
}

}  // namespace zshard::optim
