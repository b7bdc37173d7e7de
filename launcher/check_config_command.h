#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace zshard::launcher {

// `zlaunch check-config`: validates the file and prints a normalized summary
// and warnings to `out` (returns 0), or one "error: <key>: <problem>" line
// per problem to `err` (returns 2).
int runCheckConfig(const std::string& path, std::optional<int> world_size, std::ostream& out,
                   std::ostream& err);

}  // namespace zshard::launcher
