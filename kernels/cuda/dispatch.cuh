#pragma once

// Host-side helpers of the CUDA launchers: dtype -> C++ type dispatch,
// alignment, grid size, and launch-error checks.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "kernels/cuda/element.cuh"
#include "kernels/kernels.h"
#include "runtime/core/error.h"

namespace zshard::kernels::cuda {

template <typename T>
struct Tag {
  using type = T;
};

template <typename F>
void dispatch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat16: return f(Tag<__half>{});
    case DType::kBFloat16: return f(Tag<__nv_bfloat16>{});
    default: return f(Tag<float>{});
  }
}

// Like dispatch, with NoStore for an absent output.
template <typename F>
void dispatchOut(View v, F&& f) {
  if (v.data == nullptr) return f(Tag<NoStore>{});
  dispatch(v.dtype, f);
}

template <typename F>
void dispatchAligned(bool aligned, F&& f) {
  if (aligned) return f(std::true_type{});
  f(std::false_type{});
}

inline bool aligned16(std::initializer_list<const void*> ptrs) {
  return std::all_of(ptrs.begin(), ptrs.end(),
                     [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; });
}

constexpr int kThreads = 256;

// One kVec group per thread over the whole array: on an H200 this beat a
// grid sized to the SM count with a grid-stride loop (150 vs 140 G
// elements/s for the AdamW step), the hardware block scheduler keeping more
// loads in flight. Kernels still loop, so any n is covered.
template <typename Kernel>
int gridFor(Kernel, int64_t n, int /*sm_count*/) {
  const int64_t needed = (n + int64_t(kThreads) * kVec - 1) / (int64_t(kThreads) * kVec);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(needed, int64_t{1} << 30)));
}

inline void checkLaunch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    throw Error(std::string("CUDA kernel ") + kernel + " failed to launch: " + cudaGetErrorName(e) +
                " (" + cudaGetErrorString(e) + ")");
  }
}

}  // namespace zshard::kernels::cuda
