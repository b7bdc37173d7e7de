#pragma once

#include <vector>

#include "runtime/shard/shard_plan.h"

namespace zshard::zero {

// The order in which one micro step's gradient buckets are reduced.
// Collectives pair up across ranks by their order alone, so the order is a
// function of the layout, never of which gradients a rank produced: buckets
// go from the last to the first (the order backward fills them when
// parameters are laid out in forward order), and a bucket whose gradients
// are complete waits for every bucket after it. Pure bookkeeping: no
// memory, no communication. Not thread-safe.
class BucketSchedule {
 public:
  BucketSchedule(const shard::ShardPlan& plan, int64_t bucket_numel);

  const std::vector<shard::Range>& buckets() const { return buckets_; }
  // The buckets parameter `param` overlaps, ascending.
  const std::vector<int>& bucketsOf(int param) const { return buckets_of_param_.at(param); }

  // Records the micro step's first gradient of `param`; false when it had
  // one already (a second backward over it).
  bool arrive(int param);
  // One parameter's part of bucket b is in.
  void filled(int b) { --pending_.at(b); }
  // The next bucket to reduce when it is complete, marked launched; -1
  // when it is not (or every bucket was launched).
  int takeReady();
  // The next bucket to reduce whatever it holds (gradients that never came
  // count as zeros), marked launched; -1 once every bucket was.
  int takeNext() { return next_ >= 0 ? next_-- : -1; }
  bool launched(int b) const { return b > next_; }
  bool anyLaunched() const { return next_ < static_cast<int>(buckets_.size()) - 1; }
  // Each bucket's bytes at `element` bytes per element, in launch order.
  std::vector<int64_t> launchBytes(size_t element) const;
  // A new micro step: nothing arrived, nothing launched.
  void reset();

 private:
  std::vector<shard::Range> buckets_;
  std::vector<int> params_per_bucket_;
  std::vector<std::vector<int>> buckets_of_param_;
  std::vector<bool> arrived_;
  std::vector<int> pending_;
  int next_ = -1;  // the next bucket to launch; -1: all launched
};

}  // namespace zshard::zero
