#include "runtime/config/batch_size.h"

#include <gtest/gtest.h>

#include <random>

namespace zshard::config {
namespace {

struct Outcome {
  BatchConfig batch;
  Diagnostics diags;
};

Outcome resolve(std::optional<int64_t> train, std::optional<int64_t> micro,
                std::optional<int64_t> accum, std::optional<int> world) {
  Outcome out;
  BatchInput in;
  in.train_batch_size = train;
  in.micro_batch_per_gpu = micro;
  in.gradient_accumulation_steps = accum;
  in.world_size = world;
  out.batch = resolveBatch(in, out.diags);
  return out;
}

// For every way of writing a consistent (micro, accum, world) triple, the
// resolver must recover exactly the batch DeepSpeed's rule implies.
TEST(BatchSize, InfersTheMissingKeyLikeDeepSpeed) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t micro = 1 + rng() % 64, accum = 1 + rng() % 16;
    const int world = static_cast<int>(1 + rng() % 64);
    const int64_t train = micro * accum * world;
    struct Case {
      std::optional<int64_t> t, m, a;
      bool determined;  // the written keys pin down the triple
    } cases[] = {
        {train, micro, accum, true},
        {train, micro, std::nullopt, true},
        {train, std::nullopt, accum, true},
        {std::nullopt, micro, accum, true},
        {train, std::nullopt, std::nullopt, accum == 1},  // DeepSpeed: accumulation 1
        {std::nullopt, micro, std::nullopt, accum == 1},
    };
    for (const Case& c : cases) {
      if (!c.determined) continue;
      const Outcome o = resolve(c.t, c.m, c.a, world);
      ASSERT_FALSE(o.diags.hasErrors()) << o.diags.errors()[0].str();
      EXPECT_EQ(o.batch.train_batch_size, train);
      EXPECT_EQ(o.batch.micro_batch_per_gpu, micro);
      EXPECT_EQ(o.batch.gradient_accumulation_steps, accum);
      EXPECT_EQ(o.batch.world_size, world);
    }
  }
}

TEST(BatchSize, ReportsInconsistentTriple) {
  const Outcome o = resolve(32, 4, 2, 2);
  ASSERT_EQ(o.diags.errors().size(), 1u);
  EXPECT_EQ(o.diags.errors()[0].path, "train_batch_size");
  EXPECT_NE(o.diags.errors()[0].message.find("4 x 2 x 2 = 16, got 32"), std::string::npos)
      << o.diags.errors()[0].message;
}

TEST(BatchSize, ReportsIndivisibleSplit) {
  const Outcome o = resolve(30, 4, std::nullopt, 2);
  ASSERT_EQ(o.diags.errors().size(), 1u);
  EXPECT_EQ(o.diags.errors()[0].path, "train_batch_size");
  EXPECT_NE(o.diags.errors()[0].message.find("a multiple of"), std::string::npos);
  EXPECT_NE(o.diags.errors()[0].message.find("= 8, got 30"), std::string::npos);
}

TEST(BatchSize, NeedsTrainOrMicro) {
  for (auto accum : {std::optional<int64_t>{}, std::optional<int64_t>{4}}) {
    const Outcome o = resolve(std::nullopt, std::nullopt, accum, 8);
    ASSERT_EQ(o.diags.errors().size(), 1u);
    EXPECT_EQ(o.diags.errors()[0].path, "train_batch_size");
    EXPECT_NE(o.diags.errors()[0].message.find("required"), std::string::npos);
  }
}

TEST(BatchSize, AutoKeysMayLeaveItUnderdetermined) {
  Diagnostics diags;
  BatchInput in;
  in.any_auto = true;
  resolveBatch(in, diags);
  EXPECT_FALSE(diags.hasErrors());
}

TEST(BatchSize, WithoutWorldSizeThreeKeysImplyIt) {
  Outcome o = resolve(64, 4, 2, std::nullopt);
  EXPECT_FALSE(o.diags.hasErrors());
  EXPECT_EQ(o.batch.world_size, 8);
  o = resolve(60, 4, 2, std::nullopt);
  ASSERT_EQ(o.diags.errors().size(), 1u);
  EXPECT_NE(o.diags.errors()[0].message.find("a multiple of"), std::string::npos);
  o = resolve(std::nullopt, 4, 2, std::nullopt);  // kept as written
  EXPECT_FALSE(o.diags.hasErrors());
  EXPECT_EQ(o.batch.micro_batch_per_gpu, 4);
  EXPECT_EQ(o.batch.world_size, 0);
}

}  // namespace
}  // namespace zshard::config
