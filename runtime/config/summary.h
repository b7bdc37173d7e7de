#pragma once

#include <string>

#include "runtime/config/config.h"

namespace zshard::config {

// A short normalized description of what zshard will do with a config, a
// few lines of "name: values", as printed by `zlaunch check-config`.
std::string summarize(const Config& config);

}  // namespace zshard::config
