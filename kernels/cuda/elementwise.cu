// The element-wise CUDA twins of kernels.h: one pass over each array with
// 16-byte vector accesses. The arithmetic mirrors kernels/cpu/kernel_chunks.cc.
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/dispatch.cuh"

namespace zshard::kernels::cuda {

namespace {

// Adam's moment update for one element; returns mhat / (sqrt(vhat) + eps).
// The same arithmetic as kernels/cpu/kernel_chunks.cc's adamDirection.
__device__ __forceinline__ float adamDirection(float& m, float& v, float g, const AdamCoeffs& c) {
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  return m * c.inv_bias1 / (sqrtf(v) * c.inv_sqrt_bias2 + c.eps);
}

template <typename G, typename P, bool kAligned>
__global__ void adamKernel(float* __restrict__ master, float* __restrict__ m, float* __restrict__ v,
                           const G* __restrict__ grad, P* __restrict__ out, int64_t n, AdamCoeffs c,
                           float grad_scale, const float* scale_ptr, const int32_t* skip_ptr) {
  if (skip_ptr != nullptr && *skip_ptr != 0) return;
  if (scale_ptr != nullptr) grad_scale *= *scale_ptr;
  ZSHARD_FOR_VEC(i, n) {
    float p[kVec], mm[kVec], vv[kVec], g[kVec];
    loadVec<float, kAligned>(master, i, n, p);
    loadVec<float, kAligned>(m, i, n, mm);
    loadVec<float, kAligned>(v, i, n, vv);
    loadVec<G, kAligned>(grad, i, n, g);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const float direction = adamDirection(mm[k], vv[k], g[k] * grad_scale + c.l2_decay * p[k], c);
      p[k] -= c.lr * (direction + c.decoupled_decay * p[k]);
    }
    storeVec<float, kAligned>(master, i, n, p);
    storeVec<float, kAligned>(m, i, n, mm);
    storeVec<float, kAligned>(v, i, n, vv);
    storeVec<P, kAligned>(out, i, n, p);
  }
}

template <typename G, typename P, bool kAligned>
__global__ void sgdKernel(float* __restrict__ master, float* __restrict__ buf,
                          const G* __restrict__ grad, P* __restrict__ out, int64_t n, SgdCoeffs c,
                          float grad_scale) {
  const float keep = c.first_step ? 0.f : c.momentum,
              add = c.first_step ? 1.f : c.one_minus_dampening;
  ZSHARD_FOR_VEC(i, n) {
    float p[kVec], g[kVec], b[kVec];
    loadVec<float, kAligned>(master, i, n, p);
    loadVec<G, kAligned>(grad, i, n, g);
    if (c.use_momentum) loadVec<float, kAligned>(buf, i, n, b);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      float d = g[k] * grad_scale + c.weight_decay * p[k];
      if (c.use_momentum) {
        b[k] = keep * b[k] + add * d;
        d = c.nesterov ? d + c.momentum * b[k] : b[k];
      }
      p[k] -= c.lr * d;
    }
    if (c.use_momentum) storeVec<float, kAligned>(buf, i, n, b);
    storeVec<float, kAligned>(master, i, n, p);
    storeVec<P, kAligned>(out, i, n, p);
  }
}

template <typename G, bool kAligned>
__global__ void lambKernel(const float* __restrict__ master, float* __restrict__ m,
                           float* __restrict__ v, const G* __restrict__ grad,
                           float* __restrict__ update, int64_t n, AdamCoeffs c, float grad_scale) {
  ZSHARD_FOR_VEC(i, n) {
    float p[kVec], mm[kVec], vv[kVec], g[kVec], u[kVec];
    loadVec<float, kAligned>(master, i, n, p);
    loadVec<float, kAligned>(m, i, n, mm);
    loadVec<float, kAligned>(v, i, n, vv);
    loadVec<G, kAligned>(grad, i, n, g);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      u[k] = adamDirection(mm[k], vv[k], g[k] * grad_scale, c) + c.decoupled_decay * p[k];
    }
    storeVec<float, kAligned>(m, i, n, mm);
    storeVec<float, kAligned>(v, i, n, vv);
    storeVec<float, kAligned>(update, i, n, u);
  }
}

template <typename P, bool kAligned>
__global__ void applyKernel(float* __restrict__ master, const float* __restrict__ update,
                            float alpha, P* __restrict__ out, int64_t n) {
  ZSHARD_FOR_VEC(i, n) {
    float p[kVec], u[kVec];
    loadVec<float, kAligned>(master, i, n, p);
    loadVec<float, kAligned>(update, i, n, u);
#pragma unroll
    for (int k = 0; k < kVec; ++k) p[k] += alpha * u[k];
    storeVec<float, kAligned>(master, i, n, p);
    storeVec<P, kAligned>(out, i, n, p);
  }
}

// dst = src (kAccumulate: dst += src), converted.
template <typename S, typename D, bool kAccumulate, bool kAligned>
__global__ void castKernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  ZSHARD_FOR_VEC(i, n) {
    float s[kVec];
    loadVec<S, kAligned>(src, i, n, s);
    if (kAccumulate) {
      float d[kVec];
      loadVec<D, kAligned>(dst, i, n, d);
#pragma unroll
      for (int k = 0; k < kVec; ++k) s[k] += d[k];
    }
    storeVec<D, kAligned>(dst, i, n, s);
  }
}

template <typename T, bool kAligned>
__global__ void unscaleKernel(T* __restrict__ x, int64_t n, float multiplier, int32_t* flag) {
  bool bad = false;
  ZSHARD_FOR_VEC(i, n) {
    float e[kVec];
    loadVec<T, kAligned>(x, i, n, e);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      e[k] *= multiplier;
      bad |= (i + k < n) && nonFinite(e[k]);
    }
    storeVec<T, kAligned>(x, i, n, e);
  }
  if (bad) *flag = 1;
}

template <typename T, bool kAligned>
__global__ void nonFiniteKernel(const T* __restrict__ x, int64_t n, int32_t* flag) {
  bool bad = false;
  ZSHARD_FOR_VEC(i, n) {
    float e[kVec];
    loadVec<T, kAligned>(x, i, n, e);
#pragma unroll
    for (int k = 0; k < kVec; ++k) bad |= (i + k < n) && nonFinite(e[k]);
  }
  if (bad) *flag = 1;
}

cudaStream_t stream(const Launch& l) {
  return static_cast<cudaStream_t>(l.stream);
}

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), const Launch& l, int64_t n, Args... args) {
  kernel<<<gridFor(kernel, n, l.sm_count), kThreads, 0, stream(l)>>>(args...);
}

}  // namespace

void launchAdam(const Launch& l, float* master, float* m, float* v, ConstView grad, View model,
                int64_t n, const AdamCoeffs& c, float grad_scale, const float* scale_ptr,
                const int32_t* skip_ptr) {
  if (n == 0) return;
  const bool aligned = aligned16({master, m, v, grad.data, model.data});
  dispatch(grad.dtype, [&](auto g) {
    dispatchOut(model, [&](auto p) {
      dispatchAligned(aligned, [&](auto a) {
        using G = typename decltype(g)::type;
        using P = typename decltype(p)::type;
        launch(adamKernel<G, P, decltype(a)::value>, l, n, master, m, v,
               static_cast<const G*>(grad.data), static_cast<P*>(model.data), n, c, grad_scale,
               scale_ptr, skip_ptr);
      });
    });
  });
  checkLaunch("adamStep");
}

void launchSgd(const Launch& l, float* master, float* buf, ConstView grad, View model, int64_t n,
               const SgdCoeffs& c, float grad_scale) {
  if (n == 0) return;
  const bool aligned = aligned16({master, buf, grad.data, model.data});
  dispatch(grad.dtype, [&](auto g) {
    dispatchOut(model, [&](auto p) {
      dispatchAligned(aligned, [&](auto a) {
        using G = typename decltype(g)::type;
        using P = typename decltype(p)::type;
        launch(sgdKernel<G, P, decltype(a)::value>, l, n, master, buf,
               static_cast<const G*>(grad.data), static_cast<P*>(model.data), n, c, grad_scale);
      });
    });
  });
  checkLaunch("sgdStep");
}

void launchLamb(const Launch& l, const float* master, float* m, float* v, ConstView grad,
                float* update, int64_t n, const AdamCoeffs& c, float grad_scale) {
  if (n == 0) return;
  const bool aligned = aligned16({master, m, v, grad.data, update});
  dispatch(grad.dtype, [&](auto g) {
    dispatchAligned(aligned, [&](auto a) {
      using G = typename decltype(g)::type;
      launch(lambKernel<G, decltype(a)::value>, l, n, master, m, v,
             static_cast<const G*>(grad.data), update, n, c, grad_scale);
    });
  });
  checkLaunch("lambUpdate");
}

void launchApply(const Launch& l, float* master, const float* update, float alpha, View model,
                 int64_t n) {
  if (n == 0) return;
  const bool aligned = aligned16({master, update, model.data});
  dispatchOut(model, [&](auto p) {
    dispatchAligned(aligned, [&](auto a) {
      using P = typename decltype(p)::type;
      launch(applyKernel<P, decltype(a)::value>, l, n, master, update, alpha,
             static_cast<P*>(model.data), n);
    });
  });
  checkLaunch("applyUpdate");
}

template <bool kAccumulate>
void launchCastLike(const Launch& l, ConstView src, View dst, int64_t n, const char* name) {
  if (n == 0) return;
  const bool aligned = aligned16({src.data, dst.data});
  dispatch(src.dtype, [&](auto s) {
    dispatch(dst.dtype, [&](auto d) {
      dispatchAligned(aligned, [&](auto a) {
        using S = typename decltype(s)::type;
        using D = typename decltype(d)::type;
        launch(castKernel<S, D, kAccumulate, decltype(a)::value>, l, n,
               static_cast<const S*>(src.data), static_cast<D*>(dst.data), n);
      });
    });
  });
  checkLaunch(name);
}

void launchCast(const Launch& l, ConstView src, View dst, int64_t n) {
  launchCastLike<false>(l, src, dst, n, "cast");
}

void launchAccumulate(const Launch& l, View dst, ConstView src, int64_t n) {
  launchCastLike<true>(l, src, dst, n, "accumulate");
}

void launchUnscale(const Launch& l, View x, int64_t n, float multiplier, int32_t* flag) {
  if (n == 0) return;
  const bool aligned = aligned16({x.data});
  dispatch(x.dtype, [&](auto t) {
    dispatchAligned(aligned, [&](auto a) {
      using T = typename decltype(t)::type;
      launch(unscaleKernel<T, decltype(a)::value>, l, n, static_cast<T*>(x.data), n, multiplier,
             flag);
    });
  });
  checkLaunch("unscale");
}

void launchNonFinite(const Launch& l, ConstView x, int64_t n, int32_t* flag) {
  if (n == 0) return;
  const bool aligned = aligned16({x.data});
  dispatch(x.dtype, [&](auto t) {
    dispatchAligned(aligned, [&](auto a) {
      using T = typename decltype(t)::type;
      launch(nonFiniteKernel<T, decltype(a)::value>, l, n, static_cast<const T*>(x.data), n, flag);
    });
  });
  checkLaunch("hasNonFinite");
}

}  // namespace zshard::kernels::cuda
