#include "launcher/check_config_command.h"

#include <algorithm>
#include <ostream>

#include "runtime/config/load.h"
#include "runtime/config/summary.h"

namespace zshard::launcher {

namespace {

void printWarnings(const std::vector<config::Diagnostic>& warnings, std::ostream& os) {
  for (const config::Diagnostic& w : warnings) os << "warning: " << w.str() << "\n";
}

std::string indent(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    out += "  " + text.substr(start, end - start) + "\n";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

namespace {

int reportInvalid(const std::string& path, const config::InvalidConfigError& e, std::ostream& err) {
  for (const config::Diagnostic& d : e.errors()) err << "error: " << d.str() << "\n";
  if (!e.moreLine().empty()) err << "error: " << e.moreLine() << "\n";
  printWarnings(e.warnings(), err);
  const int64_t count =
      static_cast<int64_t>(e.errors().size()) + std::max<int64_t>(0, e.moreErrors());
  err << path << ": " << count << (count == 1 ? " problem" : " problems")
      << (e.moreErrors() < 0 ? " or more" : "") << "\n";
  return 2;
}

}  // namespace

int validateLaunchConfig(const std::string& path, std::ostream& err) {
  try {
    config::loadConfigFile(path, {});
    return 0;
  } catch (const config::InvalidConfigError& e) {
    err << "zlaunch: --config " << path << " is not a valid config; nothing was started\n";
    return reportInvalid(path, e, err);
  }
}

int runCheckConfig(const std::string& path, std::optional<int> world_size, bool allow_auto,
                   std::ostream& out, std::ostream& err) {
  config::LoadOptions options;
  options.world_size = world_size;
  options.require_resolved = !allow_auto;
  try {
    const config::LoadedConfig loaded = config::loadConfigFile(path, options);
    out << path << ": OK\n" << indent(config::summarize(loaded.config));
    printWarnings(loaded.warnings, out);
    return 0;
  } catch (const config::InvalidConfigError& e) {
    return reportInvalid(path, e, err);
  }
}

}  // namespace zshard::launcher
