#pragma once

// Per-step Adam constants, computed once on the host and shared by the CPU
// and CUDA kernels (the same arithmetic in both, by construction).
#include <cmath>
#include <string>

#include "kernels/kernels.h"
#include "runtime/core/error.h"

namespace zshard::kernels {

struct AdamCoeffs {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float lr, eps;
  float l2_decay;         // added to the gradient (Adam, adam_w_mode off)
  float decoupled_decay;  // added to the update (AdamW)
  float inv_bias1, inv_sqrt_bias2;
};

struct SgdCoeffs {
  float lr, momentum, one_minus_dampening, weight_decay;
  bool first_step, nesterov, use_momentum;
};

inline AdamCoeffs adamCoeffs(const AdamHyper& h) {
  if (h.step < 1) throw Error("adam: " + expectedGot("step >= 1", std::to_string(h.step)));
  const double bias1 = h.bias_correction ? 1.0 - std::pow(double(h.beta1), double(h.step)) : 1.0;
  const double bias2 = h.bias_correction ? 1.0 - std::pow(double(h.beta2), double(h.step)) : 1.0;
  return {h.beta1,
          h.beta2,
          1.f - h.beta1,
          1.f - h.beta2,
          h.lr,
          h.eps,
          h.adam_w_mode ? 0.f : h.weight_decay,
          h.adam_w_mode ? h.weight_decay : 0.f,
          static_cast<float>(1.0 / bias1),
          static_cast<float>(1.0 / std::sqrt(bias2))};
}

inline SgdCoeffs sgdCoeffs(const SgdHyper& h) {
  return {h.lr,        h.momentum, 1.f - h.dampening, h.weight_decay,
          h.step <= 1, h.nesterov, h.momentum != 0.f};
}

// Lamb's decay is always part of the update.
inline AdamCoeffs lambCoeffs(AdamHyper h) {
  h.adam_w_mode = true;
  return adamCoeffs(h);
}

}  // namespace zshard::kernels
