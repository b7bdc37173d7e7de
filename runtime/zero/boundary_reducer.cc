// ZeRO stage 0's and 1's gradient path.
#include <cstring>
#include <deque>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/zero/bucket_schedule.h"
#include "runtime/zero/gradient_reducer.h"

namespace zshard::zero {

namespace {

class BoundaryReducer : public GradientReducer {
 public:
  BoundaryReducer(const shard::ShardPlan& plan, comm::Communicator& comm, const ReducerOptions& o)
      : plan_(plan),
        comm_(comm),
        options_(o),
        element_(dtypeSize(o.grad_dtype)),
        flat_(*o.backend, plan.totalNumel() * element_),
        schedule_(plan, o.bucket_numel) {}

  void addGradient(int param, const void* grad, bool boundary) override {
    const shard::ParamSlot& slot = plan_.params().at(param);
    const bool bucketed = options_.overlap && boundary;
    const bool first = !bucketed || schedule_.arrive(param);
    if (!first) checkNotReduced(param);
    options_.backend->accumulate(at(slot.offset), {grad, options_.grad_dtype}, slot.numel);
    if (!bucketed || !first) return;
    for (int b : schedule_.bucketsOf(param)) schedule_.filled(b);
    for (int b; (b = schedule_.takeReady()) >= 0;) launch(b);
  }

  void endMicroStep(bool boundary) override {
    // A boundary whose buckets began to go during backward (or, under
    // overlap, any boundary): every rank issues the rest in the same order.
    if (schedule_.anyLaunched() || (boundary && options_.overlap)) {
      for (int b; (b = schedule_.takeNext()) >= 0;) launch(b);
      while (!in_flight_.empty()) {
        in_flight_.front()->wait(options_.timeout);
        in_flight_.pop_front();
      }
    } else if (boundary) {
      if (options_.prescale != 1.0f) {
        options_.backend->scale(at(0), plan_.totalNumel(), options_.prescale);
      }
      reduce({0, plan_.totalNumel()})->wait(options_.timeout);
    }
    schedule_.reset();
  }

  kernels::View fullGradients() override {
    if (!options_.all_reduce) return {nullptr, options_.grad_dtype};
    return at(0);
  }

  kernels::View ownedGradients() override { return at(plan_.ownerRange(comm_.rank()).begin); }

  void zero() override { options_.backend->zero(flat_.data(), flat_.size()); }
  int64_t gradientBytes() const override { return static_cast<int64_t>(flat_.size()); }
  int64_t bucketBytes() const override { return 0; }
  std::vector<int64_t> collectiveBytes() const override {
    if (!options_.overlap) return {static_cast<int64_t>(flat_.size())};
    return schedule_.launchBytes(element_);
  }

 private:
  kernels::View at(int64_t element) {
    return {flat_.data() + element * element_, options_.grad_dtype};
  }

  // A second gradient of one parameter in the boundary's backward is
  // summed in only while none of its buckets has been reduced.
  void checkNotReduced(int param) const {
    for (int b : schedule_.bucketsOf(param)) {
      if (!schedule_.launched(b)) continue;
      throw UsageError(
          "got a second gradient in the accumulation boundary's backward after its bucket was "
          "already reduced (a parameter used in two backward passes, e.g. re-entrant "
          "torch.utils.checkpoint segments); use checkpoint(..., use_reentrant=False) or set "
          "zero_optimization.overlap_comm to false (the boundary then reduces after backward)");
    }
  }

  // The window's gradients of bucket b are complete: reduced in place
  // while backward goes on (the flat buffer is laid out as the shards, so
  // this rank's part of the bucket lands where its shard keeps it).
  void launch(int b) {
    const shard::Range bucket = schedule_.buckets()[b];
    if (options_.prescale != 1.0f) {
      options_.backend->scale(at(bucket.begin), bucket.size(), options_.prescale);
    }
    in_flight_.push_back(reduce(bucket));
  }

  std::shared_ptr<comm::Work> reduce(shard::Range range) {
    void* data = flat_.data() + range.begin * element_;
    if (options_.all_reduce) return comm_.allReduce(data, options_.grad_dtype, range.size());
    return comm_.reduceScatter(data, options_.grad_dtype, plan_.countsPerRank(range));
  }

  const shard::ShardPlan& plan_;
  comm::Communicator& comm_;
  ReducerOptions options_;
  size_t element_;
  kernels::DeviceBuffer flat_;
  BucketSchedule schedule_;
  std::deque<std::shared_ptr<comm::Work>> in_flight_;
};

}  // namespace

std::unique_ptr<GradientReducer> makeBoundaryReducer(const shard::ShardPlan& plan,
                                                     comm::Communicator& comm,
                                                     const ReducerOptions& options) {
  return std::make_unique<BoundaryReducer>(plan, comm, options);
}

}  // namespace zshard::zero
