#include "runtime/zero/model_copy.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "runtime/comm/gather_values.h"
#include "runtime/core/error.h"

namespace zshard::zero {

namespace {

// The flat range of parameters [first, last].
shard::Range runRange(const shard::ShardPlan& plan, int first, int last) {
  const int n = static_cast<int>(plan.params().size());
  if (first < 0 || last < first || last >= n) {
    throw UsageError("gather: " +
                     expectedGot("parameters 0 <= first <= last < " + std::to_string(n),
                                 std::to_string(first) + ".." + std::to_string(last)));
  }
  return {plan.params()[first].offset, plan.params()[last].range().end};
}

// A collective that finished before it was returned.
class Finished : public comm::Work {
 public:
  void wait(comm::Millis) override {}
  bool done() const override { return true; }
};

// fillParam's host staging for a device copy: elements per chunk.
constexpr int64_t kFillChunk = 4 << 20;

// What a copy is made over.
struct Context {
  const shard::ShardPlan& plan;
  comm::Communicator& comm;
  kernels::Backend& backend;
  DType dtype;
  comm::Millis timeout;
};

class ReplicatedCopy : public ModelCopy {
 public:
  ReplicatedCopy(const Context& c, const char* initial)
      : c_(c), flat_(c.backend, c.plan.totalNumel() * dtypeSize(c.dtype)) {
    if (initial != nullptr) c.backend.copyFromHost(flat_.data(), initial, flat_.size());
  }

  void fillParam(int param, const float* values) override {
    const shard::ParamSlot& s = c_.plan.params().at(param);
    const size_t e = dtypeSize(c_.dtype);
    char* dst = flat_.data() + s.offset * e;
    const int64_t numel = s.range().size();
    if (c_.backend.onHost()) {
      kernels::cast({values, DType::kFloat32}, {dst, c_.dtype}, numel);
      return;
    }
    std::vector<char> chunk(static_cast<size_t>(std::min(numel, kFillChunk)) * e);
    for (int64_t at = 0; at < numel; at += kFillChunk) {
      const int64_t n = std::min(kFillChunk, numel - at);
      kernels::cast({values + at, DType::kFloat32}, {chunk.data(), c_.dtype}, n);
      c_.backend.copyFromHost(dst + at * e, chunk.data(), n * e);
    }
  }

  kernels::View ownShard() override {
    return {flat_.data() + c_.plan.ownerRange(c_.comm.rank()).begin * dtypeSize(c_.dtype),
            c_.dtype};
  }

  void publish() override {
    std::vector<int64_t> counts(c_.comm.size(), c_.plan.shardNumel());
    c_.comm.allGather(flat_.data(), c_.dtype, counts)->wait(c_.timeout);
  }

  void* gather(int first, int last) override {
    return flat_.data() + runRange(c_.plan, first, last).begin * dtypeSize(c_.dtype);
  }

  std::shared_ptr<comm::Work> startGatherInto(int first, int last, void* out) override {
    const shard::Range range = runRange(c_.plan, first, last);
    const size_t e = dtypeSize(c_.dtype);
    c_.backend.copy(out, flat_.data() + range.begin * e, range.size() * e);
    return std::make_shared<Finished>();
  }

  void endPass() override {}
  void release(int) override {}
  int64_t bytes() const override { return static_cast<int64_t>(flat_.size()); }
  int64_t peakBytes() const override { return bytes(); }
  int liveRuns() const override { return 0; }

 private:
  Context c_;
  kernels::DeviceBuffer flat_;
};

class ShardedCopy : public ModelCopy {
 public:
  ShardedCopy(const Context& c, kernels::Backend& shard_backend, const char* initial)
      : c_(c),
        own_(c.plan.ownerRange(c.comm.rank())),
        shard_backend_(shard_backend),
        offloaded_(&shard_backend != &c.backend),
        shard_(shard_backend, c.plan.shardNumel() * dtypeSize(c.dtype)) {
    if (initial != nullptr) shard_backend.copyFromHost(shard_.data(), initial, shard_.size());
    peak_ = bytes();
  }

  kernels::View ownShard() override { return {shard_.data(), c_.dtype}; }

  // Runs still gathered (parameters kept whole) take the new values, in
  // the order of their first parameter: the same on every rank.
  void publish() override {
    for (auto& [first, run] : runs_) fill(run.range, run.buffer.data());
  }

  void* gather(int first, int last) override {
    const shard::Range range = runRange(c_.plan, first, last);
    if (void* live = liveRun(first, last, range)) return live;
    Run run{last, range, kernels::DeviceBuffer(c_.backend, range.size() * dtypeSize(c_.dtype)), 1};
    checkSameRun(first, last);
    fill(run.range, run.buffer.data());
    void* data = run.buffer.data();
    runs_.emplace(first, std::move(run));
    peak_ = std::max(peak_, bytes());
    return data;
  }

  std::shared_ptr<comm::Work> startGatherInto(int first, int last, void* out) override {
    const shard::Range range = runRange(c_.plan, first, last);
    checkSameRun(first, last);
    return startFill(range, static_cast<char*>(out));
  }

  void endPass() override { checkSameRun(kPassEnd, kPassEnd); }

  void release(int first) override {
    const auto it = runs_.find(first);
    if (it == runs_.end()) {
      throw UsageError("release: parameters from " + std::to_string(first) + " are not gathered");
    }
    if (--it->second.uses == 0) runs_.erase(it);
  }

  int64_t offloadedBytes() const override {
    return offloaded_ ? static_cast<int64_t>(shard_.size()) : 0;
  }
  int64_t bytes() const override {
    int64_t total = offloaded_ ? 0 : static_cast<int64_t>(shard_.size());
    for (const auto& [first, run] : runs_) total += static_cast<int64_t>(run.buffer.size());
    return total;
  }
  int64_t peakBytes() const override { return peak_; }
  int liveRuns() const override { return static_cast<int>(runs_.size()); }

 private:
  struct Run {
    int last = 0;
    shard::Range range;
    kernels::DeviceBuffer buffer;
    int uses = 0;
  };

  // What endPass() exchanges in place of a run.
  static constexpr int kPassEnd = -1;

  // Every rank must gather the same run: ranks that ran different modules
  // (a branch taken on one rank only) would otherwise exchange mismatched
  // pieces. One small exchange of (first, last) per gather; a difference is
  // a UsageError naming each rank's run, on every rank.
  void checkSameRun(int first, int last) {
    const std::vector<double> all = comm::gatherValues(
        c_.comm, c_.backend, {double(first), double(last)}, c_.timeout, &scratch_);
    bool same = true;
    for (size_t r = 0; r < all.size(); r += 2) same = same && all[r] == first && all[r + 1] == last;
    if (same) return;
    std::string runs;
    for (size_t r = 0; r < all.size(); r += 2) {
      runs += (runs.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r / 2) +
              (all[r] == kPassEnd ? " ended its backward"
                                  : " parameters " + std::to_string(int64_t(all[r])) + ".." +
                                        std::to_string(int64_t(all[r + 1])));
    }
    throw UsageError(
        "ZeRO-3 gather: the ranks gather different parameters (" + runs +
        "): they ran different modules; at stage 3 every rank must run the same "
        "modules in the same order (run a branch's module on every rank, or use stage 2)");
  }

  // A flat range's values from every rank's shard into `out`: this rank's
  // part copied in, the others' all-gathered.
  void fill(shard::Range range, char* out) { startFill(range, out)->wait(c_.timeout); }

  std::shared_ptr<comm::Work> startFill(shard::Range range, char* out) {
    const shard::Range mine = shard::intersect(range, own_);
    const size_t e = dtypeSize(c_.dtype);
    if (mine.size() > 0) {
      kernels::copyBetween(c_.backend, out + (mine.begin - range.begin) * e, shard_backend_,
                           shard_.data() + (mine.begin - own_.begin) * e, mine.size() * e);
    }
    return c_.comm.allGather(out, c_.dtype, c_.plan.countsPerRank(range));
  }

  // The live run [first, last] (one more use), nullptr when none; a
  // different live run overlapping `range` is a UsageError.
  void* liveRun(int first, int last, shard::Range range) {
    for (auto& [start, run] : runs_) {
      if (start == first && run.last == last) {
        ++run.uses;
        return run.buffer.data();
      }
      if (shard::intersect(run.range, range).size() > 0) {
        throw UsageError("gather: parameters " + std::to_string(first) + ".." +
                         std::to_string(last) + " overlap the gathered run " +
                         std::to_string(start) + ".." + std::to_string(run.last));
      }
    }
    return nullptr;
  }

  Context c_;
  kernels::DeviceBuffer scratch_;  // checkSameRun's staging
  shard::Range own_;
  kernels::Backend& shard_backend_;
  bool offloaded_;  // the shard is in host memory, not the device's
  kernels::DeviceBuffer shard_;
  std::map<int, Run> runs_;
  int64_t peak_ = 0;
};

}  // namespace

std::unique_ptr<ModelCopy> makeReplicatedCopy(const shard::ShardPlan& plan,
                                              comm::Communicator& comm, kernels::Backend& backend,
                                              DType dtype, const char* initial_rounded,
                                              comm::Millis timeout) {
  return std::make_unique<ReplicatedCopy>(Context{plan, comm, backend, dtype, timeout},
                                          initial_rounded);
}

std::unique_ptr<ModelCopy> makeShardedCopy(const shard::ShardPlan& plan, comm::Communicator& comm,
                                           kernels::Backend& backend,
                                           kernels::Backend& shard_backend, DType dtype,
                                           const char* initial_rounded, comm::Millis timeout) {
  return std::make_unique<ShardedCopy>(Context{plan, comm, backend, dtype, timeout}, shard_backend,
                                       initial_rounded);
}

}  // namespace zshard::zero
