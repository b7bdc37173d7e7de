#pragma once

#include <cstdint>
#include <vector>

#include "runtime/core/dtype.h"

namespace zshard::shard {

// A half-open range [begin, end) of elements of the flat buffer.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
  bool operator==(const Range& o) const { return begin == o.begin && end == o.end; }
};

// Intersection of two ranges (empty, with begin == end, when disjoint).
Range intersect(Range a, Range b);

// One parameter as the caller describes it, in flattening order (DeepSpeed
// and zshard flatten in backward order so buckets fill front to back).
struct ParamSpec {
  std::vector<int64_t> shape;
  DType dtype = DType::kBFloat16;
};

// The number of elements of a tensor of `shape` (1 for a scalar's {}).
inline int64_t numelOf(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Where a parameter lives in the flat buffer.
struct ParamSlot {
  int64_t offset = 0;  // aligned
  int64_t numel = 0;
  Range range() const { return {offset, offset + numel}; }
};

// The part of one parameter that falls in one rank's shard.
struct ParamSlice {
  int param = 0;
  Range flat;              // in the flat buffer
  int64_t param_offset{};  // first element of the slice within the parameter
};

// The partition of a parameter list across `world_size` ranks, as pure
// arithmetic (no memory, no devices). Parameters are laid out in the given
// order, each starting at a multiple of `alignment` elements; the total is
// padded to a multiple of world_size * alignment so every shard is equally
// long and aligned. Rank r owns [r*S, (r+1)*S) with S = shardNumel().
// Immutable after build(); thread-safe to share.
class ShardPlan {
 public:
  // Throws Error when the list is empty, dtypes differ, a dimension is
  // negative, world_size < 1 or alignment < 1.
  static ShardPlan build(const std::vector<ParamSpec>& params, int world_size, int64_t alignment);

  int worldSize() const { return world_size_; }
  DType dtype() const { return dtype_; }
  int64_t alignment() const { return alignment_; }
  int64_t totalNumel() const { return total_; }  // padded
  int64_t paramNumel() const;                    // sum of parameter sizes
  int64_t shardNumel() const { return total_ / world_size_; }
  const std::vector<ParamSlot>& params() const { return slots_; }

  Range ownerRange(int rank) const;
  int ownerOf(int64_t flat_index) const;
  // The slices of every parameter that overlaps rank's shard, in order.
  std::vector<ParamSlice> slicesInShard(int rank) const;
  // Indices of the parameters that overlap `range`, in order.
  std::vector<int> paramsIn(Range range) const;
  // Consecutive ranges covering [0, totalNumel()), each at most
  // `bucket_numel` long (rounded up to the alignment) and ending on an
  // alignment boundary. bucket_numel < 1 is an Error.
  std::vector<Range> buckets(int64_t bucket_numel) const;
  // Element counts of `range` falling in each rank's shard (sum = size).
  std::vector<int64_t> countsPerRank(Range range) const;

 private:
  ShardPlan() = default;

  int world_size_ = 1;
  DType dtype_ = DType::kBFloat16;
  int64_t alignment_ = 1;
  int64_t total_ = 0;
  std::vector<ParamSlot> slots_;
};

}  // namespace zshard::shard
