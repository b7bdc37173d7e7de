#pragma once

#include <string>

namespace zshard::launcher {

// Whether the workers' `import deepspeed` gets zshard's alias package
// (python/deepspeed_alias, built into <build>/python-alias next to
// zlaunch): "on", "off", or "auto" (on when `python` finds no real
// DeepSpeed with the controller's environment, so an installed DeepSpeed
// is never shadowed). Returns the directory to put first on the workers'
// PYTHONPATH, or "" for none. Throws UsageError for another mode, or for
// "on" when the build has no alias.
std::string deepspeedAliasPath(const std::string& mode, const std::string& python);

}  // namespace zshard::launcher
