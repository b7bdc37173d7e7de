#include "runtime/zero/bucket_schedule.h"

namespace zshard::zero {

BucketSchedule::BucketSchedule(const shard::ShardPlan& plan, int64_t bucket_numel)
    : buckets_(plan.buckets(bucket_numel)), buckets_of_param_(plan.params().size()) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const std::vector<int> params = plan.paramsIn(buckets_[b]);
    params_per_bucket_.push_back(static_cast<int>(params.size()));
    for (int p : params) buckets_of_param_[p].push_back(static_cast<int>(b));
  }
  reset();
}

bool BucketSchedule::arrive(int param) {
  if (arrived_.at(param)) return false;
  arrived_[param] = true;
  return true;
}

int BucketSchedule::takeReady() {
  if (next_ < 0 || pending_[next_] != 0) return -1;
  return next_--;
}

std::vector<int64_t> BucketSchedule::launchBytes(size_t element) const {
  std::vector<int64_t> out;
  for (auto b = buckets_.rbegin(); b != buckets_.rend(); ++b) {
    out.push_back(b->size() * static_cast<int64_t>(element));
  }
  return out;
}

void BucketSchedule::reset() {
  arrived_.assign(buckets_of_param_.size(), false);
  pending_ = params_per_bucket_;
  next_ = static_cast<int>(buckets_.size()) - 1;
}

}  // namespace zshard::zero
