#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace zshard::checkpoint {

class ShardSet;

// Reads a checkpoint's full fp32 master weights one parameter at a time,
// without a process group (consolidation into a plain state dict): only
// the byte ranges of that parameter, every block verified. Host memory:
// what the caller gives plus one block per shard file. Not thread-safe.
class CheckpointReader {
 public:
  // tag "" means the one `latest` names. Throws IoError naming the file
  // when the checkpoint is missing, incomplete, corrupt or inconsistent.
  CheckpointReader(const std::string& dir, const std::string& tag);
  ~CheckpointReader();

  const std::string& path() const { return path_; }
  int numParams() const;
  const std::string& name(int i) const;
  std::vector<int64_t> shape(int i) const;
  int64_t numel(int i) const;
  // Parameter i's fp32 master weights into dst (numel(i) floats).
  void readParam(int i, float* dst);
  int64_t bytesRead() const;
  // The opaque client state rank 0 saved.
  const std::string& clientState() const;

 private:
  std::string path_;
  std::unique_ptr<ShardSet> shards_;
};

}  // namespace zshard::checkpoint
