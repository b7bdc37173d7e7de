// CUDA build: reports the runtime this build links and the GPUs it can see.
#include <cuda_runtime_api.h>

#include "runtime/core/build_info.h"

namespace zshard {

namespace {

std::string dotted(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

}  // namespace

ComponentInfo cudaInfo() {
  ComponentInfo info{"CUDA", true, "", ""};
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) info.version = dotted(runtime);
  info.detail = "kernels for " ZSHARD_CUDA_ARCHS;
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status == cudaSuccess) {
    info.detail += "; GPUs visible: " + std::to_string(devices);
  } else {
    info.detail += std::string("; GPUs visible: 0 (") + cudaGetErrorName(status) + ")";
  }
  return info;
}

}  // namespace zshard
