#pragma once

#include <iosfwd>
#include <string>

namespace zshard::launcher {

// `zlaunch report LOG_DIR`, and node 0 at the end of a --log-dir job:
// runs `<python> -m zshard.report LOG_DIR` (pythonExecutable()), which
// writes LOG_DIR/report.html from the run log, the GPU samples and the
// communication table. Returns its exit code; a Python that cannot be run
// is named on `err` (127).
int runReport(const std::string& log_dir, std::ostream& err);

}  // namespace zshard::launcher
