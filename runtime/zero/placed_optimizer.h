#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "runtime/config/config.h"
#include "runtime/optim/shard_optimizer.h"
#include "runtime/shard/shard_plan.h"

namespace zshard::zero {

// Where one rank's optimizer state lives and is stepped.
struct Placement {
  kernels::Backend* device = nullptr;  // the gradients and the model copy; required
  // ZeRO-Offload: the host memory offloaded state lives in (pinned or
  // not), stepped by the host kernels. nullptr: all state on `device`.
  kernels::Backend* host = nullptr;
  double ratio = 1.0;  // the fraction of the shard offloaded (DeepSpeed's ratio)
  // The host steps this many elements between transfers (sub_group_size):
  // a sub-group's step overlaps the next one's gradients arriving and the
  // previous one's parameters going back. 0: the whole part at once.
  int64_t sub_group_numel = 0;
  // Stage 3 offload_param: the model shard itself is in `host` memory, so
  // the offloaded step writes it in place instead of copying it back.
  bool params_on_host = false;
  // fp32 parameters: the model's own shard (numel floats on `device`),
  // which the device part uses as its master weights instead of a copy of
  // them (4 bytes per element less). nullptr: the master is a buffer of
  // its own.
  float* device_master = nullptr;
};

// A stretch of the shard's state on one backend: shard elements
// [offset, offset + numel), each buffer numel floats there, master first.
struct StatePart {
  kernels::Backend* backend = nullptr;
  int64_t offset = 0;
  int64_t numel = 0;
  std::vector<optim::StateBuffer> buffers;
};

// The optimizer state of one rank's shard where its Placement puts it:
// one ShardOptimizer on the device, or an offloaded one on the host for
// elements [0, k) (k = ratio x numel) and one on the device for [k, numel)
// (DeepSpeed's Twin-Flow), stepped at once. Offloaded, a step copies the
// gradients to host staging (from gradientsFinal on, during backward),
// steps them sub-group by sub-group, and copies the 16-bit results back
// while the next sub-group steps. The kernels are the same, so results are
// the same bits wherever the state lives. Not thread-safe.
class PlacedOptimizer {
 public:
  // `initial_host`: numel floats (host) seeding the master weights;
  // `segments`: the shard's pieces of each parameter (Lamb, groups).
  // ConfigError for Lamb with 0 < ratio < 1 (its trust ratios need one
  // part) or an offloaded client optimizer (see inPlace()).
  PlacedOptimizer(const config::OptimizerConfig& cfg, const Placement& placement,
                  const float* initial_host, int64_t numel,
                  const std::vector<optim::Segment>& segments, int num_params,
                  const optim::ParamGroups& groups, DType grad_dtype, DType param_dtype);

  // Shard elements `r` of `grads` (the reduced gradients of the coming
  // step, device memory) will not change before step(): their copy to the
  // host starts now. No-op without offload.
  void gradientsFinal(kernels::ConstView grads, shard::Range r);
  // The window's gradients were dropped (a skipped step): forget copies.
  void forgetGradients() { queued_.clear(); }
  // One step: `grads` (device) times `multiplier` update the state and the
  // 16-bit `model` shard (device memory; host with params_on_host), which
  // is current on return. `sum` as in ShardOptimizer::step.
  void step(kernels::ConstView grads, kernels::View model, float multiplier,
            const std::vector<float>& lrs, const optim::SumAcrossRanks& sum);
  // The 16-bit `model` shard rounded from the master weights.
  void writeModel(kernels::View model, kernels::Backend& model_backend);

  // Every part, in shard order.
  std::vector<StatePart> parts();
  // The one ShardOptimizer (a client optimizer steps it in place); a
  // UsageError when the state is offloaded.
  optim::ShardOptimizer& inPlace();
  std::vector<const char*> bufferNames();

  int64_t stepCount() const { return parts_.front().optimizer->stepCount(); }
  void setStepCount(int64_t step);
  void setBetas(const std::array<double, 2>& betas);
  bool offloaded() const { return offloaded_ > 0; }
  // Bytes held on the device (state) and in host memory (state + staging).
  int64_t deviceBytes() const;
  int64_t hostBytes() const;

 private:
  struct Part {
    kernels::Backend* backend;
    int64_t offset, numel;
    std::unique_ptr<optim::ShardOptimizer> optimizer;
  };
  void addPart(const config::OptimizerConfig& cfg, kernels::Backend& backend, shard::Range r,
               const float* initial_host, const std::vector<optim::Segment>& segments,
               int num_params, const optim::ParamGroups& groups, float* master = nullptr);
  Part* hostPart();
  Part* devicePart();
  void queue(kernels::ConstView grads, shard::Range r);
  void queueRest(kernels::ConstView grads);
  uint64_t ticketCovering(shard::Range r) const;
  void stepHost(Part& host, kernels::View model, float multiplier, const std::vector<float>& lrs,
                const optim::SumAcrossRanks& sum);

  Placement placement_;
  DType grad_dtype_, param_dtype_;
  int64_t offloaded_ = 0;  // k: elements [0, k) live on the host
  std::vector<Part> parts_;
  kernels::DeviceBuffer grad_staging_, model_staging_;     // host, k elements each
  std::vector<std::pair<shard::Range, uint64_t>> queued_;  // gradient copies started
};

}  // namespace zshard::zero
