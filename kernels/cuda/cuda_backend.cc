// The CUDA Backend: device memory, one compute stream per device, and the
// kernel launchers of kernels/cuda. CUDA types stay in kernels/cuda.
#include <cuda_runtime_api.h>

#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_kernels.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"

#define ZSHARD_CHECK_CUDA(call)                                                                 \
  do {                                                                                          \
    const cudaError_t zshard_err = (call);                                                      \
    if (zshard_err != cudaSuccess) {                                                            \
      throw Error(std::string(#call) + " failed at " __FILE__ ":" + std::to_string(__LINE__) +  \
                  ": " + cudaGetErrorName(zshard_err) + " (" + cudaGetErrorString(zshard_err) + \
                  "; CUDA runtime " + std::to_string(CUDART_VERSION) + ")");                    \
    }                                                                                           \
  } while (0)

namespace zshard::kernels {

namespace {

// Host memory page-locked by the CUDA driver (cudaHostAlloc), so that the
// transfer stream's copies run as DMA while the host computes; the CPU
// kernels. When the driver cannot pin more (RLIMIT_MEMLOCK in a container,
// the machine's locked-memory limit) it falls back to pageable memory with
// one warning: transfers are then synchronous, results are the same.
class PinnedHostBackend : public CpuBackend {
 public:
  std::string name() const override { return "cpu (pinned)"; }
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaHostAlloc(&p, bytes == 0 ? 1 : bytes, cudaHostAllocPortable);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      warnOnce(bytes, e);
      return CpuBackend::allocate(bytes);
    }
    std::memset(p, 0, bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    pinned_.insert(p);
    return p;
  }
  void release(void* p) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (pinned_.erase(p) == 0) return CpuBackend::release(p);
    }
    cudaFreeHost(p);
  }

 private:
  void warnOnce(size_t bytes, cudaError_t e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (warned_) return;
    warned_ = true;
    log(LogLevel::kWarning,
        "pin_memory: the CUDA driver could not page-lock " + std::to_string(bytes) +
            " bytes of host memory (" + cudaGetErrorString(e) +
            "); using pageable memory, so host-device copies do not overlap compute. Raise the "
            "locked-memory limit (ulimit -l unlimited; in Slurm, PropagateResourceLimits or "
            "--propagate=MEMLOCK) or set pin_memory to false to silence this");
  }

  std::mutex mutex_;
  std::set<void*> pinned_;
  bool warned_ = false;
};

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    ZSHARD_CHECK_CUDA(cudaSetDevice(device));
    ZSHARD_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ZSHARD_CHECK_CUDA(cudaEventCreateWithFlags(&handoff_, cudaEventDisableTiming));
    ZSHARD_CHECK_CUDA(
        cudaDeviceGetAttribute(&launch_.sm_count, cudaDevAttrMultiProcessorCount, device));
    launch_.stream = stream_;
    ZSHARD_CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&flag_), sizeof(int32_t)));
    ZSHARD_CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&result_), sizeof(double)));
    ZSHARD_CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&partials_),
                                 sizeof(double) * cuda::normBlocks(launch_)));
  }

  std::string name() const override { return "cuda:" + std::to_string(device_); }
  bool onHost() const override { return false; }
  void* stream() const override { return stream_; }
  void waitForStream(void* producer) override {
    use();
    ZSHARD_CHECK_CUDA(cudaEventRecord(handoff_, static_cast<cudaStream_t>(producer)));
    ZSHARD_CHECK_CUDA(cudaStreamWaitEvent(stream_, handoff_, 0));
  }

  void* allocate(size_t bytes) override {
    use();
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (e != cudaSuccess) {
      throw Error("out of GPU memory on " + name() + " allocating " + std::to_string(bytes) +
                  " bytes (" + cudaGetErrorString(e) + ")");
    }
    ZSHARD_CHECK_CUDA(cudaMemsetAsync(p, 0, bytes, stream_));
    return p;
  }
  void release(void* p) override {
    use();
    cudaStreamSynchronize(stream_);
    cudaFree(p);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    use();
    ZSHARD_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  void copyToHost(void* dst, const void* src, size_t bytes) override {
    use();
    ZSHARD_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    ZSHARD_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  void copyFromHost(void* dst, const void* src, size_t bytes) override {
    use();
    ZSHARD_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    ZSHARD_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  void zero(void* p, size_t bytes) override {
    use();
    ZSHARD_CHECK_CUDA(cudaMemsetAsync(p, 0, bytes, stream_));
  }

  uint64_t copyToHostAsync(void* dst, const void* src, size_t bytes) override {
    return transfer(dst, src, bytes, cudaMemcpyDeviceToHost);
  }
  uint64_t copyFromHostAsync(void* dst, const void* src, size_t bytes) override {
    return transfer(dst, src, bytes, cudaMemcpyHostToDevice);
  }
  // Transfers finish in queue order (one stream), so waiting for ticket t
  // is waiting for its event; the events of t and before are recycled.
  void waitTransfer(uint64_t ticket) override {
    use();
    std::lock_guard<std::mutex> lock(transfer_mutex_);
    while (!in_transfer_.empty() && in_transfer_.front().first <= ticket) {
      const cudaEvent_t e = in_transfer_.front().second;
      in_transfer_.pop_front();
      free_events_.push_back(e);
      if (in_transfer_.empty() || in_transfer_.front().first > ticket) {
        ZSHARD_CHECK_CUDA(cudaEventSynchronize(e));
      }
    }
  }
  Backend& hostBackend(bool pinned) override {
    if (!pinned) return cpuBackend();
    return pinned_host_;
  }
  void synchronize() override {
    use();
    ZSHARD_CHECK_CUDA(cudaStreamSynchronize(stream_));
  }

  void adamStep(float* master, float* m, float* v, ConstView grad, View model, int64_t n,
                const AdamHyper& h, float grad_scale) override {
    use();
    cuda::launchAdam(launch_, master, m, v, grad, model, n, adamCoeffs(h), grad_scale, h.scale_ptr,
                     h.skip_ptr);
  }
  void sgdStep(float* master, float* buf, ConstView grad, View model, int64_t n, const SgdHyper& h,
               float grad_scale) override {
    use();
    cuda::launchSgd(launch_, master, buf, grad, model, n, sgdCoeffs(h), grad_scale);
  }
  void lambUpdate(const float* master, float* m, float* v, ConstView grad, float* update, int64_t n,
                  const AdamHyper& h, float grad_scale) override {
    use();
    cuda::launchLamb(launch_, master, m, v, grad, update, n, lambCoeffs(h), grad_scale);
  }
  void applyUpdate(float* master, const float* update, float alpha, View model,
                   int64_t n) override {
    use();
    cuda::launchApply(launch_, master, update, alpha, model, n);
  }
  bool unscale(View x, int64_t n, float multiplier) override {
    std::lock_guard<std::mutex> lock(scratch_mutex_);
    use();
    ZSHARD_CHECK_CUDA(cudaMemsetAsync(flag_, 0, sizeof(int32_t), stream_));
    cuda::launchUnscale(launch_, x, n, multiplier, flag_);
    return readFlag();
  }
  bool hasNonFinite(ConstView x, int64_t n) override {
    std::lock_guard<std::mutex> lock(scratch_mutex_);
    use();
    ZSHARD_CHECK_CUDA(cudaMemsetAsync(flag_, 0, sizeof(int32_t), stream_));
    cuda::launchNonFinite(launch_, x, n, flag_);
    return readFlag();
  }
  double squaredNorm(ConstView x, int64_t n) override {
    std::lock_guard<std::mutex> lock(scratch_mutex_);
    use();
    cuda::launchSquaredNorm(launch_, x, n, partials_, cuda::normBlocks(launch_), result_);
    double out = 0;
    ZSHARD_CHECK_CUDA(cudaMemcpyAsync(&out, result_, sizeof out, cudaMemcpyDeviceToHost, stream_));
    ZSHARD_CHECK_CUDA(cudaStreamSynchronize(stream_));
    return out;
  }
  void squaredNormInto(ConstView x, int64_t n, double* out) override {
    std::lock_guard<std::mutex> lock(scratch_mutex_);
    use();
    cuda::launchSquaredNorm(launch_, x, n, partials_, cuda::normBlocks(launch_), out);
  }
  void nonFiniteAndNorm(ConstView x, int64_t n, double* out) override {
    std::lock_guard<std::mutex> lock(scratch_mutex_);
    use();
    ZSHARD_CHECK_CUDA(cudaMemsetAsync(flag_, 0, sizeof(int32_t), stream_));
    cuda::launchNonFinite(launch_, x, n, flag_);
    cuda::launchFlagToDouble(launch_, flag_, out);
    cuda::launchSquaredNorm(launch_, x, n, partials_, cuda::normBlocks(launch_), out + 1);
  }
  // The unscale kernel without reading its flag back (every reader of
  // flag_ clears it first): no host wait.
  void scale(View x, int64_t n, float s) override {
    std::lock_guard<std::mutex> lock(scratch_mutex_);
    use();
    cuda::launchUnscale(launch_, x, n, s, flag_);
  }
  void cast(ConstView src, View dst, int64_t n) override {
    use();
    cuda::launchCast(launch_, src, dst, n);
  }
  void accumulate(View dst, ConstView src, int64_t n) override {
    use();
    cuda::launchAccumulate(launch_, dst, src, n);
  }

 private:
  // Calls may come from any thread (the comm thread too): bind the device.
  void use() const { ZSHARD_CHECK_CUDA(cudaSetDevice(device_)); }

  bool readFlag() {
    int32_t host = 0;
    ZSHARD_CHECK_CUDA(cudaMemcpyAsync(&host, flag_, sizeof host, cudaMemcpyDeviceToHost, stream_));
    ZSHARD_CHECK_CUDA(cudaStreamSynchronize(stream_));
    return host != 0;
  }

  // One transfer on the transfer stream, after the compute stream's queued
  // work; its ticket is the event recorded after it.
  uint64_t transfer(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    use();
    std::lock_guard<std::mutex> lock(transfer_mutex_);
    if (transfer_stream_ == nullptr) {
      ZSHARD_CHECK_CUDA(cudaStreamCreateWithFlags(&transfer_stream_, cudaStreamNonBlocking));
      ZSHARD_CHECK_CUDA(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
    }
    ZSHARD_CHECK_CUDA(cudaEventRecord(compute_done_, stream_));
    ZSHARD_CHECK_CUDA(cudaStreamWaitEvent(transfer_stream_, compute_done_, 0));
    ZSHARD_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, kind, transfer_stream_));
    cudaEvent_t done = nullptr;
    if (free_events_.empty()) {
      ZSHARD_CHECK_CUDA(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    } else {
      done = free_events_.back();
      free_events_.pop_back();
    }
    ZSHARD_CHECK_CUDA(cudaEventRecord(done, transfer_stream_));
    in_transfer_.emplace_back(++last_ticket_, done);
    return last_ticket_;
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  std::mutex transfer_mutex_;
  cudaStream_t transfer_stream_ = nullptr;  // made on the first transfer
  cudaEvent_t compute_done_ = nullptr;
  std::deque<std::pair<uint64_t, cudaEvent_t>> in_transfer_;
  std::vector<cudaEvent_t> free_events_;
  uint64_t last_ticket_ = 0;
  PinnedHostBackend pinned_host_;
  cudaEvent_t handoff_ = nullptr;  // waitForStream's, re-recorded each call
  cuda::Launch launch_;
  std::mutex scratch_mutex_;
  int32_t* flag_ = nullptr;
  double* result_ = nullptr;
  double* partials_ = nullptr;
};

}  // namespace

int cudaDeviceCount() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

bool cudaAvailable() {
  return cudaDeviceCount() > 0;
}

Backend& cudaBackend(int device) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<CudaBackend>> backends;
  std::lock_guard<std::mutex> lock(mutex);
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || device < 0 || device >= count) {
    throw Error(
        "no usable GPU " + std::to_string(device) + ": " +
        (e != cudaSuccess ? std::string(cudaGetErrorName(e)) : std::to_string(count) + " visible") +
        "; run on a GPU node or set \"use_gpu\" off");
  }
  auto& slot = backends[device];
  if (!slot) slot = std::make_unique<CudaBackend>(device);
  return *slot;
}

}  // namespace zshard::kernels
