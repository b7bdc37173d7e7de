#pragma once

#include <cstdint>

#include "runtime/core/dtype.h"

// One API for zshard's numeric kernels. The CPU implementation (kernels/cpu)
// is vectorised for the best ISA the machine has (AVX-512, AVX2, portable;
// chosen once at first use) and OpenMP-parallel; the CUDA twins share these
// signatures and are tested against them. All kernels are element-wise or
// fixed-order reductions, so results do not depend on the thread count.
// Pointers may not alias unless stated; n may be 0.
namespace zshard::kernels {

struct ConstView {
  const void* data = nullptr;
  DType dtype = DType::kFloat32;
};

// data == nullptr means "no output" where an output is optional.
struct View {
  void* data = nullptr;
  DType dtype = DType::kFloat32;
};

// Adam / AdamW with DeepSpeed's (apex FusedAdam) semantics. `step` counts
// from 1. adam_w_mode: decoupled weight decay (AdamW); otherwise L2 added
// to the gradient.
struct AdamHyper {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
  bool adam_w_mode = true;
  bool bias_correction = true;
  int64_t step = 1;
  // Read where the kernel runs (device memory for CUDA), so a training loop
  // needs no host sync per step: when set, the gradient multiplier is
  // grad_scale * *scale_ptr, and the step does nothing while *skip_ptr != 0
  // (an overflow flag).
  const float* scale_ptr = nullptr;
  const int32_t* skip_ptr = nullptr;
};

// torch.optim.SGD semantics (the first step seeds the momentum buffer).
struct SgdHyper {
  float lr = 1e-2f;
  float momentum = 0.f;
  float dampening = 0.f;
  float weight_decay = 0.f;
  bool nesterov = false;
  int64_t step = 1;
};

// g = grad * grad_scale (unscale and clip folded in); updates the fp32
// master, m and v in place; writes the updated master rounded to `model`
// (fp32/fp16/bf16) in the same pass when model.data is set.
void adamStep(float* master, float* m, float* v, ConstView grad, View model, int64_t n,
              const AdamHyper& h, float grad_scale);

// SGD with momentum on the same terms; momentum_buf unused when momentum == 0.
void sgdStep(float* master, float* momentum_buf, ConstView grad, View model, int64_t n,
             const SgdHyper& h, float grad_scale);

// Lamb, first half: updates m and v and writes the Adam direction plus
// weight decay, mhat / (sqrt(vhat) + eps) + wd * master, to `update`. The
// caller forms each parameter's trust ratio from squaredNorm of master and
// update, then calls applyUpdate with alpha = -lr * ratio.
void lambUpdate(const float* master, float* m, float* v, ConstView grad, float* update, int64_t n,
                const AdamHyper& h, float grad_scale);

// master += alpha * update; writes `model` like adamStep.
void applyUpdate(float* master, const float* update, float alpha, View model, int64_t n);

// x *= multiplier in place; returns true when any result is inf or nan.
bool unscale(View x, int64_t n, float multiplier);

// True when any element is inf or nan.
bool hasNonFinite(ConstView x, int64_t n);

// Sum of squares accumulated in fp64 over fixed chunks, summed in order:
// deterministic for a given ISA. inf/nan inputs give inf/nan.
double squaredNorm(ConstView x, int64_t n);

// x *= s in place.
void scale(View x, int64_t n, float s);

// dst = src converted (round to nearest even; nan stays nan).
void cast(ConstView src, View dst, int64_t n);

// dst += src (dst and src may differ in dtype), e.g. gradient accumulation.
void accumulate(View dst, ConstView src, int64_t n);

// The ISA the CPU kernels run with: "avx512", "avx2" or "portable".
const char* cpuIsa();

}  // namespace zshard::kernels
