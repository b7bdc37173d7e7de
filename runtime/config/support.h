#pragma once

#include "runtime/config/config.h"
#include "runtime/config/diagnostic.h"

namespace zshard::config {

// What a valid config makes the runtime do, decided in one place for the
// engine, the summary and the startup line.

// The dtype gradients are accumulated and reduced in:
// communication_data_type, else data_types.grad_accum_dtype, else the
// training precision.
Precision gradientPrecision(const Config& c);

// The global-norm clipping threshold: gradient_clipping, or Lamb's
// max_grad_norm, the smaller when both are set; 0 = off.
double clippingThreshold(const Config& c);

// Features the schema accepts that zshard does not run yet (stage 3,
// offload, two different gradient dtypes) become errors naming the key,
// with the same message from check-config and initialize(); choices that
// change what DeepSpeed would do become warnings.
void checkSupported(const Config& c, Diagnostics& diags);

}  // namespace zshard::config
