#pragma once

#include <cstddef>
#include <string>

namespace zshard {

// Element types of the buffers zshard moves and updates.
enum class DType { kFloat32, kFloat16, kBFloat16 };

inline size_t dtypeSize(DType t) {
  return t == DType::kFloat32 ? 4 : 2;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::kFloat16: return "fp16";
    case DType::kBFloat16: return "bf16";
    default: return "fp32";
  }
}

}  // namespace zshard
