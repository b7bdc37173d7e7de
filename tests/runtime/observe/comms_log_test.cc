#include "runtime/observe/comms_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/observe/trace.h"

namespace zshard::observe {
namespace {

class CommsLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CommsLog::get().clear();
    CommsLog::get().configure(true, false, {});
  }
  void TearDown() override { CommsLog::get().configure(false, false, {}); }
};

TEST(BusBandwidth, NcclTestsFactors) {
  EXPECT_DOUBLE_EQ(busBandwidthFactor("all_reduce", 4), 1.5);
  EXPECT_DOUBLE_EQ(busBandwidthFactor("reduce_scatter", 4), 0.75);
  EXPECT_DOUBLE_EQ(busBandwidthFactor("all_gather", 8), 0.875);
  EXPECT_DOUBLE_EQ(busBandwidthFactor("broadcast", 8), 1.0);
  EXPECT_DOUBLE_EQ(busBandwidthFactor("barrier", 8), 0.0);
  EXPECT_DOUBLE_EQ(busBandwidthFactor("all_reduce", 1), 0.0);
}

TEST(BusBandwidth, DeepSpeedNames) {
  EXPECT_EQ(deepspeedOpName("reduceScatter"), "reduce_scatter");
  EXPECT_EQ(deepspeedOpName("allGather"), "all_gather");
  EXPECT_EQ(deepspeedOpName("allReduce"), "all_reduce");
  EXPECT_EQ(deepspeedOpName("broadcast"), "broadcast");
  EXPECT_EQ(deepspeedOpName("all_reduce"), "all_reduce");  // torch.distributed's, as given
}

TEST_F(CommsLogTest, RowsAreStatisticsPerTypeAndSize) {
  std::vector<int64_t> micros;
  for (int i = 0; i < 101; ++i) micros.push_back((i * 37) % 101 + 1);  // 1..101, shuffled
  for (int64_t m : micros) CommsLog::get().record("reduceScatter", 4096, 4, m);
  CommsLog::get().record("reduceScatter", 8192, 4, 10);
  CommsLog::get().record("allGather", 4096, 4, 20);
  const std::vector<CommsRow> rows = CommsLog::get().summary();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].op, "all_gather");
  const CommsRow& r = rows[1];
  EXPECT_EQ(r.op, "reduce_scatter");
  EXPECT_EQ(r.bytes, 4096);
  EXPECT_EQ(r.count, 101);
  std::vector<double> sorted(micros.begin(), micros.end());
  std::sort(sorted.begin(), sorted.end());
  const double mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / sorted.size();
  EXPECT_DOUBLE_EQ(r.mean_us, mean);
  EXPECT_DOUBLE_EQ(r.p50_us, sorted[50]);
  EXPECT_DOUBLE_EQ(r.p99_us, sorted[99]);
  EXPECT_DOUBLE_EQ(r.algbw_gbps, 4096 / (mean * 1e-6) / 1e9);
  EXPECT_DOUBLE_EQ(r.busbw_gbps, r.algbw_gbps * 0.75);
  EXPECT_EQ(rows[2].bytes, 8192);
  const std::string table = CommsLog::get().table();
  EXPECT_NE(table.find("Comm. Op"), std::string::npos);
  EXPECT_NE(table.find("reduce_scatter  4.00 KiB"), std::string::npos) << table;
}

TEST_F(CommsLogTest, ProfOpsFilterAndDisabledRecordNothing) {
  CommsLog::get().configure(true, false, {"all_reduce"});
  CommsLog::get().record("reduceScatter", 64, 2, 5);
  CommsLog::get().record("allReduce", 64, 2, 5);
  ASSERT_EQ(CommsLog::get().summary().size(), 1u);
  EXPECT_EQ(CommsLog::get().summary()[0].op, "all_reduce");
  CommsLog::get().configure(false, false, {});
  CommsLog::get().record("allReduce", 64, 2, 5);
  EXPECT_EQ(CommsLog::get().summary()[0].count, 1);
}

TEST_F(CommsLogTest, CollectiveDoneFeedsTheLogAndTheTrace) {
  Trace::get().clear();
  Trace::get().setRecording(true);
  collectiveDone("allGather", 128, 2, 7, "gloo", 100, 150);
  Trace::get().setRecording(false);
  ASSERT_EQ(CommsLog::get().summary().size(), 1u);
  EXPECT_EQ(CommsLog::get().summary()[0].mean_us, 50);
  EXPECT_EQ(Trace::get().size(), 1u);
  Trace::get().clear();
}

TEST(WaitClock, AddsUp) {
  const int64_t before = waitedMicros();
  addWaited(25);
  addWaited(17);
  EXPECT_EQ(waitedMicros() - before, 42);
}

}  // namespace
}  // namespace zshard::observe
