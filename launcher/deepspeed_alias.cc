#include "launcher/deepspeed_alias.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "runtime/core/error.h"

namespace zshard::launcher {

namespace {

std::string aliasDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const std::filesystem::path dir = exe.parent_path() / "python-alias";
  return std::filesystem::is_directory(dir / "deepspeed", ec) ? dir.string() : "";
}

bool realDeepspeedInstalled(const std::string& python) {
  const std::string probe = "'" + python +
                            "' -c 'import importlib.util, sys; sys.exit(0 if "
                            "importlib.util.find_spec(\"deepspeed\") else 3)' >/dev/null 2>&1";
  return std::system(probe.c_str()) == 0;
}

}  // namespace

std::string deepspeedAliasPath(const std::string& mode, const std::string& python) {
  if (mode != "auto" && mode != "on" && mode != "off") {
    throw UsageError("--deepspeed-alias: " + expectedGot("auto, on or off", "\"" + mode + "\""));
  }
  if (mode == "off") return "";
  const std::string dir = aliasDir();
  if (dir.empty()) {
    if (mode == "on") {
      throw UsageError(
          "--deepspeed-alias on: this build has no python-alias directory next to zlaunch");
    }
    return "";
  }
  if (mode == "auto" && realDeepspeedInstalled(python)) return "";
  return dir;
}

}  // namespace zshard::launcher
