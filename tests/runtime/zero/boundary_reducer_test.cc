// Stages 0 and 1 with overlap_comm: the accumulation boundary's reduction
// goes bucket by bucket while its backward runs (BucketSchedule's order,
// the same on every rank), not in one collective after it. The sums
// themselves are checked against the reference in zero_engine_test.cc.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "runtime/shard/shard_plan.h"
#include "runtime/zero/bucket_schedule.h"
#include "runtime/zero/zero_engine.h"
#include "tests/runtime/zero/engine_fixture.h"

namespace zshard::zero {
namespace {

using namespace fixture;

// Forwards to a real communicator and records what was issued when.
class Recording : public comm::Communicator {
 public:
  explicit Recording(comm::Communicator& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::shared_ptr<comm::Work> reduceScatter(void* b, DType t, std::vector<int64_t> c) override {
    int64_t n = 0;
    for (int64_t x : c) n += x;
    note("reduceScatter", n);
    return inner_.reduceScatter(b, t, std::move(c));
  }
  std::shared_ptr<comm::Work> allGather(void* b, DType t, std::vector<int64_t> c) override {
    note("allGather", 0);
    return inner_.allGather(b, t, std::move(c));
  }
  std::shared_ptr<comm::Work> allReduce(void* b, DType t, int64_t n) override {
    note("allReduce", n);
    return inner_.allReduce(b, t, n);
  }
  std::shared_ptr<comm::Work> broadcast(void* b, DType t, int64_t n, int root) override {
    note("broadcast", n);
    return inner_.broadcast(b, t, n, root);
  }
  std::shared_ptr<comm::Work> barrier() override {
    note("barrier", 0);
    return inner_.barrier();
  }

  std::vector<std::string> calls;  // "<phase>:<name>:<elements>"
  std::string phase;

 private:
  void note(const char* name, int64_t n) {
    calls.push_back(phase + ":" + name + ":" + std::to_string(n));
  }
  comm::Communicator& inner_;
};

// The gradient collectives issued in `phase`, in order.
std::vector<std::string> issuedIn(const Recording& r, const std::string& phase,
                                  const std::string& name) {
  std::vector<std::string> out;
  for (const std::string& c : r.calls) {
    if (c.rfind(phase + ":" + name, 0) == 0) out.push_back(c.substr(phase.size() + 1));
  }
  return out;
}

// Two ranks, accumulation 2, gradients in backward order (last parameter
// first); records the collectives of each micro step's backward and step.
std::vector<std::vector<std::string>> runWindow(int stage, bool overlap, const char* name) {
  const int world = 2;
  std::vector<std::vector<std::string>> seen(world);
  const auto failures = onRanks(world, [&](int r, comm::Communicator& inner) {
    Recording comm(inner);
    std::vector<std::vector<float>> init;
    std::vector<const float*> ptrs;
    for (const auto& s : kShapes)
      init.emplace_back(numel(s), 0.5f), ptrs.push_back(init.back().data());
    EngineOptions o;
    o.stage = stage;
    o.param_dtype = o.grad_dtype = DType::kFloat32;
    o.accumulation_steps = 2;
    o.bucket_numel = 40;
    o.alignment = 4;
    o.overlap_comm = overlap;
    ZeroEngine engine(specs(), ptrs, comm, adamW(), o);
    for (int t = 0; t < 2; ++t) {
      comm.phase = "backward" + std::to_string(t);
      for (int k = static_cast<int>(kShapes.size()) - 1; k >= 0; --k) {
        engine.addGradient(k, std::vector<float>(numel(kShapes[k]), 0.1f * (r + 1)).data());
      }
      comm.phase = "step" + std::to_string(t);
      engine.step(kLr);
    }
    for (const char* phase : {"backward0", "step0", "backward1", "step1"})
      for (const std::string& c : issuedIn(comm, phase, name))
        seen[r].push_back(std::string(phase) + ":" + c);
  });
  for (const std::string& f : failures) EXPECT_EQ(f, "");
  return seen;
}

// What the boundary's buckets are, as runWindow's engine cuts them.
std::vector<std::string> bucketCalls(const std::string& prefix) {
  const auto plan = shard::ShardPlan::build(specs(), 2, 4);
  const std::vector<shard::Range> buckets = BucketSchedule(plan, 40).buckets();
  std::vector<std::string> out;
  for (auto b = buckets.rbegin(); b != buckets.rend(); ++b)
    out.push_back(prefix + std::to_string(b->size()));
  return out;
}

class BoundaryOverlap : public ::testing::TestWithParam<int> {};

TEST_P(BoundaryOverlap, TheBoundaryReducesEveryBucketDuringItsBackward) {
  const int stage = GetParam();
  const std::string name = stage == 0 ? "allReduce" : "reduceScatter";
  const std::vector<std::string> expected = bucketCalls("backward1:" + name + ":");
  ASSERT_GT(expected.size(), 3u);
  for (const auto& calls : runWindow(stage, true, name.c_str())) EXPECT_EQ(calls, expected);
}

TEST_P(BoundaryOverlap, WithoutOverlapOneCollectiveAfterTheBackward) {
  const int stage = GetParam();
  const std::string name = stage == 0 ? "allReduce" : "reduceScatter";
  const int64_t total = shard::ShardPlan::build(specs(), 2, 4).totalNumel();
  for (const auto& calls : runWindow(stage, false, name.c_str())) {
    EXPECT_EQ(calls, std::vector<std::string>{"step1:" + name + ":" + std::to_string(total)});
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, BoundaryOverlap, ::testing::Values(0, 1));

}  // namespace
}  // namespace zshard::zero
