// Build without NCCL.
#include "runtime/comm/nccl/nccl_communicator.h"
#include "runtime/core/error.h"

namespace zshard::comm {

std::unique_ptr<Communicator> makeNcclCommunicator(rendezvous::Store&, int, int, kernels::Backend&,
                                                   int, const NcclOptions&) {
  throw Error(
      "NCCL requested, but this zshard was built without NCCL (reconfigure with CUDA and NCCL)");
}

std::unique_ptr<Communicator> splitNcclCommunicator(Communicator&, int, int) {
  throw Error("NCCL requested, but this zshard was built without NCCL");
}

}  // namespace zshard::comm
