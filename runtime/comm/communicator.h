#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/core/dtype.h"

namespace zshard::comm {

using Millis = std::chrono::milliseconds;

// A collective in flight. wait() blocks until it completes and rethrows its
// error (CommError, or TimeoutError naming the collective, its sequence
// number and size). Thread-safe.
class Work {
 public:
  virtual ~Work() = default;
  // Throws TimeoutError (and reports the hang) if not done within `timeout`.
  virtual void wait(Millis timeout) = 0;
  virtual bool done() const = 0;
};

// Collectives over the ranks of one group, on host (Gloo) or device (NCCL)
// buffers. Calls return at once; collectives run in call order, one at a
// time, and every rank must issue the same sequence. In-place throughout:
// `counts` gives each rank's chunk of `buffer` (chunks consecutive in rank
// order, zero allowed). Buffers must stay valid until the Work is done.
// After a failure or timeout the communicator is broken: later calls fail
// at once with the first error.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Afterwards this rank's chunk holds the sum over ranks of that chunk;
  // other chunks are scratch.
  virtual std::shared_ptr<Work> reduceScatter(void* buffer, DType dtype,
                                              std::vector<int64_t> counts) = 0;
  // Afterwards every chunk holds what its rank had in it.
  virtual std::shared_ptr<Work> allGather(void* buffer, DType dtype,
                                          std::vector<int64_t> counts) = 0;
  // Sum over ranks of `count` elements, in place.
  virtual std::shared_ptr<Work> allReduce(void* buffer, DType dtype, int64_t count) = 0;
  virtual std::shared_ptr<Work> broadcast(void* buffer, DType dtype, int64_t count, int root) = 0;
  virtual std::shared_ptr<Work> barrier() = 0;
};

// Splits `count` elements into `ranks` near-equal consecutive chunks.
std::vector<int64_t> evenCounts(int64_t count, int ranks);

}  // namespace zshard::comm
