#include "launcher/hostfile.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"

namespace zshard::launcher {
namespace {

std::string usageError(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

const char* kHostfile = "# cluster\nworker-0 slots=4\n\nworker-1 slots=2  # half node\n";

TEST(Hostfile, ParsesDeepSpeedFormat) {
  EXPECT_EQ(parseHostfile(kHostfile),
            (std::vector<HostSlots>{{"worker-0", {0, 1, 2, 3}}, {"worker-1", {0, 1}}}));
}

TEST(Hostfile, BadLinesAreNamed) {
  EXPECT_EQ(usageError([] { parseHostfile("a slots=2\nb 4\n"); }),
            "hostfile line 2: expected \"HOST slots=N\", got \"b 4\"");
  EXPECT_EQ(usageError([] { parseHostfile("a slots=x\n"); }),
            "hostfile line 1: expected a number, got \"x\"");
  EXPECT_EQ(usageError([] { parseHostfile("a slots=1\na slots=2\n"); }),
            "hostfile line 2: host \"a\" is listed twice");
  EXPECT_EQ(usageError([] { parseHostfile("# nothing\n"); }),
            "hostfile: expected at least one \"HOST slots=N\" line, got none");
}

TEST(Hostfile, IncludeAndExcludeFollowDeepSpeed) {
  const auto hosts = parseHostfile(kHostfile);
  EXPECT_EQ(filterHosts(hosts, "worker-1", ""), (std::vector<HostSlots>{{"worker-1", {0, 1}}}));
  EXPECT_EQ(filterHosts(hosts, "worker-0:0,2@worker-1", ""),
            (std::vector<HostSlots>{{"worker-0", {0, 2}}, {"worker-1", {0, 1}}}));
  EXPECT_EQ(filterHosts(hosts, "", "worker-0:1@worker-1"),
            (std::vector<HostSlots>{{"worker-0", {0, 2, 3}}}));
  EXPECT_EQ(filterHosts(hosts, "", ""), hosts);
  EXPECT_EQ(usageError([&] { filterHosts(hosts, "a", "b"); }),
            "--include and --exclude: give at most one");
  EXPECT_EQ(usageError([&] { filterHosts(hosts, "worker-9", ""); }),
            "--include: host \"worker-9\" is not in the hostfile");
  EXPECT_EQ(usageError([&] { filterHosts(hosts, "worker-1:5", ""); }),
            "--include: worker-1 has slots 0..1, got slot 5");
  EXPECT_EQ(usageError([&] { filterHosts(hosts, "", "worker-0@worker-1"); }),
            "--exclude: no slot left to run on");
}

}  // namespace
}  // namespace zshard::launcher
