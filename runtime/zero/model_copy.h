#pragma once

#include <cstdint>
#include <memory>

#include "kernels/backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/shard/shard_plan.h"

namespace zshard::zero {

// The 16-bit parameters the model computes with, in the plan's flat layout.
// Replicated (stages 0-2): the whole flat buffer on every rank, refreshed by
// an all-gather after each step. Sharded (stage 3): only this rank's shard
// lives; a run of consecutive parameters (a module's) is gathered from
// every rank's shard into a working buffer of its own while the model uses
// it, and released after, so no full copy ever exists. Collective where
// noted: every rank makes the same calls in the same order. Not
// thread-safe.
class ModelCopy {
 public:
  virtual ~ModelCopy() = default;
  // This rank's shard (shardNumel elements, param dtype, on the device or
  // where makeShardedCopy put it): what the optimizer step writes.
  virtual kernels::View ownShard() = 0;
  // After ownShard() changed: every rank's view is current again
  // (replicated: an all-gather; sharded: runs still gathered are gathered
  // again, the rest waits for the next gather). Collective.
  virtual void publish() = 0;
  // Parameters [first, last]'s values, contiguous from parameter first's
  // start, valid until release(first) (replicated: the flat buffer itself,
  // no communication). Gathering a live run again returns it and counts a
  // use. Collective for the sharded copy. UsageError for a run that
  // overlaps a different live one, or last < first.
  virtual void* gather(int first, int last) = 0;
  // Parameters [first, last]'s values into `out` (their flat range's
  // length in elements, param dtype, on the device), owned by the caller
  // (Python keeps torch tensors alive while autograd holds them). Nothing
  // is tracked. Collective for the sharded copy: every rank's (first,
  // last) is checked now; the values arrive in the background (a
  // prefetch), in call order with every other collective. `out` must stay
  // valid until the Work is done; its wait() rethrows a failure.
  virtual std::shared_ptr<comm::Work> startGatherInto(int first, int last, void* out) = 0;
  // Every rank ends a forward/backward pass here (collective for the
  // sharded copy): a rank that instead still gathers, having run other
  // modules than its peers, fails with them at once, each naming what every
  // rank did, rather than waiting on their gradient reductions. No-op for
  // the replicated copy.
  virtual void endPass() = 0;
  // Drops one use of the run starting at `first`; at none its buffer goes.
  // UsageError when it is not gathered.
  virtual void release(int first) = 0;
  // Bytes held now (the shard or the full buffer, plus live runs) and the
  // most held at any time.
  virtual int64_t bytes() const = 0;
  virtual int64_t peakBytes() const = 0;
  // Bytes of the shard kept in host memory instead (offload_param), not
  // counted in bytes().
  virtual int64_t offloadedBytes() const { return 0; }
  // Runs still gathered.
  virtual int liveRuns() const = 0;
  // Parameter `param`'s values, fp32 host memory (its numel floats), rounded
  // into the replicated copy's flat buffer a chunk at a time: no copy of the
  // whole model is staged. Local. The sharded copy takes its values from the
  // master shard instead (ownShard() and publish()): a no-op there.
  virtual void fillParam(int param, const float* values) {
    (void)param;
    (void)values;
  }
};

// `initial_rounded` holds the values already cast to `dtype` (host
// memory): the whole flat buffer (replicated; nullptr: zeros until
// fillParam) or this rank's shard (sharded; nullptr: unset until
// ownShard() is written and published).
std::unique_ptr<ModelCopy> makeReplicatedCopy(const shard::ShardPlan& plan,
                                              comm::Communicator& comm, kernels::Backend& backend,
                                              DType dtype, const char* initial_rounded,
                                              comm::Millis timeout);
// `shard_backend`: where this rank's shard lives (`backend`, or its host
// memory with offload_param: then ownShard() is host memory and each
// gather copies this rank's part to the device first).
std::unique_ptr<ModelCopy> makeShardedCopy(const shard::ShardPlan& plan, comm::Communicator& comm,
                                           kernels::Backend& backend,
                                           kernels::Backend& shard_backend, DType dtype,
                                           const char* initial_rounded, comm::Millis timeout);

}  // namespace zshard::zero
