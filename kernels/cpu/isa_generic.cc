// Other architectures: the portable build (the compiler's default vectors).
#include "kernels/cpu/kernel_table.h"

namespace zshard::kernels::cpu {

const KernelTable& selectTable() {
  return tablePortable();
}

}  // namespace zshard::kernels::cpu
