// CPU-only build: CMake found no CUDA toolkit.
#include "runtime/core/build_info.h"

namespace zshard {

ComponentInfo cudaInfo() {
  return {"CUDA", false, "", "built without a CUDA toolkit; CPU (Gloo) path only"};
}

}  // namespace zshard
