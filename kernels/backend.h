#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/kernels.h"

namespace zshard::kernels {

// Memory and kernels of one kind of device, behind one interface so that the
// ZeRO engine runs unchanged on host or GPU buffers. Pointers passed to a
// backend live on its device. Kernels are asynchronous on a GPU (ordered on
// the backend's compute stream) except those returning a value, which wait.
// Chosen in one place: backendFor().
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu", "cuda:0"
  virtual bool onHost() const = 0;

  virtual void* allocate(size_t bytes) = 0;  // zero-filled; throws on failure
  virtual void release(void* p) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // both on this device
  virtual void copyToHost(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copyFromHost(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void synchronize() = 0;  // all queued work done
  // The compute stream (cudaStream_t) on a GPU; nullptr on the host.
  virtual void* stream() const = 0;
  // Later work of this backend starts after what is queued on `producer`
  // (a cudaStream_t of the same device, e.g. torch's current stream) now,
  // ordered on the GPU by an event: no host wait. No-op on the host.
  virtual void waitForStream(void* producer) = 0;

  // Transfers between this device and host memory that do not block the
  // host: queued on the backend's transfer stream after the compute work
  // queued so far (a copy to the host sees the values written before it),
  // overlapping compute and the host's work when the host memory is
  // pinned. Each returns a ticket; waitTransfer(t) blocks until transfer t
  // and every earlier one finished (and rethrows a failure). On the host
  // the copy is done on return.
  virtual uint64_t copyToHostAsync(void* host_dst, const void* src, size_t bytes) = 0;
  virtual uint64_t copyFromHostAsync(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void waitTransfer(uint64_t ticket) = 0;
  // The host memory this device transfers with: the host backend's kernels
  // on memory that is page-locked when `pinned` (a GPU's DMA then reads it
  // directly). The host backend returns itself. Lives as long as this.
  virtual Backend& hostBackend(bool pinned) = 0;

  virtual void adamStep(float* master, float* m, float* v, ConstView grad, View model, int64_t n,
                        const AdamHyper& h, float grad_scale) = 0;
  virtual void sgdStep(float* master, float* momentum_buf, ConstView grad, View model, int64_t n,
                       const SgdHyper& h, float grad_scale) = 0;
  virtual void lambUpdate(const float* master, float* m, float* v, ConstView grad, float* update,
                          int64_t n, const AdamHyper& h, float grad_scale) = 0;
  virtual void applyUpdate(float* master, const float* update, float alpha, View model,
                           int64_t n) = 0;
  virtual bool unscale(View x, int64_t n, float multiplier) = 0;
  virtual bool hasNonFinite(ConstView x, int64_t n) = 0;
  virtual double squaredNorm(ConstView x, int64_t n) = 0;
  // Both of the above without waiting: out (2 doubles in this backend's
  // memory) = {1 if an element of x is not finite else 0, squared L2 norm}.
  virtual void nonFiniteAndNorm(ConstView x, int64_t n, double* out) = 0;
  // squaredNorm without waiting: *out (a double in this backend's memory)
  // = the squared L2 norm of x (Lamb's per-parameter norms, read back once).
  virtual void squaredNormInto(ConstView x, int64_t n, double* out) = 0;
  virtual void scale(View x, int64_t n, float s) = 0;  // asynchronous
  virtual void cast(ConstView src, View dst, int64_t n) = 0;
  virtual void accumulate(View dst, ConstView src, int64_t n) = 0;
};

// The host backend (kernels.h's CPU kernels); shared, thread-safe.
Backend& cpuBackend();

// `bytes` from `src` (in `from`'s memory) to `dst` (in `to`'s), whichever
// of the two is a device; blocking.
void copyBetween(Backend& to, void* dst, Backend& from, const void* src, size_t bytes);

// The threads the host kernels use (OpenMP), and setting them: a step on
// the host shares the node's cores with the node's other ranks.
int hostThreads();
void setHostThreads(int threads);

// The CUDA backend for one GPU (created on first use, one per device).
// Throws Error when this build has no CUDA or the device is unusable.
Backend& cudaBackend(int device);

// Number of usable CUDA devices (0 in CPU-only builds or without a driver).
int cudaDeviceCount();

// Whether a usable CUDA device exists (false in CPU-only builds and on
// machines without a driver or GPU).
bool cudaAvailable();

// "cpu", or "cuda" on CUDA device `device`.
Backend& backendFor(bool use_gpu, int device);

}  // namespace zshard::kernels

namespace zshard::kernels {

// Owned memory of one Backend (zeroed at allocation); movable, not copyable.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& backend, size_t bytes)
      : backend_(&backend), data_(backend.allocate(bytes)), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() {
    if (data_ != nullptr) backend_->release(data_);
  }
  char* data() const { return static_cast<char*>(data_); }
  float* floats() const { return static_cast<float*>(data_); }
  size_t size() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }

 private:
  Backend* backend_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace zshard::kernels
