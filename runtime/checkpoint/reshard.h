#pragma once

#include <cstdint>
#include <vector>

namespace zshard::checkpoint {

// Where the parameters of a saved run lay: each parameter's start in the
// flat buffer and the saved shard length (rank r held [r*S, (r+1)*S)).
struct SavedLayout {
  std::vector<int64_t> param_offsets;
  int64_t shard_numel = 0;
  int world_size = 0;
};

// A run of consecutive elements to copy from a saved shard.
struct Piece {
  int saved_rank = 0;
  int64_t saved_offset = 0;  // element within the saved rank's shard
  int64_t dst_offset = 0;    // element within the destination
  int64_t numel = 0;
};

// The pieces holding elements [param_offset, param_offset + numel) of
// parameter `param`, to land at dst_offset.. in the destination, in order.
// Pure arithmetic: resharding from any saved world size to any new one is
// the new shard's parameter slices (ShardPlan::slicesInShard) mapped through
// this. Throws Error when the range lies outside the saved shards.
std::vector<Piece> piecesOf(const SavedLayout& saved, int param, int64_t param_offset,
                            int64_t numel, int64_t dst_offset);

}  // namespace zshard::checkpoint
