#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/core/timeouts.h"
#include "runtime/shard/shard_plan.h"

namespace zshard::zero {

// Turns the gradients each rank produces into the sum over ranks (and over
// the micro steps of one accumulation window) of this rank's shard. The
// two ZeRO stages differ only here. Not thread-safe: one backward at a time.
class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  // One parameter's gradient of the current micro step (grad dtype,
  // parameter numel elements, on the backend's device), consumed in order
  // on the device before any later work. `boundary`: this micro step ends
  // the accumulation window (stages 0-1 with overlap reduce its buckets
  // during its backward). A second one for the same parameter is summed
  // with the first (a UsageError once its bucket was reduced).
  virtual void addGradient(int param, const void* grad, bool boundary) = 0;
  // The micro step's backward is over; gradients never added count as zero.
  // At the accumulation boundary every reduction has finished on return.
  virtual void endMicroStep(bool boundary) = 0;
  // This rank's reduced shard (shardNumel elements); valid after a boundary.
  virtual kernels::View ownedGradients() = 0;
  // The whole reduced flat buffer (totalNumel elements, flat layout) where
  // the stage keeps one after a boundary (stage 0); a null view otherwise.
  virtual kernels::View fullGradients() { return {nullptr, DType::kFloat32}; }
  // Forgets the window's gradients (after a step or a skipped step).
  virtual void zero() = 0;
  virtual int64_t gradientBytes() const = 0;  // gradient storage
  virtual int64_t bucketBytes() const = 0;    // communication buffers
  // The bytes of each collective one reduction issues, in issue order
  // (stage 2, and stages 0-1 with overlap at the boundary: one per bucket;
  // stages 0-1 without: the whole buffer): what the comms log must show.
  virtual std::vector<int64_t> collectiveBytes() const = 0;
};

struct ReducerOptions {
  kernels::Backend* backend = nullptr;  // where gradients live; required
  DType grad_dtype = DType::kFloat32;
  int64_t bucket_numel = 500000000;
  // DeepSpeed's overlap_comm. Stage 2: a bucket's reduction runs while
  // backward goes on; false: addGradient waits for the reductions it
  // started. Stages 0-1: the boundary's buckets are reduced as backward
  // completes them; false: the whole buffer in one collective after it.
  bool overlap = true;
  float prescale = 1.0f;  // gradients are multiplied by this before they are reduced
  // Stage 0 (DeepSpeed's DDP-like mode): the boundary all-reduces the whole
  // buffer, so every rank holds every summed gradient, not only its shard.
  bool all_reduce = false;
  comm::Millis timeout = kDefaultCollectiveTimeout;
  // Stage 2 and 3: told this rank's shard elements (shard-relative) whose
  // reduction of the current micro step was added in, as each bucket
  // finishes during backward (the offloaded optimizer starts copying
  // them); may be empty.
  std::function<void(shard::Range)> on_reduced;
};

// Stages 0 and 1: accumulates whole gradients locally; reduce-scatters (or,
// with all_reduce, all-reduces) the flat gradient buffer at the boundary —
// with overlap bucket by bucket (in BucketSchedule's order) while the
// boundary's backward goes on, else in one collective after it.
std::unique_ptr<GradientReducer> makeBoundaryReducer(const shard::ShardPlan& plan,
                                                     comm::Communicator& comm,
                                                     const ReducerOptions& options);

// Stage 2: copies gradients into buckets and reduce-scatters them on the
// communicator's thread while the caller's backward goes on, from the last
// bucket to the first: a bucket goes once its own gradients and every later
// bucket are in, so every rank issues the same collectives in the same order
// whichever parameters it used (an unused one counts as zeros). This rank's
// part of each reduced bucket is added to a shard-sized gradient buffer.
std::unique_ptr<GradientReducer> makeBucketReducer(const shard::ShardPlan& plan,
                                                   comm::Communicator& comm,
                                                   const ReducerOptions& options);

}  // namespace zshard::zero
