#include "runtime/core/build_info.h"

namespace zshard {

namespace {

std::string componentLine(const ComponentInfo& c) {
  std::string line = c.name + ": " + (c.present ? "yes" : "no");
  if (c.present && !c.version.empty()) line += " " + c.version;
  if (!c.detail.empty()) line += " (" + c.detail + ")";
  return line;
}

}  // namespace

std::string zshardVersion() {
  return ZSHARD_VERSION;
}

std::string buildReport() {
  std::string report = "zshard " + zshardVersion() + "\n";
  for (const ComponentInfo& c : {cudaInfo(), ncclInfo(), pmixInfo(), glooInfo()}) {
    report += "  " + componentLine(c) + "\n";
  }
  return report;
}

}  // namespace zshard
