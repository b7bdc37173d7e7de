#pragma once

// Device-side element access for the CUDA kernels: conversions to and from
// fp32 (round to nearest even, like kernels/cpu/element.h) and 8-element
// vector loads/stores — 16-byte transactions (two for fp32) when the
// pointer is 16-byte aligned and 8 elements remain, scalar otherwise.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace zshard::kernels::cuda {

struct NoStore {};  // "no model copy"

__device__ __forceinline__ float toF(float x) { return x; }
__device__ __forceinline__ float toF(__half x) { return __half2float(x); }
__device__ __forceinline__ float toF(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T fromF(float x);
template <>
__device__ __forceinline__ float fromF<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half fromF<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 fromF<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

constexpr int kVec = 8;

template <typename T, bool kAligned>
__device__ __forceinline__ void load8(const T* p, int64_t i, int64_t n, float out[kVec]) {
  if (kAligned && i + kVec <= n) {
    if constexpr (sizeof(T) == 4) {
      const float4 a = *reinterpret_cast<const float4*>(p + i);
      const float4 b = *reinterpret_cast<const float4*>(p + i + 4);
      out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
      out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    } else {
      const uint4 raw = *reinterpret_cast<const uint4*>(p + i);
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int k = 0; k < kVec; ++k) out[k] = toF(e[k]);
    }
    return;
  }
#pragma unroll
  for (int k = 0; k < kVec; ++k) out[k] = i + k < n ? toF(p[i + k]) : 0.f;
}

template <typename T, bool kAligned>
__device__ __forceinline__ void store8(T* p, int64_t i, int64_t n, const float in[kVec]) {
  if constexpr (std::is_same_v<T, NoStore>) {
    return;
  } else {
    if (kAligned && i + kVec <= n) {
      if constexpr (sizeof(T) == 4) {
        *reinterpret_cast<float4*>(p + i) = make_float4(in[0], in[1], in[2], in[3]);
        *reinterpret_cast<float4*>(p + i + 4) = make_float4(in[4], in[5], in[6], in[7]);
      } else {
        uint4 raw;
        T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
        for (int k = 0; k < kVec; ++k) e[k] = fromF<T>(in[k]);
        *reinterpret_cast<uint4*>(p + i) = raw;
      }
      return;
    }
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (i + k < n) p[i + k] = fromF<T>(in[k]);
    }
  }
}

__device__ __forceinline__ bool nonFinite(float x) { return !isfinite(x); }

// Grid-stride over groups of kVec elements.
#define ZSHARD_FOR_VEC8(i, n)                                                        \
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * kVec; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x * kVec)

}  // namespace zshard::kernels::cuda
