// The order of a micro step's bucket reductions: last bucket first, each
// after every later one, whatever order the gradients come in.
#include "runtime/zero/bucket_schedule.h"

#include <gtest/gtest.h>

#include <vector>

namespace zshard::zero {
namespace {

// Four parameters of 10, one bucket each (alignment 10).
shard::ShardPlan fourBuckets() {
  return shard::ShardPlan::build(std::vector<shard::ParamSpec>(4, {{10}, DType::kFloat32}), 1, 10);
}

TEST(BucketSchedule, LastBucketFirstAndEachWaitsForTheLaterOnes) {
  const shard::ShardPlan plan = fourBuckets();
  BucketSchedule s(plan, 10);
  ASSERT_EQ(s.buckets().size(), 4u);
  ASSERT_TRUE(s.arrive(1));
  s.filled(1);
  EXPECT_EQ(s.takeReady(), -1);  // bucket 1 is complete, but 3 and 2 are not gone
  ASSERT_TRUE(s.arrive(3));
  s.filled(3);
  EXPECT_EQ(s.takeReady(), 3);
  EXPECT_EQ(s.takeReady(), -1);
  EXPECT_FALSE(s.arrive(3));  // a second gradient of parameter 3
  EXPECT_TRUE(s.launched(3));
  EXPECT_FALSE(s.launched(2));
  ASSERT_TRUE(s.arrive(2));
  s.filled(2);
  EXPECT_EQ(s.takeReady(), 2);
  EXPECT_EQ(s.takeReady(), 1);  // was complete, its turn now
  EXPECT_EQ(s.takeReady(), -1);
  EXPECT_EQ(s.takeNext(), 0);  // never came: goes as zeros
  EXPECT_EQ(s.takeNext(), -1);
  s.reset();
  EXPECT_FALSE(s.anyLaunched());
  EXPECT_TRUE(s.arrive(3));
}

TEST(BucketSchedule, AParameterSpanningBucketsCountsInEach) {
  // 25 elements over buckets of 10: [0,10) [10,20) [20,30) hold parameter 0.
  const auto plan =
      shard::ShardPlan::build({{{25}, DType::kFloat32}, {{5}, DType::kFloat32}}, 1, 5);
  BucketSchedule s(plan, 10);
  ASSERT_EQ(s.buckets().size(), 3u);
  EXPECT_EQ(s.bucketsOf(0), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(s.bucketsOf(1), (std::vector<int>{2}));
  s.arrive(0);
  for (int b : s.bucketsOf(0)) s.filled(b);
  EXPECT_EQ(s.takeReady(), -1);  // bucket 2 still waits for parameter 1
  s.arrive(1);
  s.filled(2);
  EXPECT_EQ(s.takeReady(), 2);
  EXPECT_EQ(s.takeReady(), 1);
  EXPECT_EQ(s.takeReady(), 0);
}

}  // namespace
}  // namespace zshard::zero
