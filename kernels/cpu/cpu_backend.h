#pragma once

#include <cstdint>
#include <string>

#include "kernels/backend.h"

namespace zshard::kernels {

// The host Backend: heap memory and the CPU kernels. A class of its own so
// that host memory of another kind (a GPU's pinned memory) keeps these
// kernels and only changes allocation. Thread-safe (no state).
class CpuBackend : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  bool onHost() const override { return true; }
  void* allocate(size_t bytes) override;  // 64-byte aligned, zeroed, resident once written
  void release(void* p) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void copyFromHost(void* dst, const void* src, size_t bytes) override { copy(dst, src, bytes); }
  void zero(void* p, size_t bytes) override;
  void synchronize() override {}
  void* stream() const override { return nullptr; }
  void waitForStream(void*) override {}
  uint64_t copyToHostAsync(void* dst, const void* src, size_t bytes) override {
    copy(dst, src, bytes);
    return 0;
  }
  uint64_t copyFromHostAsync(void* dst, const void* src, size_t bytes) override {
    copy(dst, src, bytes);
    return 0;
  }
  void waitTransfer(uint64_t) override {}
  // A second host backend, so that what is offloaded is accounted apart
  // even when the "device" is the host (CPU workers); same kernels.
  Backend& hostBackend(bool pinned) override;

  void adamStep(float* master, float* m, float* v, ConstView grad, View model, int64_t n,
                const AdamHyper& h, float grad_scale) override;
  void sgdStep(float* master, float* buf, ConstView grad, View model, int64_t n, const SgdHyper& h,
               float grad_scale) override;
  void lambUpdate(const float* master, float* m, float* v, ConstView grad, float* update, int64_t n,
                  const AdamHyper& h, float grad_scale) override;
  void applyUpdate(float* master, const float* update, float alpha, View model, int64_t n) override;
  bool unscale(View x, int64_t n, float multiplier) override;
  bool hasNonFinite(ConstView x, int64_t n) override;
  double squaredNorm(ConstView x, int64_t n) override;
  void nonFiniteAndNorm(ConstView x, int64_t n, double* out) override;
  void squaredNormInto(ConstView x, int64_t n, double* out) override;
  void scale(View x, int64_t n, float s) override;
  void cast(ConstView src, View dst, int64_t n) override;
  void accumulate(View dst, ConstView src, int64_t n) override;
};

}  // namespace zshard::kernels
