#include "runtime/checkpoint/reshard.h"

#include <algorithm>
#include <string>

#include "runtime/core/error.h"

namespace zshard::checkpoint {

std::vector<Piece> piecesOf(const SavedLayout& saved, int param, int64_t param_offset,
                            int64_t numel, int64_t dst_offset) {
  if (param < 0 || param >= static_cast<int>(saved.param_offsets.size()) || saved.shard_numel < 1) {
    throw Error("checkpoint layout: parameter " + std::to_string(param) +
                " is not in the saved layout");
  }
  int64_t flat = saved.param_offsets[param] + param_offset;
  const int64_t end = flat + numel;
  if (flat < 0 || end > saved.shard_numel * saved.world_size) {
    throw Error("checkpoint layout: parameter " + std::to_string(param) + " elements [" +
                std::to_string(param_offset) + ", " + std::to_string(param_offset + numel) +
                ") fall outside the saved shards");
  }
  std::vector<Piece> out;
  while (flat < end) {
    const int rank = static_cast<int>(flat / saved.shard_numel);
    const int64_t in_shard = flat - rank * saved.shard_numel;
    const int64_t n = std::min(end - flat, saved.shard_numel - in_shard);
    out.push_back({rank, in_shard, dst_offset, n});
    flat += n;
    dst_offset += n;
  }
  return out;
}

}  // namespace zshard::checkpoint
