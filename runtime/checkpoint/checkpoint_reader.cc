#include "runtime/checkpoint/checkpoint_reader.h"

#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/shard_set.h"
#include "runtime/core/error.h"

namespace zshard::checkpoint {

CheckpointReader::CheckpointReader(const std::string& dir, const std::string& tag)
    : path_(resolveTagDirectory(dir, tag)) {
  if (path_.empty()) {
    throw IoError("\"" + dir +
                  "\" has no `latest` file; name the tag (the checkpoint's directory)");
  }
  shards_ = std::make_unique<ShardSet>(path_, readManifest(path_));
}

CheckpointReader::~CheckpointReader() = default;

int CheckpointReader::numParams() const {
  return shards_->manifest().params_size();
}

const std::string& CheckpointReader::name(int i) const {
  return shards_->manifest().params(i).name();
}

std::vector<int64_t> CheckpointReader::shape(int i) const {
  const auto& s = shards_->manifest().params(i).shape();
  return {s.begin(), s.end()};
}

int64_t CheckpointReader::numel(int i) const {
  int64_t n = 1;
  for (int64_t d : shards_->manifest().params(i).shape()) n *= d;
  return n;
}

void CheckpointReader::readParam(int i, float* dst) {
  if (i < 0 || i >= numParams()) throw Error("CheckpointReader: no parameter " + std::to_string(i));
  shards_->read(0, i, 0, numel(i), dst);
}

const std::string& CheckpointReader::clientState() const {
  return shards_->manifest().client_state();
}

int64_t CheckpointReader::bytesRead() const {
  return shards_->bytesRead();
}

}  // namespace zshard::checkpoint
