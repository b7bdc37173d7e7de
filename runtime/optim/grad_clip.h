#pragma once

namespace zshard::optim {

// The one multiplier applied to reduced gradients in the fused step, with
// DeepSpeed's unscale_and_clip semantics: grads divided by `divisor` are
// the mean (e.g. world x micro steps, less any division done before the
// reduction) and carry `loss_scale`; `sq_norm` is the global squared L2 norm of
// those summed, scaled gradients. Returns 1 / (divisor * loss_scale * clip)
// where clip = (norm_of_mean_unscaled + 1e-6) / max_norm when that exceeds
// 1 (max_norm > 0), else 1. Pure function.
float gradMultiplier(double sq_norm, double divisor, double loss_scale, double max_norm);

}  // namespace zshard::optim
