// NCCL build: reports the version of the NCCL library loaded at run time.
#include <nccl.h>

#include "runtime/core/build_info.h"

namespace zshard {

ComponentInfo ncclInfo() {
  int code = 0;
  if (ncclGetVersion(&code) != ncclSuccess) {
    return {"NCCL", true, "", "ncclGetVersion failed"};
  }
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  const std::string version = std::to_string(code / 10000) + "." +
                              std::to_string((code % 10000) / 100) + "." +
                              std::to_string(code % 100);
  return {"NCCL", true, version, "built against " ZSHARD_NCCL_HEADER_VERSION};
}

}  // namespace zshard
