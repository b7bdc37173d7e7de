// NCCL adapter: NCCL and CUDA types stay in this file.
#include "runtime/comm/nccl/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <future>
#include <mutex>
#include <numeric>
#include <thread>

#include "kernels/backend.h"
#include "runtime/comm/collective_runner.h"
#include "runtime/core/error.h"
#include "runtime/rendezvous/store.h"

#define ZSHARD_CHECK_NCCL(call)                                                                    \
  do {                                                                                             \
    const ncclResult_t zshard_r = (call);                                                          \
    if (zshard_r != ncclSuccess && zshard_r != ncclInProgress) {                                   \
      throw CommError(std::string(#call) + " failed at " __FILE__ ":" + std::to_string(__LINE__) + \
                      ": " + ncclGetErrorString(zshard_r) + " (NCCL " +                            \
                      std::to_string(NCCL_VERSION_CODE) + ")");                                    \
    }                                                                                              \
  } while (0)

#define ZSHARD_CHECK_CUDA_COMM(call)                                                               \
  do {                                                                                             \
    const cudaError_t zshard_e = (call);                                                           \
    if (zshard_e != cudaSuccess) {                                                                 \
      throw CommError(std::string(#call) + " failed at " __FILE__ ":" + std::to_string(__LINE__) + \
                      ": " + cudaGetErrorName(zshard_e));                                          \
    }                                                                                              \
  } while (0)

namespace zshard::comm {

namespace {

ncclDataType_t ncclType(DType t) {
  switch (t) {
    case DType::kFloat16: return ncclFloat16;
    case DType::kBFloat16: return ncclBfloat16;
    default: return ncclFloat32;
  }
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(rendezvous::Store* store, ncclComm_t comm, int rank, int size,
                   kernels::Backend& device, int device_index, const NcclOptions& options)
      : comm_(comm),
        rank_(rank),
        size_(size),
        device_(device),
        device_index_(device_index),
        options_(options),
        runner_(store, options.name, rank, size, options.timeout) {
    ZSHARD_CHECK_CUDA_COMM(cudaSetDevice(device_index));
    ZSHARD_CHECK_CUDA_COMM(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }

  ~NcclCommunicator() override {
    cudaSetDevice(device_index_);
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::shared_ptr<Work> reduceScatter(void* buffer, DType dtype,
                                      std::vector<int64_t> counts) override {
    checkCounts(counts);
    return enqueue("reduceScatter", total(counts), dtype, [=] {
      const size_t e = dtypeSize(dtype);
      char* base = static_cast<char*>(buffer);
      if (equal(counts)) {
        ZSHARD_CHECK_NCCL(ncclReduceScatter(base, base + rank_ * counts[0] * e, counts[0],
                                            ncclType(dtype), ncclSum, comm_, stream_));
        return;
      }
      ZSHARD_CHECK_NCCL(ncclGroupStart());
      int64_t offset = 0;
      for (int r = 0; r < size_; ++r) {
        if (counts[r] > 0) {
          ZSHARD_CHECK_NCCL(ncclReduce(base + offset * e, base + offset * e, counts[r],
                                       ncclType(dtype), ncclSum, r, comm_, stream_));
        }
        offset += counts[r];
      }
      ZSHARD_CHECK_NCCL(ncclGroupEnd());
    });
  }

  std::shared_ptr<Work> allGather(void* buffer, DType dtype, std::vector<int64_t> counts) override {
    checkCounts(counts);
    return enqueue("allGather", total(counts), dtype, [=] {
      const size_t e = dtypeSize(dtype);
      char* base = static_cast<char*>(buffer);
      if (equal(counts)) {
        ZSHARD_CHECK_NCCL(ncclAllGather(base + rank_ * counts[0] * e, base, counts[0],
                                        ncclType(dtype), comm_, stream_));
        return;
      }
      ZSHARD_CHECK_NCCL(ncclGroupStart());
      int64_t offset = 0;
      for (int r = 0; r < size_; ++r) {
        if (counts[r] > 0) {
          ZSHARD_CHECK_NCCL(ncclBroadcast(base + offset * e, base + offset * e, counts[r],
                                          ncclType(dtype), r, comm_, stream_));
        }
        offset += counts[r];
      }
      ZSHARD_CHECK_NCCL(ncclGroupEnd());
    });
  }

  std::shared_ptr<Work> allReduce(void* buffer, DType dtype, int64_t count) override {
    return enqueue("allReduce", count, dtype, [=] {
      ZSHARD_CHECK_NCCL(
          ncclAllReduce(buffer, buffer, count, ncclType(dtype), ncclSum, comm_, stream_));
    });
  }

  std::shared_ptr<Work> broadcast(void* buffer, DType dtype, int64_t count, int root) override {
    if (root < 0 || root >= size_) {
      throw Error("broadcast: " +
                  expectedGot("root in 0.." + std::to_string(size_ - 1), std::to_string(root)));
    }
    return enqueue("broadcast", count, dtype, [=] {
      ZSHARD_CHECK_NCCL(
          ncclBroadcast(buffer, buffer, count, ncclType(dtype), root, comm_, stream_));
    });
  }

  std::shared_ptr<Work> barrier() override {
    return enqueue("barrier", 0, DType::kFloat32, [=] {
      ZSHARD_CHECK_NCCL(
          ncclAllReduce(barrier_word(), barrier_word(), 1, ncclFloat32, ncclSum, comm_, stream_));
    });
  }

  ncclComm_t comm() const { return comm_; }
  kernels::Backend& device() const { return device_; }
  int deviceIndex() const { return device_index_; }
  const NcclOptions& options() const { return options_; }

 private:
  // Captures "everything queued on the compute stream so far" as an event,
  // then on the comm thread: the comm stream waits for it and `issue`
  // queues the NCCL call(s) behind those already queued; the runner polls
  // the completion event (no wait before the next collective is issued).
  std::shared_ptr<Work> enqueue(const char* name, int64_t elements, DType dtype,
                                std::function<void()> issue) {
    checkNotBroken(name);
    ZSHARD_CHECK_CUDA_COMM(cudaSetDevice(device_index_));
    cudaEvent_t ready;
    ZSHARD_CHECK_CUDA_COMM(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    ZSHARD_CHECK_CUDA_COMM(cudaEventRecord(ready, static_cast<cudaStream_t>(device_.stream())));
    return runner_.enqueueIssued(
        name, elements, dtype, [this, ready, issue = std::move(issue)]() -> CollectiveRunner::Poll {
          cudaSetDevice(device_index_);
          if (comm_ == nullptr)
            throw CommError("the NCCL communicator was aborted: " + brokenReason());
          ZSHARD_CHECK_CUDA_COMM(cudaStreamWaitEvent(stream_, ready, 0));
          cudaEventDestroy(ready);
          issue();
          cudaEvent_t raw;
          ZSHARD_CHECK_CUDA_COMM(cudaEventCreateWithFlags(&raw, cudaEventDisableTiming));
          std::shared_ptr<CUevent_st> done(raw, cudaEventDestroy);
          ZSHARD_CHECK_CUDA_COMM(cudaEventRecord(raw, stream_));
          const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
          return [this, done, deadline] { return completed(done.get(), deadline); };
        });
  }

  // Whether the collective recorded as `done` has completed; on an async
  // NCCL error or past the deadline, aborts the communicator (so no rank
  // hangs in it) and throws.
  bool completed(cudaEvent_t done, std::chrono::steady_clock::time_point deadline) {
    const cudaError_t q = cudaEventQuery(done);
    if (q == cudaSuccess) return true;
    if (q != cudaErrorNotReady) {
      throw CommError(std::string("CUDA error while waiting: ") + cudaGetErrorName(q));
    }
    ncclResult_t async = ncclSuccess;
    if (comm_ != nullptr) ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      const std::string why =
          std::string("NCCL reported an asynchronous error: ") + ncclGetErrorString(async);
      abort(why);
      throw CommError(why);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      const std::string why = "NCCL did not complete within " +
                              std::to_string(options_.timeout.count()) +
                              " ms; communicator aborted";
      abort(why);
      throw TimeoutError(why);
    }
    return false;
  }

  // ncclCommAbort frees the GPU from a hung collective, so shutdown and the
  // failure report do not wait behind it; the communicator is then broken
  // and every later collective fails at once with the reason.
  void abort(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(broken_mutex_);
      if (broken_.empty()) broken_ = why;
    }
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  std::string brokenReason() {
    std::lock_guard<std::mutex> lock(broken_mutex_);
    return broken_;
  }

  void checkNotBroken(const char* name) {
    const std::string why = brokenReason();
    if (!why.empty()) {
      throw CommError(std::string(name) + ": the NCCL communicator was aborted earlier (" + why +
                      "); it runs no more collectives");
    }
  }

  float* barrier_word() {
    if (barrier_word_ == nullptr)
      barrier_word_ = static_cast<float*>(device_.allocate(sizeof(float)));
    return barrier_word_;
  }

  void checkCounts(const std::vector<int64_t>& counts) const {
    if (static_cast<int>(counts.size()) != size_) {
      throw Error("NCCL collective: " +
                  expectedGot(std::to_string(size_) + " counts", std::to_string(counts.size())));
    }
  }
  static bool equal(const std::vector<int64_t>& c) {
    return std::all_of(c.begin(), c.end(), [&](int64_t x) { return x == c[0]; });
  }
  static int64_t total(const std::vector<int64_t>& c) {
    return std::accumulate(c.begin(), c.end(), int64_t{0});
  }

  ncclComm_t comm_;
  int rank_, size_;
  kernels::Backend& device_;
  int device_index_;
  NcclOptions options_;
  cudaStream_t stream_ = nullptr;
  float* barrier_word_ = nullptr;
  std::mutex broken_mutex_;
  std::string broken_;       // why the communicator was aborted; empty: usable
  CollectiveRunner runner_;  // last: its thread stops first
};

// ncclCommInitRank blocks until every rank has joined; a rank that never
// comes would hang this one forever. It runs on a helper thread that is
// abandoned (the process is about to fail) when the timeout passes.
ncclComm_t initWithTimeout(const ncclUniqueId& id, int rank, int size, int device_index,
                           Millis timeout) {
  auto result = std::make_shared<std::promise<ncclComm_t>>();
  std::future<ncclComm_t> joined = result->get_future();
  std::thread([=] {
    try {
      ZSHARD_CHECK_CUDA_COMM(cudaSetDevice(device_index));
      ncclComm_t comm = nullptr;
      ZSHARD_CHECK_NCCL(ncclCommInitRank(&comm, size, id, rank));
      result->set_value(comm);
    } catch (...) {
      result->set_exception(std::current_exception());
    }
  }).detach();
  if (joined.wait_for(timeout) != std::future_status::ready) {
    throw TimeoutError("ncclCommInitRank: rank " + std::to_string(rank) + " of " +
                       std::to_string(size) + " waited " + std::to_string(timeout.count()) +
                       " ms for the other ranks to join NCCL; some never started or are stuck");
  }
  return joined.get();
}

}  // namespace

std::unique_ptr<Communicator> makeNcclCommunicator(rendezvous::Store& store, int rank, int size,
                                                   kernels::Backend& device, int device_index,
                                                   const NcclOptions& options) {
  ncclUniqueId id;
  if (rank == 0) {
    ZSHARD_CHECK_NCCL(ncclGetUniqueId(&id));
    store.set(options.name + "/unique_id", std::string(id.internal, sizeof id.internal));
  }
  const std::string bytes = store.get(options.name + "/unique_id", options.timeout);
  if (bytes.size() != sizeof id.internal) {
    throw CommError(
        "NCCL unique id from the store: " +
        expectedGot(std::to_string(sizeof id.internal) + " bytes", std::to_string(bytes.size())));
  }
  std::memcpy(id.internal, bytes.data(), bytes.size());
  ncclComm_t comm = initWithTimeout(id, rank, size, device_index, options.timeout);
  return std::make_unique<NcclCommunicator>(&store, comm, rank, size, device, device_index,
                                            options);
}

std::unique_ptr<Communicator> splitNcclCommunicator(Communicator& parent, int color, int key) {
  auto* nccl = dynamic_cast<NcclCommunicator*>(&parent);
  if (nccl == nullptr) throw Error("splitNcclCommunicator: expected an NCCL communicator");
  ZSHARD_CHECK_CUDA_COMM(cudaSetDevice(nccl->deviceIndex()));
  ncclComm_t child = nullptr;
  ZSHARD_CHECK_NCCL(ncclCommSplit(nccl->comm(), color, key, &child, nullptr));
  if (child == nullptr)
    throw CommError("ncclCommSplit gave no communicator (color NCCL_SPLIT_NOCOLOR?)");
  int rank = 0, size = 0;
  ZSHARD_CHECK_NCCL(ncclCommUserRank(child, &rank));
  ZSHARD_CHECK_NCCL(ncclCommCount(child, &size));
  return std::make_unique<NcclCommunicator>(nullptr, child, rank, size, nccl->device(),
                                            nccl->deviceIndex(), nccl->options());
}

}  // namespace zshard::comm
