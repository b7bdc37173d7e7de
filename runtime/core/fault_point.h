#pragma once

namespace zshard {

// Crash injection for the tests of crash safety. When the environment
// variable ZSHARD_FAULT is `point` or "point@R" with R == rank, the process
// logs one line and kills itself with SIGKILL here, as a node failure
// would. A no-op otherwise (one getenv).
void faultPoint(const char* point, int rank);

}  // namespace zshard
