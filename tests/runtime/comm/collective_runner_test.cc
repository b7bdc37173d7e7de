// The runner issues a collective whose backend only queues it (NCCL on a
// stream) without waiting for the one before to complete, retires them in
// issue order, and breaks on the first failure. Issued "collectives" here
// complete when the test says so.
#include "runtime/comm/collective_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "runtime/core/error.h"

namespace zshard::comm {
namespace {

using namespace std::chrono_literals;

// Waits (up to 10 s) until `flag` is set.
bool eventually(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!flag && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  return flag;
}

// A collective that is issued at once and completes once `complete` is set.
std::function<CollectiveRunner::Poll()> queued(std::atomic<bool>& issued,
                                               std::atomic<bool>& complete) {
  return [&] {
    issued = true;
    return [&] { return complete.load(); };
  };
}

TEST(CollectiveRunner, IssuesTheNextBeforeThePreviousCompletes) {
  CollectiveRunner runner(nullptr, "test", 0, 1, 10s);
  std::atomic<bool> issued_a{false}, done_a{false}, issued_b{false}, done_b{false};
  auto a = runner.enqueueIssued("allReduce", 4, DType::kFloat32, queued(issued_a, done_a));
  auto b = runner.enqueueIssued("allReduce", 4, DType::kFloat32, queued(issued_b, done_b));
  EXPECT_TRUE(eventually(issued_b)) << "the second collective waited for the first";
  EXPECT_FALSE(a->done());
  done_b = true;  // complete on the device, but behind a: retired after it
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(b->done());
  done_a = true;
  a->wait(10s);
  b->wait(10s);
  EXPECT_TRUE(a->done() && b->done());
}

TEST(CollectiveRunner, SynchronousOpsStillRunInOrder) {
  CollectiveRunner runner(nullptr, "test", 0, 1, 10s);
  std::vector<int> order;
  std::vector<std::shared_ptr<Work>> works;
  for (int i = 0; i < 5; ++i) {
    works.push_back(runner.enqueue("barrier", 0, DType::kFloat32, [&, i] { order.push_back(i); }));
  }
  for (auto& w : works) w->wait(10s);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// A collective that times out while others are queued behind it: it fails
// as a timeout naming it, those behind it as not completed, later calls at
// once with the first error.
TEST(CollectiveRunner, AFailureInFlightBreaksTheOnesBehindIt) {
  CollectiveRunner runner(nullptr, "test", 0, 1, 10s);
  std::atomic<bool> issued{false}, never{false}, fire{false};
  auto a = runner.enqueueIssued("reduceScatter", 8, DType::kFloat32, [&] {
    return [&]() -> bool {
      if (fire) throw TimeoutError("NCCL did not complete within 1 ms");
      return false;
    };
  });
  auto b = runner.enqueueIssued("allGather", 8, DType::kFloat32, queued(issued, never));
  ASSERT_TRUE(eventually(issued));
  fire = true;
  try {
    a->wait(10s);
    ADD_FAILURE() << "the timed-out collective completed";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("reduceScatter #0"), std::string::npos) << e.what();
  }
  try {
    b->wait(10s);
    ADD_FAILURE() << "a collective behind a failed one completed";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("allGather #1 (8 x fp32) not completed"),
              std::string::npos)
        << e.what();
  }
  auto c = runner.enqueue("barrier", 0, DType::kFloat32, [] {});
  EXPECT_THROW(c->wait(10s), CommError);
}

}  // namespace
}  // namespace zshard::comm
