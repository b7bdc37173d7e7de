#pragma once

#include <string>

namespace zshard {

// What one optional or third-party component of this build is.
struct ComponentInfo {
  std::string name;      // "CUDA", "NCCL", ...
  bool present = false;  // compiled into this build
  std::string version;   // when present
  std::string detail;    // e.g. visible GPUs, why absent
};

// Each is defined by the adapter file CMake chose for this build (for CUDA
// and NCCL an *_absent.cc twin when the toolkit was not found). They query
// the linked library at run time and never throw.
ComponentInfo cudaInfo();
ComponentInfo ncclInfo();
ComponentInfo pmixInfo();
ComponentInfo glooInfo();

// "0.1.0"
std::string zshardVersion();

// The `zlaunch --version` text: version, then one line per component.
std::string buildReport();

}  // namespace zshard
