#include "launcher/gpu_monitor.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace zshard::launcher {
namespace {

TEST(GpuReport, NamesIdleAndUnusedGpus) {
  GpuUsage busy{0, true, 87.4, 40000, 10}, idle{1, true, 3, 500, 10}, unused{2, false, 0, 0, 10};
  const std::string r = gpuReport({busy, idle, unused});
  EXPECT_NE(r.find("GPU 0: used, mean utilisation 87%, peak memory 40000 MiB"), std::string::npos)
      << r;
  EXPECT_NE(r.find("GPU 1 stayed under 10% busy (reserving more GPUs isn't enough"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("GPU 2 was reserved but no worker used it"), std::string::npos) << r;
  EXPECT_EQ(r.find("GPU 0 stayed"), std::string::npos) << r;
}

TEST(GpuMonitor, WithoutNvmlThereIsNoReportAndNoError) {
  GpuMonitor monitor(2, 0.05);
  monitor.start();
  monitor.stop();
  // On a machine without NVML or GPUs (the build machines) the report is empty.
  if (std::getenv("ZSHARD_EXPECT_NVML") == nullptr) EXPECT_EQ(monitor.report(), "");
}

}  // namespace
}  // namespace zshard::launcher
