// CPU-only build: no CUDA backend.
#include "kernels/backend.h"
#include "runtime/core/error.h"

namespace zshard::kernels {

bool cudaAvailable() {
  return false;
}

Backend& cudaBackend(int device) {
  throw Error(
      "GPU " + std::to_string(device) +
      " requested, but this zshard was built without CUDA (reconfigure with a CUDA toolkit)");
}

}  // namespace zshard::kernels
