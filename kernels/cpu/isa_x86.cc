// x86-64: the widest ISA this CPU supports among those built.
#include "kernels/cpu/kernel_table.h"

namespace zshard::kernels::cpu {

const KernelTable& selectTable() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    return tableAvx512();
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c")) {
    return tableAvx2();
  }
  return tablePortable();
}

}  // namespace zshard::kernels::cpu
