#include "runtime/shard/shard_plan.h"

#include <gtest/gtest.h>

#include <random>

#include "runtime/core/error.h"

namespace zshard::shard {
namespace {

std::vector<ParamSpec> randomParams(std::mt19937& rng, int count) {
  std::vector<ParamSpec> params;
  for (int i = 0; i < count; ++i) {
    ParamSpec p;
    const int dims = static_cast<int>(rng() % 4);  // scalars too
    for (int d = 0; d < dims; ++d) p.shape.push_back(static_cast<int64_t>(rng() % 40));
    params.push_back(p);
  }
  return params;
}

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Checks every invariant of a plan against an element-by-element model:
// each flat index is owned by exactly one rank and belongs to at most one
// parameter, and each parameter element appears in exactly one shard slice.
void checkInvariants(const std::vector<ParamSpec>& params, const ShardPlan& plan) {
  const int world = plan.worldSize();
  const int64_t align = plan.alignment();
  ASSERT_EQ(plan.totalNumel() % (world * align), 0);
  ASSERT_EQ(plan.shardNumel() * world, plan.totalNumel());
  std::vector<int> owner_of_param_elem(plan.totalNumel(), -1);
  int64_t expect_offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const ParamSlot& s = plan.params()[i];
    ASSERT_EQ(s.numel, product(params[i].shape));
    ASSERT_EQ(s.offset % align, 0);
    ASSERT_GE(s.offset, expect_offset);          // in order, no overlap
    ASSERT_LT(s.offset - expect_offset, align);  // no more padding than needed
    expect_offset = s.offset + s.numel;
    for (int64_t e = s.offset; e < s.offset + s.numel; ++e)
      owner_of_param_elem[e] = static_cast<int>(i);
  }
  ASSERT_LE(expect_offset, plan.totalNumel());
  std::vector<int> seen(plan.totalNumel(), 0);
  for (int r = 0; r < world; ++r) {
    const Range own = plan.ownerRange(r);
    ASSERT_EQ(own.size(), plan.shardNumel());
    for (const ParamSlice& slice : plan.slicesInShard(r)) {
      ASSERT_EQ(slice.flat, intersect(slice.flat, own));
      for (int64_t e = slice.flat.begin; e < slice.flat.end; ++e) {
        ASSERT_EQ(owner_of_param_elem[e], slice.param);
        ASSERT_EQ(plan.ownerOf(e), r);
        ++seen[e];
      }
      ASSERT_EQ(slice.param_offset, slice.flat.begin - plan.params()[slice.param].offset);
    }
  }
  for (int64_t e = 0; e < plan.totalNumel(); ++e)
    ASSERT_EQ(seen[e], owner_of_param_elem[e] >= 0 ? 1 : 0);
}

void checkBuckets(const ShardPlan& plan, int64_t bucket) {
  const std::vector<Range> buckets = plan.buckets(bucket);
  int64_t next = 0;
  for (const Range& b : buckets) {
    ASSERT_EQ(b.begin, next);
    ASSERT_GT(b.size(), 0);
    ASSERT_LE(b.size(), (bucket + plan.alignment() - 1) / plan.alignment() * plan.alignment());
    ASSERT_EQ(b.end % plan.alignment(), 0);
    const std::vector<int64_t> counts = plan.countsPerRank(b);
    int64_t sum = 0;
    for (int64_t c : counts) sum += c;
    ASSERT_EQ(sum, b.size());
    for (int p : plan.paramsIn(b)) ASSERT_FALSE(intersect(plan.params()[p].range(), b).empty());
    next = b.end;
  }
  ASSERT_EQ(next, plan.totalNumel());
}

class ShardPlanRandom : public ::testing::TestWithParam<int> {};

TEST_P(ShardPlanRandom, InvariantsHoldForRandomShapes) {
  const int world = GetParam();
  std::mt19937 rng(1000 + world);
  for (int64_t align : {1, 2, 4, 8, 16, 64}) {
    for (int trial = 0; trial < 6; ++trial) {
      const auto params = randomParams(rng, 1 + static_cast<int>(rng() % 12));
      const ShardPlan plan = ShardPlan::build(params, world, align);
      checkInvariants(params, plan);
      checkBuckets(plan, 1 + static_cast<int64_t>(rng() % 3000));
      checkBuckets(plan, 1);
      if (HasFatalFailure()) return;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, ShardPlanRandom, ::testing::Range(1, 65));

TEST(ShardPlan, KnownLayout) {
  // Two bf16 parameters 3x3 and 5, alignment 4, 2 ranks.
  const ShardPlan plan =
      ShardPlan::build({{{3, 3}, DType::kBFloat16}, {{5}, DType::kBFloat16}}, 2, 4);
  EXPECT_EQ(plan.params()[0].offset, 0);
  EXPECT_EQ(plan.params()[1].offset, 12);  // 9 rounded up to 12
  EXPECT_EQ(plan.totalNumel(), 24);        // 17 rounded up to 2*4
  EXPECT_EQ(plan.ownerRange(1), (Range{12, 24}));
  const auto slices = plan.slicesInShard(0);
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].flat, (Range{0, 9}));
  EXPECT_EQ(plan.countsPerRank({8, 16}), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(plan.paramNumel(), 14);
}

TEST(ShardPlan, RefusesBadInput) {
  EXPECT_THROW(ShardPlan::build({}, 2, 1), Error);
  EXPECT_THROW(ShardPlan::build({{{4}, DType::kBFloat16}}, 0, 1), Error);
  EXPECT_THROW(ShardPlan::build({{{4}, DType::kBFloat16}}, 2, 0), Error);
  EXPECT_THROW(ShardPlan::build({{{-1}, DType::kBFloat16}}, 2, 1), Error);
  try {
    ShardPlan::build({{{4}, DType::kBFloat16}, {{4}, DType::kFloat32}}, 2, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("one dtype"), std::string::npos);
  }
  const ShardPlan plan = ShardPlan::build({{{4}, DType::kBFloat16}}, 2, 1);
  EXPECT_THROW(plan.ownerRange(2), Error);
  EXPECT_THROW(plan.ownerOf(4), Error);
  EXPECT_THROW(plan.buckets(0), Error);
}

}  // namespace
}  // namespace zshard::shard
