#pragma once

// Internal to kernels/cuda: launchers of the CUDA twins of kernels.h, with
// plain C++ types (compiled by nvcc in *.cu, called from cuda_backend.cc).
// All are asynchronous on `stream`; `sm_count` sizes the grid.
#include <cstdint>

#include "kernels/adam_coeffs.h"
#include "kernels/kernels.h"

namespace zshard::kernels::cuda {

struct Launch {
  void* stream = nullptr;  // cudaStream_t
  int sm_count = 1;
};

void launchAdam(const Launch& l, float* master, float* m, float* v, ConstView grad, View model,
                int64_t n, const AdamCoeffs& c, float grad_scale, const float* scale_ptr,
                const int32_t* skip_ptr);
void launchSgd(const Launch& l, float* master, float* buf, ConstView grad, View model, int64_t n,
               const SgdCoeffs& c, float grad_scale);
void launchLamb(const Launch& l, const float* master, float* m, float* v, ConstView grad,
                float* update, int64_t n, const AdamCoeffs& c, float grad_scale);
void launchApply(const Launch& l, float* master, const float* update, float alpha, View model,
                 int64_t n);
// x *= multiplier; sets *flag (device int) to 1 when a result is not finite.
void launchUnscale(const Launch& l, View x, int64_t n, float multiplier, int32_t* flag);
void launchNonFinite(const Launch& l, ConstView x, int64_t n, int32_t* flag);
void launchCast(const Launch& l, ConstView src, View dst, int64_t n);
void launchAccumulate(const Launch& l, View dst, ConstView src, int64_t n);
// Deterministic: `blocks` partial sums (fp64) in `partials`, then one block
// adds them in a fixed order into *result.
void launchSquaredNorm(const Launch& l, ConstView x, int64_t n, double* partials, int blocks,
                       double* result);
// *out = (*flag != 0 ? 1 : 0), on the device.
void launchFlagToDouble(const Launch& l, const int32_t* flag, double* out);
// The grid launchSquaredNorm uses (and `partials` must hold).
int normBlocks(const Launch& l);

}  // namespace zshard::kernels::cuda
