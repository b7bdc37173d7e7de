#pragma once

#include <map>
#include <memory>
#include <string>

#include "proto/checkpoint.pb.h"
#include "runtime/checkpoint/reshard.h"
#include "runtime/checkpoint/shard_file.h"

namespace zshard::checkpoint {

// The tag `latest` names in `dir`, or "" when there is no `latest` file.
std::string latestTag(const std::string& dir);

// "<dir>/<tag>", or with an empty tag the one `latest` names ("" when
// there is no `latest` file).
std::string resolveTagDirectory(const std::string& dir, const std::string& tag);

// The saved shards of one checkpoint, opened lazily and read by parameter
// ranges through the resharding arithmetic of reshard.h, every block
// verified. Not thread-safe.
class ShardSet {
 public:
  // `manifest` as readManifest() returned it for `tag_dir`.
  ShardSet(std::string tag_dir, pb::CheckpointManifest manifest);

  const pb::CheckpointManifest& manifest() const { return m_; }
  // Elements [param_offset, param_offset + numel) of parameter `param` in
  // state buffer `buffer`, as floats into dst.
  void read(int buffer, int param, int64_t param_offset, int64_t numel, float* dst);
  // Reads and checks the blocks holding those elements, keeping nothing.
  void verify(int buffer, int param, int64_t param_offset, int64_t numel);
  int64_t bytesRead() const;

 private:
  VerifiedShardReader& reader(int rank);

  std::string dir_;
  pb::CheckpointManifest m_;
  SavedLayout layout_;
  std::map<int, std::unique_ptr<VerifiedShardReader>> readers_;
};

}  // namespace zshard::checkpoint
