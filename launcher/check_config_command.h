#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace zshard::launcher {

// `zlaunch check-config`: validates the file and prints a normalized summary
// and warnings to `out` (returns 0), or one "error: <key>: <problem>" line
// per problem to `err` (returns 2).
// An "auto" nothing resolves is an error unless `allow_auto` (a HuggingFace
// template, filled in by its Trainer).
int runCheckConfig(const std::string& path, std::optional<int> world_size, bool allow_auto,
                   std::ostream& out, std::ostream& err);

// `zlaunch --config FILE ...`, before anything is started: the same
// validation (world size not yet known; "auto" allowed: the script may be
// HuggingFace's, which fills them in). Returns 0, or prints the errors
// as check-config does and returns 2. Warnings are left to the job's rank 0,
// which prints them once at initialize().
int validateLaunchConfig(const std::string& path, std::ostream& err);

}  // namespace zshard::launcher
