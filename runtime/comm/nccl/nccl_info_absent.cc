// Build without NCCL (no CUDA toolkit, or no nccl.h / libnccl found).
#include "runtime/core/build_info.h"

namespace zshard {

ComponentInfo ncclInfo() {
  return {"NCCL", false, "", "GPU collectives unavailable"};
}

}  // namespace zshard
