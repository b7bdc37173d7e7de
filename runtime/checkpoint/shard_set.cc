#include "runtime/checkpoint/shard_set.h"

#include <filesystem>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/core/error.h"

namespace zshard::checkpoint {

namespace fs = std::filesystem;

std::string latestTag(const std::string& dir) {
  const std::string path = (fs::path(dir) / kLatestName).string();
  if (!fs::exists(path)) return "";
  std::string tag = readFile(path);
  while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back()))) tag.pop_back();
  if (tag.empty()) throw IoError("\"" + path + "\" is empty; expected a checkpoint tag");
  // One name inside `dir`: a `latest` naming ../other/tag would load (and
  // a later save would trust) a checkpoint from outside the save directory.
  if (tag == "." || tag == ".." || tag.find('/') != std::string::npos ||
      tag.find('\0') != std::string::npos) {
    throw IoError(
        "\"" + path + "\" names \"" + tag.substr(0, 200) +
        "\": expected the name of a tag directory inside \"" + dir +
        "\"; it was not written by save_checkpoint (or was changed): fix or remove it, or "
        "pass the tag to load_checkpoint");
  }
  return tag;
}

std::string resolveTagDirectory(const std::string& dir, const std::string& tag) {
  const std::string resolved = tag.empty() ? latestTag(dir) : tag;
  return resolved.empty() ? "" : (fs::path(dir) / resolved).string();
}

ShardSet::ShardSet(std::string tag_dir, pb::CheckpointManifest manifest)
    : dir_(std::move(tag_dir)), m_(std::move(manifest)) {
  layout_.shard_numel = m_.shard_numel();
  layout_.world_size = m_.world_size();
  for (const pb::CheckpointParam& p : m_.params()) layout_.param_offsets.push_back(p.flat_offset());
}

void ShardSet::read(int buffer, int param, int64_t param_offset, int64_t numel, float* dst) {
  for (const Piece& p : piecesOf(layout_, param, param_offset, numel, 0)) {
    const int64_t offset = (buffer * m_.shard_numel() + p.saved_offset) * 4;
    reader(p.saved_rank).read(offset, p.numel * 4, reinterpret_cast<char*>(dst + p.dst_offset));
  }
}

void ShardSet::verify(int buffer, int param, int64_t param_offset, int64_t numel) {
  for (const Piece& p : piecesOf(layout_, param, param_offset, numel, 0)) {
    reader(p.saved_rank).verify((buffer * m_.shard_numel() + p.saved_offset) * 4, p.numel * 4);
  }
}

int64_t ShardSet::bytesRead() const {
  int64_t n = 0;
  for (const auto& [rank, r] : readers_) n += r->bytesRead();
  return n;
}

VerifiedShardReader& ShardSet::reader(int rank) {
  auto it = readers_.find(rank);
  if (it != readers_.end()) return *it->second;
  const pb::CheckpointShard& s = m_.shards(rank);
  ShardFileInfo info{s.bytes(),
                     s.block_bytes(),
                     s.digest_algorithm(),
                     {s.block_digests().begin(), s.block_digests().end()}};
  auto r = std::make_unique<VerifiedShardReader>((fs::path(dir_) / s.file()).string(), info);
  return *readers_.emplace(rank, std::move(r)).first->second;
}

}  // namespace zshard::checkpoint
