#pragma once

// Device-side element access for the CUDA kernels: conversions to and from
// fp32 (round to nearest even, like kernels/cpu/element.h) and kVec-element
// vector loads/stores when the pointer is 16-byte aligned and kVec elements
// remain, scalar otherwise. The vector path streams (evict-first): a step
// touches each element once.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace zshard::kernels::cuda {

struct NoStore {};  // "no model copy"

__device__ __forceinline__ float toF(float x) {
  return x;
}
__device__ __forceinline__ float toF(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float toF(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

template <typename T>
__device__ __forceinline__ T fromF(float x);
template <>
__device__ __forceinline__ float fromF<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half fromF<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 fromF<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Four elements per thread: one 16-byte access for fp32 arrays (24 of the
// step's 28 bytes per element), 8 bytes for 16-bit ones. Measured on an H200,
// four beat eight (more threads in flight at fewer registers each).
constexpr int kVec = 4;

template <typename T, bool kAligned>
__device__ __forceinline__ void loadVec(const T* p, int64_t i, int64_t n, float out[kVec]) {
  if (kAligned && i + kVec <= n) {
    if constexpr (sizeof(T) == 4) {
      const float4 a = __ldcs(reinterpret_cast<const float4*>(p + i));
      out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
    } else {
      const uint2 raw = __ldcs(reinterpret_cast<const uint2*>(p + i));
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
__device__ __forceinline__ void storeVec(T* p, int64_t i, int64_t n, const float in[kVec]) {
  if constexpr (std::is_same_v<T, NoStore>) {
    return;
  } else {
    if (kAligned && i + kVec <= n) {
      if constexpr (sizeof(T) == 4) {
        __stcs(reinterpret_cast<float4*>(p + i), make_float4(in[0], in[1], in[2], in[3]));
      } else {
        uint2 raw;
        T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
        for (int k = 0; k < kVec; ++k) e[k] = fromF<T>(in[k]);
        __stcs(reinterpret_cast<uint2*>(p + i), raw);
      }
      return;
    }
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (i + k < n) p[i + k] = fromF<T>(in[k]);
    }
  }
}

__device__ __forceinline__ bool nonFinite(float x) {
  return !isfinite(x);
}

// Grid-stride over groups of kVec elements.
#define ZSHARD_FOR_VEC(i, n)                                                         \
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * kVec; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x * kVec)

}  // namespace zshard::kernels::cuda
