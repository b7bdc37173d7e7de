#include "runtime/optim/grad_clip.h"

#include <cmath>

namespace zshard::optim {

float gradMultiplier(double sq_norm, double divisor, double loss_scale, double max_norm) {
  double combined = loss_scale * divisor;
  if (max_norm > 0) {
    const double norm = std::sqrt(sq_norm) / combined;  // of the mean, unscaled gradient
    const double clip = (norm + 1e-6) / max_norm;
    if (clip > 1) combined *= clip;
  }
  return static_cast<float>(1.0 / combined);
}

}  // namespace zshard::optim
