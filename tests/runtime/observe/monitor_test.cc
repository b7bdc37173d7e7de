#include "runtime/observe/monitor.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"

namespace zshard::observe {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class MonitorTest : public testing::TempDirTest {
 protected:
  MonitorTest() : TempDirTest("zshard_monitor_") {}
};

TEST_F(MonitorTest, CsvIsDeepSpeedsLayoutAndAppendsWithoutASecondHeader) {
  {
    auto csv = makeCsvMonitor((dir_ / "job").string());
    csv->write({{"Train/Samples/lr", 0.001, 16}, {"Train/Samples/train loss", 4.25, 0}});
    csv->write({{"Train/Samples/lr", 0.002, 32}});
    csv->flush();
  }
  EXPECT_EQ(slurp(dir_ / "job" / "Train_Samples_lr.csv"), "step,lr\n16,0.001\n32,0.002\n");
  EXPECT_EQ(slurp(dir_ / "job" / "Train_Samples_train_loss.csv"), "step,train loss\n0,4.25\n");
  auto again = makeCsvMonitor((dir_ / "job").string());  // a resumed run
  again->write({{"Train/Samples/lr", 0.003, 48}});
  again->flush();
  EXPECT_EQ(slurp(dir_ / "job" / "Train_Samples_lr.csv"),
            "step,lr\n16,0.001\n32,0.002\n48,0.003\n");
}

TEST_F(MonitorTest, TheWriterDeliversEverythingBeforeFlushReturns) {
  std::vector<std::unique_ptr<MonitorSink>> sinks;
  sinks.push_back(makeJsonLinesMonitor((dir_ / "run.jsonl").string()));
  MonitorWriter writer(std::move(sinks));
  for (int i = 0; i < 1000; ++i) writer.write({{"t", static_cast<double>(i), i}});
  writer.flush();
  const std::string text = slurp(dir_ / "run.jsonl");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1000);
  EXPECT_NE(text.find("{\"tag\":\"t\",\"value\":999,\"step\":999,"), std::string::npos);
}

TEST_F(MonitorTest, AFullDiskDropsTheSinkWithOneWarning) {
  std::vector<std::unique_ptr<MonitorSink>> sinks;
  sinks.push_back(makeJsonLinesMonitor("/dev/full"));
  sinks.push_back(makeCsvMonitor((dir_ / "csv").string()));
  MonitorWriter writer(std::move(sinks));
  ::testing::internal::CaptureStderr();
  writer.write({{"a/b", 1, 1}});
  writer.flush();
  writer.write({{"a/b", 2, 2}});
  writer.flush();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(writer.sinks(),
            std::vector<std::string>{"csv_monitor (" + (dir_ / "csv").string() + ")"});
  EXPECT_NE(err.find("run log (/dev/full) stopped writing"), std::string::npos) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_EQ(err.find("stopped writing", err.find("stopped writing") + 1), std::string::npos);
  EXPECT_EQ(slurp(dir_ / "csv" / "a_b.csv"), "step,b\n1,1\n2,2\n");  // the other goes on
}

TEST_F(MonitorTest, AnUnwritablePathIsLeftOutWithAWarning) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "a_file") << "";
  ::testing::internal::CaptureStderr();
  auto writer = openMonitors({(dir_ / "a_file" / "csv").string(), (dir_ / "tb").string(), ""});
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(writer->sinks().size(), 1u);
  EXPECT_EQ(writer->sinks()[0].rfind("tensorboard (", 0), 0u);
  EXPECT_NE(
      err.find("csv_monitor (" + (dir_ / "a_file" / "csv").string() + "): cannot write there"),
      std::string::npos)
      << err;
}

}  // namespace
}  // namespace zshard::observe
