#pragma once

#include <memory>
#include <string>

#include "runtime/comm/communicator.h"
#include "runtime/core/timeouts.h"

namespace zshard::rendezvous {
class Store;
}

namespace zshard::comm {

struct GlooOptions {
  // Address this rank listens on for its peers (an interface's IP or name).
  std::string hostname = "127.0.0.1";
  // Every collective (and the initial full-mesh connect) must finish within this.
  Millis timeout = kDefaultCollectiveTimeout;
  // Store keys of this communicator's connection setup; distinct per
  // communicator sharing one store.
  std::string store_prefix = "gloo";
};

// The CPU backend: connects a full mesh of TCP pairs through `store`
// (blocking, collective over all ranks), then runs collectives on host
// buffers. reduceScatter and allGather are rings over Gloo's send/recv
// with this rank's own reduction kernels (any dtype, variable counts);
// allReduce is reduceScatter + allGather. `store` must outlive the
// communicator (hang reports go there).
std::unique_ptr<Communicator> makeGlooCommunicator(rendezvous::Store& store, int rank, int size,
                                                   const GlooOptions& options = {});

}  // namespace zshard::comm
