// The host Backend: heap memory and the CPU kernels.
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/backend.h"
#include "runtime/core/error.h"

namespace zshard::kernels {

namespace {

class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  bool onHost() const override { return true; }
  void* allocate(size_t bytes) override {
    // 64-byte aligned so that shards start on vector (and cache line) boundaries.
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (p == nullptr)
      throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
    std::memset(p, 0, bytes);
    return p;
  }
  void release(void* p) override { std::free(p); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }
  void copyToHost(void* dst, const void* src, size_t bytes) override {
    std::memmove(dst, src, bytes);
  }
  void copyFromHost(void* dst, const void* src, size_t bytes) override {
    std::memmove(dst, src, bytes);
  }
  void zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void synchronize() override {}
  void* stream() const override { return nullptr; }
  void waitForStream(void*) override {}

  void adamStep(float* master, float* m, float* v, ConstView grad, View model, int64_t n,
                const AdamHyper& h, float grad_scale) override {
    kernels::adamStep(master, m, v, grad, model, n, h, grad_scale);
  }
  void sgdStep(float* master, float* buf, ConstView grad, View model, int64_t n, const SgdHyper& h,
               float grad_scale) override {
    kernels::sgdStep(master, buf, grad, model, n, h, grad_scale);
  }
  void lambUpdate(const float* master, float* m, float* v, ConstView grad, float* update, int64_t n,
                  const AdamHyper& h, float grad_scale) override {
    kernels::lambUpdate(master, m, v, grad, update, n, h, grad_scale);
  }
  void applyUpdate(float* master, const float* update, float alpha, View model,
                   int64_t n) override {
    kernels::applyUpdate(master, update, alpha, model, n);
  }
  bool unscale(View x, int64_t n, float multiplier) override {
    return kernels::unscale(x, n, multiplier);
  }
  bool hasNonFinite(ConstView x, int64_t n) override { return kernels::hasNonFinite(x, n); }
  double squaredNorm(ConstView x, int64_t n) override { return kernels::squaredNorm(x, n); }
  void nonFiniteAndNorm(ConstView x, int64_t n, double* out) override {
    out[0] = kernels::hasNonFinite(x, n) ? 1.0 : 0.0;
    out[1] = kernels::squaredNorm(x, n);
  }
  void scale(View x, int64_t n, float s) override { kernels::scale(x, n, s); }
  void cast(ConstView src, View dst, int64_t n) override { kernels::cast(src, dst, n); }
  void accumulate(View dst, ConstView src, int64_t n) override { kernels::accumulate(dst, src, n); }
};

}  // namespace

Backend& cpuBackend() {
  static CpuBackend backend;
  return backend;
}

Backend& backendFor(bool use_gpu, int device) {
  if (!use_gpu) return cpuBackend();
  return cudaBackend(device);
}

}  // namespace zshard::kernels
