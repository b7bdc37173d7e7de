#pragma once

#include <memory>
#include <string>

namespace zshard::rendezvous {

// This process as a PMIx client (under srun --mpi=pmix or mpirun). PMIx
// types stay in pmix_client.cc. Initialised on first use, finalised at exit.
class PmixClient {
 public:
  // True when the environment names a PMIx server (PMIX_RANK/PMIX_NAMESPACE).
  static bool available();
  // The process's client; throws Error (with the PMIx status) if PMIx_Init fails.
  static PmixClient& instance();

  int rank() const { return rank_; }
  int size() const { return size_; }
  int localRank() const { return local_rank_; }
  int localSize() const { return local_size_; }
  int nodeRank() const { return node_rank_; }
  int nodeCount() const { return node_count_; }

  // Publishes key=value (global scope), commits, and fences with all ranks
  // collecting data: collective, every rank must call it the same number
  // of times (PLATFORM.md: fence inside set).
  void putCommitFence(const std::string& key, const std::string& value);
  // The value `owner` published under key; empty optional-like: found=false.
  bool get(int owner, const std::string& key, std::string& value);

 private:
  PmixClient();
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, node_rank_ = 0, node_count_ = 1;
  std::string nspace_;
};

}  // namespace zshard::rendezvous
