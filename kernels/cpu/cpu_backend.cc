// The host Backend: heap memory and the CPU kernels.
#include "kernels/cpu/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "runtime/core/error.h"

namespace zshard::kernels {

// calloc: a large block comes zeroed from mmap without being touched, so
// it becomes resident only as it is written (an engine filling its buffer
// from the model's tensors, which are freed as they are copied, never holds
// both). 64-byte aligned so that shards start on vector (and cache line)
// boundaries; the block's own address is kept just below the aligned one.
void* CpuBackend::allocate(size_t bytes) {
  const size_t padded = (bytes + 63) / 64 * 64 + 64;
  char* raw = static_cast<char*>(std::calloc(1, padded + 64));
  if (raw == nullptr) {
    throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  }
  const uintptr_t at = (reinterpret_cast<uintptr_t>(raw) + sizeof(void*) + 63) / 64 * 64;
  void** aligned = reinterpret_cast<void**>(at);
  aligned[-1] = raw;
  return aligned;
}

void CpuBackend::release(void* p) {
  if (p != nullptr) std::free(static_cast<void**>(p)[-1]);
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  std::memmove(dst, src, bytes);
}

void CpuBackend::zero(void* p, size_t bytes) {
  std::memset(p, 0, bytes);
}

void CpuBackend::adamStep(float* master, float* m, float* v, ConstView grad, View model, int64_t n,
                          const AdamHyper& h, float grad_scale) {
  kernels::adamStep(master, m, v, grad, model, n, h, grad_scale);
}

void CpuBackend::sgdStep(float* master, float* buf, ConstView grad, View model, int64_t n,
                         const SgdHyper& h, float grad_scale) {
  kernels::sgdStep(master, buf, grad, model, n, h, grad_scale);
}

void CpuBackend::lambUpdate(const float* master, float* m, float* v, ConstView grad, float* update,
                            int64_t n, const AdamHyper& h, float grad_scale) {
  kernels::lambUpdate(master, m, v, grad, update, n, h, grad_scale);
}

void CpuBackend::applyUpdate(float* master, const float* update, float alpha, View model,
                             int64_t n) {
  kernels::applyUpdate(master, update, alpha, model, n);
}

bool CpuBackend::unscale(View x, int64_t n, float multiplier) {
  return kernels::unscale(x, n, multiplier);
}

bool CpuBackend::hasNonFinite(ConstView x, int64_t n) {
  return kernels::hasNonFinite(x, n);
}

double CpuBackend::squaredNorm(ConstView x, int64_t n) {
  return kernels::squaredNorm(x, n);
}

void CpuBackend::squaredNormInto(ConstView x, int64_t n, double* out) {
  *out = kernels::squaredNorm(x, n);
}

void CpuBackend::nonFiniteAndNorm(ConstView x, int64_t n, double* out) {
  out[0] = kernels::hasNonFinite(x, n) ? 1.0 : 0.0;
  out[1] = kernels::squaredNorm(x, n);
}

void CpuBackend::scale(View x, int64_t n, float s) {
  kernels::scale(x, n, s);
}

void CpuBackend::cast(ConstView src, View dst, int64_t n) {
  kernels::cast(src, dst, n);
}

void CpuBackend::accumulate(View dst, ConstView src, int64_t n) {
  kernels::accumulate(dst, src, n);
}

namespace {

// Host memory offloaded to from the host backend: itself its host memory.
class OffloadHostBackend : public CpuBackend {
 public:
  std::string name() const override { return "cpu (offload)"; }
  Backend& hostBackend(bool) override { return *this; }
};

}  // namespace

Backend& CpuBackend::hostBackend(bool) {
  static OffloadHostBackend offload;
  return offload;
}

Backend& cpuBackend() {
  static CpuBackend backend;
  return backend;
}

Backend& backendFor(bool use_gpu, int device) {
  if (!use_gpu) return cpuBackend();
  return cudaBackend(device);
}

void copyBetween(Backend& to, void* dst, Backend& from, const void* src, size_t bytes) {
  if (&to == &from || (to.onHost() && from.onHost())) return to.copy(dst, src, bytes);
  if (from.onHost()) return to.copyFromHost(dst, src, bytes);
  if (to.onHost()) return from.copyToHost(dst, src, bytes);
  throw Error("copyBetween: " + from.name() + " to " + to.name() +
              ": copies between two devices go through the host");
}

int hostThreads() {
  return omp_get_max_threads();
}

void setHostThreads(int threads) {
  omp_set_num_threads(std::max(1, threads));
}

}  // namespace zshard::kernels
