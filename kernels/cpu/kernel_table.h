#pragma once

// Internal to kernels/cpu: the single-threaded chunk kernels of one ISA, as
// a table indexed by dtype. kernel_chunks.cc is compiled once per ISA
// (CMake sets ZSHARD_KERNEL_ISA); cpu_kernels.cc picks a table at run time
// and parallelises over chunks with OpenMP.
#include <cstdint>

#include "kernels/adam_coeffs.h"

namespace zshard::kernels::cpu {

using kernels::AdamCoeffs;
using kernels::SgdCoeffs;

// Dtype indexes: grads and sources 0 fp32, 1 fp16, 2 bf16; model outputs
// additionally 3 = none.
using AdamFn = void (*)(float* master, float* m, float* v, const void* grad, void* model, int64_t n,
                        const AdamCoeffs& c, float grad_scale);
using SgdFn = void (*)(float* master, float* buf, const void* grad, void* model, int64_t n,
                       const SgdCoeffs& c, float grad_scale);
using LambFn = void (*)(const float* master, float* m, float* v, const void* grad, float* update,
                        int64_t n, const AdamCoeffs& c, float grad_scale);
using ApplyFn = void (*)(float* master, const float* update, float alpha, void* model, int64_t n);
using UnscaleFn = bool (*)(void* x, int64_t n, float multiplier);
using NonFiniteFn = bool (*)(const void* x, int64_t n);
using NormFn = double (*)(const void* x, int64_t n);
using CastFn = void (*)(const void* src, void* dst, int64_t n);

struct KernelTable {
  const char* isa;
  AdamFn adam[3][4];
  SgdFn sgd[3][4];
  LambFn lamb[3];
  ApplyFn apply[4];
  UnscaleFn unscale[3];
  NonFiniteFn non_finite[3];
  NormFn squared_norm[3];
  CastFn cast[3][3];
  CastFn accumulate[3][3];  // dst += src, [dst][src]
};

const KernelTable& tableAvx512();
const KernelTable& tableAvx2();
const KernelTable& tablePortable();

// The best table for this CPU (defined by isa_x86.cc or isa_generic.cc).
const KernelTable& selectTable();

}  // namespace zshard::kernels::cpu
