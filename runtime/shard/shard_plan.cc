#include "runtime/shard/shard_plan.h"

#include <algorithm>
#include <string>

#include "runtime/core/error.h"

namespace zshard::shard {

namespace {

int64_t roundUp(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

int64_t numelOf(const ParamSpec& p, size_t index) {
  int64_t n = 1;
  for (int64_t d : p.shape) {
    if (d < 0) {
      throw Error("ShardPlan: parameter " + std::to_string(index) + ": " +
                  expectedGot("dimensions >= 0", std::to_string(d)));
    }
    n *= d;
  }
  return n;
}

void checkArguments(const std::vector<ParamSpec>& params, int world_size, int64_t alignment) {
  if (params.empty()) throw Error("ShardPlan: expected at least one parameter, got none");
  if (world_size < 1)
    throw Error("ShardPlan: " + expectedGot("world size >= 1", std::to_string(world_size)));
  if (alignment < 1)
    throw Error("ShardPlan: " + expectedGot("alignment >= 1", std::to_string(alignment)));
  for (size_t i = 1; i < params.size(); ++i) {
    if (params[i].dtype != params[0].dtype) {
      throw Error("ShardPlan: expected one dtype for all parameters, got " +
                  std::string(dtypeName(params[0].dtype)) + " (parameter 0) and " +
                  dtypeName(params[i].dtype) + " (parameter " + std::to_string(i) +
                  "); build one plan per dtype");
    }
  }
}

}  // namespace

Range intersect(Range a, Range b) {
  const int64_t begin = std::max(a.begin, b.begin);
  return {begin, std::max(begin, std::min(a.end, b.end))};
}

ShardPlan ShardPlan::build(const std::vector<ParamSpec>& params, int world_size,
                           int64_t alignment) {
  checkArguments(params, world_size, alignment);
  ShardPlan plan;
  plan.world_size_ = world_size;
  plan.dtype_ = params[0].dtype;
  plan.alignment_ = alignment;
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t numel = numelOf(params[i], i);
    plan.slots_.push_back({offset, numel});
    offset = roundUp(offset + numel, alignment);
  }
  plan.total_ = std::max<int64_t>(roundUp(offset, world_size * alignment), world_size * alignment);
  return plan;
}

int64_t ShardPlan::paramNumel() const {
  int64_t sum = 0;
  for (const ParamSlot& s : slots_) sum += s.numel;
  return sum;
}

Range ShardPlan::ownerRange(int rank) const {
  if (rank < 0 || rank >= world_size_) {
    throw Error("ShardPlan: " +
                expectedGot("rank in 0.." + std::to_string(world_size_ - 1), std::to_string(rank)));
  }
  return {rank * shardNumel(), (rank + 1) * shardNumel()};
}

int ShardPlan::ownerOf(int64_t flat_index) const {
  if (flat_index < 0 || flat_index >= total_) {
    throw Error("ShardPlan: " + expectedGot("an index in [0, " + std::to_string(total_) + ")",
                                            std::to_string(flat_index)));
  }
  return static_cast<int>(flat_index / shardNumel());
}

std::vector<int> ShardPlan::paramsIn(Range range) const {
  // Slots are sorted by offset: binary search for the first that ends after begin.
  auto first = std::partition_point(slots_.begin(), slots_.end(), [&](const ParamSlot& s) {
    return s.offset + s.numel <= range.begin;
  });
  std::vector<int> out;
  for (auto it = first; it != slots_.end() && it->offset < range.end; ++it) {
    if (!intersect(it->range(), range).empty())
      out.push_back(static_cast<int>(it - slots_.begin()));
  }
  return out;
}

std::vector<ParamSlice> ShardPlan::slicesInShard(int rank) const {
  const Range shard = ownerRange(rank);
  std::vector<ParamSlice> out;
  for (int p : paramsIn(shard)) {
    const Range flat = intersect(slots_[p].range(), shard);
    out.push_back({p, flat, flat.begin - slots_[p].offset});
  }
  return out;
}

std::vector<Range> ShardPlan::buckets(int64_t bucket_numel) const {
  if (bucket_numel < 1) {
    throw Error("ShardPlan: " +
                expectedGot("bucket size >= 1 element", std::to_string(bucket_numel)));
  }
  const int64_t step = roundUp(bucket_numel, alignment_);
  std::vector<Range> out;
  for (int64_t begin = 0; begin < total_; begin += step) {
    out.push_back({begin, std::min(total_, begin + step)});
  }
  return out;
}

std::vector<int64_t> ShardPlan::countsPerRank(Range range) const {
  std::vector<int64_t> counts(world_size_);
  for (int r = 0; r < world_size_; ++r) counts[r] = intersect(range, ownerRange(r)).size();
  return counts;
}

}  // namespace zshard::shard
