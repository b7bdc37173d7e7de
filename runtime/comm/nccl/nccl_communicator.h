#pragma once

#include <memory>
#include <string>

#include "runtime/comm/communicator.h"
#include "runtime/core/timeouts.h"

namespace zshard::rendezvous {
class Store;
}
namespace zshard::kernels {
class Backend;
}

namespace zshard::comm {

struct NcclOptions {
  Millis timeout = kDefaultCollectiveTimeout;
  // Store keys of this communicator (its unique id, its hang reports);
  // distinct per communicator sharing one store.
  std::string name = "nccl";
};

// The GPU backend: collectives on device buffers of `device` (a CUDA
// Backend), on a dedicated comm stream. Each collective first waits (on the
// GPU) for the work already queued on the device's compute stream, so bucket
// reduce-scatters overlap the rest of the backward pass. Rank 0 creates the
// NCCL unique id and publishes it through `store`. Variable chunk counts use
// grouped reduce/broadcast; equal ones ncclReduceScatter/ncclAllGather. A
// collective that does not finish within the timeout (or reports an async
// NCCL error) aborts the communicator and fails with the collective named —
// never a silent hang. Throws Error in builds without NCCL.
std::unique_ptr<Communicator> makeNcclCommunicator(rendezvous::Store& store, int rank, int size,
                                                   kernels::Backend& device, int device_index,
                                                   const NcclOptions& options = {});

// ncclCommSplit: ranks with the same color form a new communicator, ordered
// by key. Collective over `parent`'s ranks. `parent` must be an NCCL one.
std::unique_ptr<Communicator> splitNcclCommunicator(Communicator& parent, int color, int key);

}  // namespace zshard::comm
