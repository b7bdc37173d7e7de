#include "runtime/comm/gather_values.h"

#include <cstring>

#include "kernels/backend.h"

namespace zshard::comm {

std::vector<double> gatherValues(Communicator& comm, kernels::Backend& backend,
                                 const std::vector<double>& mine, Millis timeout,
                                 kernels::DeviceBuffer* scratch) {
  const size_t n = mine.size();
  std::vector<double> all(n * comm.size());
  std::memcpy(all.data() + n * comm.rank(), mine.data(), n * sizeof(double));
  const size_t bytes = all.size() * sizeof(double);
  kernels::DeviceBuffer local;
  kernels::DeviceBuffer& staging = scratch != nullptr ? *scratch : local;
  if (staging.size() < bytes) staging = kernels::DeviceBuffer(backend, bytes);
  backend.copyFromHost(staging.data(), all.data(), bytes);
  return gatherDeviceValues(comm, backend, staging.data(), n, timeout);
}

std::vector<double> gatherDeviceValues(Communicator& comm, kernels::Backend& backend, void* slots,
                                       size_t n, Millis timeout) {
  // A double travels as two fp32 slots.
  comm.allGather(slots, DType::kFloat32,
                 std::vector<int64_t>(comm.size(), static_cast<int64_t>(2 * n)))
      ->wait(timeout);
  std::vector<double> all(n * comm.size());
  backend.copyToHost(all.data(), slots, all.size() * sizeof(double));
  return all;
}

}  // namespace zshard::comm
