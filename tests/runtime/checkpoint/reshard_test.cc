// The resharding arithmetic against a brute-force element walk.
#include "runtime/checkpoint/reshard.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "runtime/shard/shard_plan.h"

namespace zshard::checkpoint {
namespace {

TEST(Reshard, PiecesSplitAtSavedShardBoundaries) {
  const SavedLayout saved{{0, 8, 24}, 10, 3};                   // 30 elements over 3 ranks
  const std::vector<Piece> p = piecesOf(saved, 1, 1, 14, 100);  // flat [9, 23)
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].saved_rank, 0);
  EXPECT_EQ(p[0].saved_offset, 9);
  EXPECT_EQ(p[0].numel, 1);
  EXPECT_EQ(p[0].dst_offset, 100);
  EXPECT_EQ(p[1].saved_rank, 1);
  EXPECT_EQ(p[1].saved_offset, 0);
  EXPECT_EQ(p[1].numel, 10);
  EXPECT_EQ(p[2].saved_rank, 2);
  EXPECT_EQ(p[2].saved_offset, 0);
  EXPECT_EQ(p[2].numel, 3);
  EXPECT_EQ(p[2].dst_offset, 111);
}

TEST(Reshard, RefusesRangesOutsideTheSavedShards) {
  const SavedLayout saved{{0, 8}, 10, 2};
  EXPECT_THROW(piecesOf(saved, 1, 5, 10, 0), Error);
  EXPECT_THROW(piecesOf(saved, 2, 0, 1, 0), Error);
}

// Every element of every new shard, for N -> M over several layouts, comes
// from the saved rank and offset that held the same parameter element.
TEST(Reshard, EveryNewShardElementMapsToItsSavedElement) {
  const std::vector<shard::ParamSpec> params = {{{13, 7}, DType::kFloat32},
                                                {{50}, DType::kFloat32},
                                                {{1}, DType::kFloat32},
                                                {{129}, DType::kFloat32}};
  for (int n = 1; n <= 5; ++n) {
    const shard::ShardPlan old_plan = shard::ShardPlan::build(params, n, 16);
    SavedLayout saved{{}, old_plan.shardNumel(), n};
    for (const auto& slot : old_plan.params()) saved.param_offsets.push_back(slot.offset);
    for (int m = 1; m <= 5; ++m) {
      const shard::ShardPlan plan = shard::ShardPlan::build(params, m, 4);  // other alignment too
      for (int rank = 0; rank < m; ++rank) {
        const int64_t base = plan.ownerRange(rank).begin;
        for (const shard::ParamSlice& s : plan.slicesInShard(rank)) {
          int64_t covered = 0;
          for (const Piece& p :
               piecesOf(saved, s.param, s.param_offset, s.flat.size(), s.flat.begin - base)) {
            for (int64_t k = 0; k < p.numel; ++k) {
              const int64_t old_flat = p.saved_rank * saved.shard_numel + p.saved_offset + k;
              const int64_t element = old_flat - old_plan.params()[s.param].offset;
              const int64_t new_flat = base + p.dst_offset + k;
              ASSERT_EQ(element, new_flat - plan.params()[s.param].offset);
            }
            covered += p.numel;
          }
          ASSERT_EQ(covered, s.flat.size());
        }
      }
    }
  }
}

}  // namespace
}  // namespace zshard::checkpoint
