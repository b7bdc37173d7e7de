// Gloo adapter: Gloo is always built in (the CPU collectives backend).
#include <gloo/config.h>

#include "runtime/core/build_info.h"

namespace zshard {

ComponentInfo glooInfo() {
  return {"Gloo", true,
          std::to_string(GLOO_VERSION_MAJOR) + "." + std::to_string(GLOO_VERSION_MINOR) + "." +
              std::to_string(GLOO_VERSION_PATCH),
          "CPU collectives"};
}

}  // namespace zshard
