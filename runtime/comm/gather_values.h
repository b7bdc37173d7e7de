#pragma once

#include <vector>

#include "runtime/comm/communicator.h"

namespace zshard::kernels {
class Backend;
class DeviceBuffer;
}  // namespace zshard::kernels

namespace zshard::comm {

// Every rank's `mine` (the same length on all ranks), in rank order: rank r's
// values at [r * mine.size(), (r + 1) * mine.size()). Staged through
// `backend`'s memory, so it works for host (Gloo) and device (NCCL)
// communicators alike; allGather only moves bytes, so doubles arrive exact.
// Collective and blocking. `scratch` (optional) is reused as the staging
// memory, grown when too small, so a caller on the step's path allocates
// device memory once, not per call.
std::vector<double> gatherValues(Communicator& comm, kernels::Backend& backend,
                                 const std::vector<double>& mine, Millis timeout,
                                 kernels::DeviceBuffer* scratch = nullptr);

// The same for values already in `backend`'s memory: `slots` holds n
// doubles per rank, this rank's at [rank * n, (rank + 1) * n); gathers every
// rank's in place and returns them all on the host (one copy to the host:
// the only host wait besides the collective's).
std::vector<double> gatherDeviceValues(Communicator& comm, kernels::Backend& backend, void* slots,
                                       size_t n, Millis timeout);

}  // namespace zshard::comm
