#include "runtime/observe/progress.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace zshard::observe {
namespace {

class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("ZSHARD_PROGRESS_MIN_BYTES", "0", 1); }
  void TearDown() override { unsetenv("ZSHARD_PROGRESS_MIN_BYTES"); }
};

TEST_F(ProgressTest, OneSummaryLineWhenNotATerminal) {
  testing::internal::CaptureStderr();  // stderr becomes a file
  {
    Progress p("checkpoint save", 3 << 20, true);
    for (int i = 0; i < 3; ++i) p.advance(1 << 20);
    p.finish();
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.rfind("checkpoint save: 3.00 MiB in ", 0), 0u) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
  EXPECT_EQ(err.find('\r'), std::string::npos);
}

TEST_F(ProgressTest, SilentWhenNotShownOrSmall) {
  testing::internal::CaptureStderr();
  {
    Progress hidden("x", 100, false);
    hidden.advance(100);
    hidden.finish();
    setenv("ZSHARD_PROGRESS_MIN_BYTES", "1000", 1);
    Progress small("y", 100, true);
    small.advance(100);
    small.finish();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST_F(ProgressTest, RedrawsWithRateAndEtaOnATerminal) {
  const int primary = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(primary, 0);
  ASSERT_EQ(grantpt(primary), 0);
  ASSERT_EQ(unlockpt(primary), 0);
  const int secondary = open(ptsname(primary), O_RDWR | O_NOCTTY);
  ASSERT_GE(secondary, 0);
  fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  dup2(secondary, STDERR_FILENO);
  {
    Progress p("load", 4 << 20, true);
    for (int i = 0; i < 4; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      p.advance(1 << 20);
    }
    p.finish();
  }
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(secondary);
  char buf[4096];
  fcntl(primary, F_SETFL, O_NONBLOCK);
  std::string seen;
  for (ssize_t n; (n = read(primary, buf, sizeof buf)) > 0;) seen.append(buf, n);
  close(primary);
  EXPECT_NE(seen.find("\rload: 1.00 MiB / 4.00 MiB, "), std::string::npos) << seen;
  EXPECT_NE(seen.find("ETA"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\rload: 4.00 MiB in "), std::string::npos) << seen;
}

TEST(HumanBytes, Units) {
  EXPECT_EQ(humanBytes(512), "512 B");
  EXPECT_EQ(humanBytes(1536), "1.50 KiB");
  EXPECT_EQ(humanBytes(3.0 * (1 << 30)), "3.00 GiB");
}

}  // namespace
}  // namespace zshard::observe
