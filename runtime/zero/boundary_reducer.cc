// ZeRO stage 0's and 1's gradient path.
#include <cstring>
#include <vector>

#include "runtime/core/error.h"
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
        flat_(*o.backend, plan.totalNumel() * element_) {}

  void addGradient(int param, const void* grad) override {
    const shard::ParamSlot& slot = plan_.params().at(param);
    options_.backend->accumulate({flat_.data() + slot.offset * element_, options_.grad_dtype},
                                 {grad, options_.grad_dtype}, slot.numel);
  }

  void endMicroStep(bool boundary) override {
    if (!boundary) return;
    if (options_.prescale != 1.0f) {
      options_.backend->scale({flat_.data(), options_.grad_dtype}, plan_.totalNumel(),
                              options_.prescale);
    }
    if (options_.all_reduce) {
      comm_.allReduce(flat_.data(), options_.grad_dtype, plan_.totalNumel())
          ->wait(options_.timeout);
      return;
    }
    std::vector<int64_t> counts(plan_.worldSize(), plan_.shardNumel());
    comm_.reduceScatter(flat_.data(), options_.grad_dtype, counts)->wait(options_.timeout);
  }

  kernels::View fullGradients() override {
    if (!options_.all_reduce) return {nullptr, options_.grad_dtype};
    return {flat_.data(), options_.grad_dtype};
  }

  kernels::View ownedGradients() override {
    return {flat_.data() + plan_.ownerRange(comm_.rank()).begin * element_, options_.grad_dtype};
  }

  void zero() override { options_.backend->zero(flat_.data(), flat_.size()); }
  int64_t gradientBytes() const override { return static_cast<int64_t>(flat_.size()); }
  int64_t bucketBytes() const override { return 0; }
  std::vector<int64_t> collectiveBytes() const override {
    return {static_cast<int64_t>(flat_.size())};
  }

 private:
  const shard::ShardPlan& plan_;
  comm::Communicator& comm_;
  ReducerOptions options_;
  size_t element_;
  kernels::DeviceBuffer flat_;
};

}  // namespace

std::unique_ptr<GradientReducer> makeBoundaryReducer(const shard::ShardPlan& plan,
                                                     comm::Communicator& comm,
                                                     const ReducerOptions& options) {
  return std::make_unique<BoundaryReducer>(plan, comm, options);
}

}  // namespace zshard::zero
