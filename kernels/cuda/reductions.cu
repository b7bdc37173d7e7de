// Deterministic squared L2 norm: a fixed grid of blocks each reduces a fixed
// subset (grid-stride) in fp64 with a fixed tree, then one block adds the
// partials in order. Same input and GPU -> same bits.
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/dispatch.cuh"

namespace zshard::kernels::cuda {

namespace {

constexpr int kNormThreads = 256;

__device__ double blockSum(double value, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  return shared[0];
}

template <typename T, bool kAligned>
__global__ void partialNormKernel(const T* __restrict__ x, int64_t n, double* partials) {
  __shared__ double shared[kNormThreads];
  double sum = 0;
  ZSHARD_FOR_VEC(i, n) {
    float e[kVec];
    loadVec<T, kAligned>(x, i, n, e);
#pragma unroll
    for (int k = 0; k < kVec; ++k) sum += double(e[k]) * double(e[k]);
  }
  const double total = blockSum(sum, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void finalNormKernel(const double* partials, int count, double* result) {
  __shared__ double shared[kNormThreads];
  double sum = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  const double total = blockSum(sum, shared);
  if (threadIdx.x == 0) *result = total;
}

__global__ void flagToDoubleKernel(const int32_t* flag, double* out) {
  *out = *flag != 0 ? 1.0 : 0.0;
}

}  // namespace

void launchFlagToDouble(const Launch& l, const int32_t* flag, double* out) {
  flagToDoubleKernel<<<1, 1, 0, static_cast<cudaStream_t>(l.stream)>>>(flag, out);
  checkLaunch("flagToDouble");
}

int normBlocks(const Launch& l) {
  return l.sm_count * 4;
}

void launchSquaredNorm(const Launch& l, ConstView x, int64_t n, double* partials, int blocks,
                       double* result) {
  cudaStream_t s = static_cast<cudaStream_t>(l.stream);
  const bool aligned = aligned16({x.data});
  dispatch(x.dtype, [&](auto t) {
    dispatchAligned(aligned, [&](auto a) {
      using T = typename decltype(t)::type;
      partialNormKernel<T, decltype(a)::value>
          <<<blocks, kNormThreads, 0, s>>>(static_cast<const T*>(x.data), n, partials);
    });
  });
  finalNormKernel<<<1, kNormThreads, 0, s>>>(partials, blocks, result);
  checkLaunch("squaredNorm");
}

}  // namespace zshard::kernels::cuda
