// ZeRO stage 2's gradient path: buckets reduce-scattered while backward runs.
#include <algorithm>
#include <cstring>
#include <deque>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/zero/bucket_schedule.h"
#include "runtime/zero/gradient_reducer.h"

namespace zshard::zero {

namespace {

class BucketReducer : public GradientReducer {
 public:
  BucketReducer(const shard::ShardPlan& plan, comm::Communicator& comm, const ReducerOptions& o)
      : plan_(plan),
        comm_(comm),
        options_(o),
        element_(dtypeSize(o.grad_dtype)),
        schedule_(plan, o.bucket_numel),
        buckets_(schedule_.buckets()),
        own_(plan.ownerRange(comm.rank())),
        partition_(*o.backend, plan.shardNumel() * element_) {
    resetMicroStep();
  }

  void addGradient(int param, const void* grad, bool /*boundary*/) override {
    const shard::ParamSlot& slot = plan_.params().at(param);
    if (!schedule_.arrive(param)) return addAgain(param, grad);
    // In launch order (last bucket first), so that a parameter spanning
    // many buckets needs no more than the double buffer.
    const std::vector<int>& buckets = schedule_.bucketsOf(param);
    for (auto it = buckets.rbegin(); it != buckets.rend(); ++it) {
      const int b = *it;
      char* buffer = bufferFor(b);
      const shard::Range part = shard::intersect(slot.range(), buckets_[b]);
      char* into = buffer + (part.begin - buckets_[b].begin) * element_;
      options_.backend->copy(into,
                             static_cast<const char*>(grad) + (part.begin - slot.offset) * element_,
                             part.size() * element_);
      if (options_.prescale != 1.0f) {
        options_.backend->scale({into, options_.grad_dtype}, part.size(), options_.prescale);
      }
      schedule_.filled(b);
      for (int ready; (ready = schedule_.takeReady()) >= 0;) launch(ready);
    }
    if (!options_.overlap) {
      while (!in_flight_.empty()) retireOldest();
    }
  }

  void endMicroStep(bool /*boundary*/) override {
    // Buckets still waiting for parameters that got no gradient: send them
    // as they are (zeros where nothing arrived), in the same fixed order.
    for (int b; (b = schedule_.takeNext()) >= 0;) launch(b);
    while (!in_flight_.empty()) retireOldest();
    resetMicroStep();
  }

  // A second gradient of one parameter in one micro step (several backward
  // passes, e.g. re-entrant activation checkpointing): summed into its
  // buckets while none of them has been reduced yet.
  void addAgain(int param, const void* grad) {
    const shard::ParamSlot& slot = plan_.params().at(param);
    for (int b : schedule_.bucketsOf(param)) {
      if (schedule_.launched(b)) {
        throw UsageError(
            "got a second gradient in one micro step after its bucket was already reduced "
            "(a parameter used in two backward passes, e.g. re-entrant torch.utils.checkpoint "
            "segments); call engine.step() between backward passes, use "
            "checkpoint(..., use_reentrant=False), or ZeRO stage 1 with overlap_comm false");
      }
    }
    for (int b : schedule_.bucketsOf(param)) {
      const shard::Range part = shard::intersect(slot.range(), buckets_[b]);
      const kernels::View into{bufferFor(b) + (part.begin - buckets_[b].begin) * element_,
                               options_.grad_dtype};
      const float prescale = options_.prescale;
      if (prescale != 1.0f) options_.backend->scale(into, part.size(), 1.0f / prescale);
      options_.backend->accumulate(
          into,
          {static_cast<const char*>(grad) + (part.begin - slot.offset) * element_,
           options_.grad_dtype},
          part.size());
      if (prescale != 1.0f) options_.backend->scale(into, part.size(), prescale);
    }
  }

  kernels::View ownedGradients() override { return {partition_.data(), options_.grad_dtype}; }
  void zero() override { options_.backend->zero(partition_.data(), partition_.size()); }
  int64_t gradientBytes() const override { return static_cast<int64_t>(partition_.size()); }
  std::vector<int64_t> collectiveBytes() const override { return schedule_.launchBytes(element_); }
  int64_t bucketBytes() const override {
    int64_t bytes = 0;
    for (const auto& b : pool_) bytes += static_cast<int64_t>(b.size());
    return bytes;
  }

 private:
  struct InFlight {
    int bucket;
    int buffer;
    std::shared_ptr<comm::Work> work;
  };

  void resetMicroStep() {
    schedule_.reset();
    buffer_of_bucket_.assign(buckets_.size(), -1);
  }

  // The buffer collecting bucket b, taken from the pool on first use; a
  // zeroed buffer so that padding and absent gradients read as zero.
  char* bufferFor(int b) {
    if (buffer_of_bucket_[b] < 0) {
      buffer_of_bucket_[b] = takeBuffer();
      options_.backend->zero(pool_[buffer_of_bucket_[b]].data(), buckets_[b].size() * element_);
    }
    return pool_[buffer_of_bucket_[b]].data();
  }

  int takeBuffer() {
    if (free_.empty() && in_flight_.size() >= 2) retireOldest();  // double buffering
    if (!free_.empty()) {
      const int i = free_.back();
      free_.pop_back();
      return i;
    }
    pool_.emplace_back(*options_.backend, std::min(plan_.totalNumel(), roundedBucket()) * element_);
    return static_cast<int>(pool_.size()) - 1;
  }

  int64_t roundedBucket() const { return buckets_.empty() ? 0 : buckets_.front().size(); }

  void launch(int b) {
    char* buffer = bufferFor(b);
    auto work = comm_.reduceScatter(buffer, options_.grad_dtype, plan_.countsPerRank(buckets_[b]));
    in_flight_.push_back({b, buffer_of_bucket_[b], std::move(work)});
  }

  // Waits for the oldest reduction and adds this rank's part to the partition.
  void retireOldest() {
    InFlight f = std::move(in_flight_.front());
    in_flight_.pop_front();
    f.work->wait(options_.timeout);
    const shard::Range mine = shard::intersect(buckets_[f.bucket], own_);
    if (!mine.empty()) {
      // My chunk starts after the chunks of lower ranks within the bucket.
      const int64_t chunk_at = mine.begin - buckets_[f.bucket].begin;
      options_.backend->accumulate(
          {partition_.data() + (mine.begin - own_.begin) * element_, options_.grad_dtype},
          {pool_[f.buffer].data() + chunk_at * element_, options_.grad_dtype}, mine.size());
      if (options_.on_reduced)
        options_.on_reduced({mine.begin - own_.begin, mine.end - own_.begin});
    }
    free_.push_back(f.buffer);
  }

  const shard::ShardPlan& plan_;
  comm::Communicator& comm_;
  ReducerOptions options_;
  size_t element_;
  BucketSchedule schedule_;
  const std::vector<shard::Range>& buckets_;
  shard::Range own_;
  kernels::DeviceBuffer partition_;
  std::vector<int> buffer_of_bucket_;
  std::vector<kernels::DeviceBuffer> pool_;
  std::vector<int> free_;
  std::deque<InFlight> in_flight_;
};

}  // namespace

std::unique_ptr<GradientReducer> makeBucketReducer(const shard::ShardPlan& plan,
                                                   comm::Communicator& comm,
                                                   const ReducerOptions& options) {
  return std::make_unique<BucketReducer>(plan, comm, options);
}

}  // namespace zshard::zero
