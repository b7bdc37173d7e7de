#include "runtime/core/build_info.h"

#include <gtest/gtest.h>

#include <cctype>

namespace zshard {
namespace {

TEST(BuildInfo, ReportNamesVersionAndEveryComponent) {
  const std::string report = buildReport();
  EXPECT_EQ(report.rfind("zshard " + zshardVersion() + "\n", 0), 0u) << report;
  for (const char* name : {"CUDA: ", "NCCL: ", "PMIx: ", "Gloo: "}) {
    EXPECT_NE(report.find(std::string("  ") + name), std::string::npos) << name << "\n" << report;
  }
}

TEST(BuildInfo, RequiredComponentsReportTheirLibraryVersion) {
  for (const ComponentInfo& c : {pmixInfo(), glooInfo()}) {
    EXPECT_TRUE(c.present) << c.name;
    // A real version read from the library: contains "<digit>.<digit>".
    bool dotted = false;
    for (size_t i = 1; i + 1 < c.version.size(); ++i) {
      dotted = dotted ||
               (c.version[i] == '.' && std::isdigit(static_cast<unsigned char>(c.version[i - 1])) &&
                std::isdigit(static_cast<unsigned char>(c.version[i + 1])));
    }
    EXPECT_TRUE(dotted) << c.name << " version \"" << c.version << "\"";
  }
}

TEST(BuildInfo, NcclNeedsCuda) {
  if (ncclInfo().present) EXPECT_TRUE(cudaInfo().present);
  if (cudaInfo().present) EXPECT_FALSE(cudaInfo().version.empty());
}

}  // namespace
}  // namespace zshard
