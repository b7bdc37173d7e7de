#include "runtime/core/suggest.h"

#include <gtest/gtest.h>

namespace zshard {
namespace {

TEST(EditDistance, KnownValues) {
  EXPECT_EQ(editDistance("", ""), 0);
  EXPECT_EQ(editDistance("abc", ""), 3);
  EXPECT_EQ(editDistance("kitten", "sitting"), 3);
  EXPECT_EQ(editDistance("stage", "stgae"), 1);  // adjacent transposition
  EXPECT_EQ(editDistance("Stage", "stage"), 0);  // case-insensitive
  EXPECT_EQ(editDistance("train_batch_size", "train_batch_szie"), 1);
}

TEST(EditDistance, IsSymmetric) {
  const char* words[] = {"zero", "optimizer", "optimiser", "bf16", "fp16", ""};
  for (const char* a : words) {
    for (const char* b : words) EXPECT_EQ(editDistance(a, b), editDistance(b, a)) << a << " " << b;
  }
}

TEST(ClosestMatch, SuggestsOnlyPlausibleMisspellings) {
  const std::vector<std::string> keys = {"stage", "overlap_comm", "reduce_bucket_size"};
  EXPECT_EQ(closestMatch("stgae", keys), "stage");
  EXPECT_EQ(closestMatch("overlap_com", keys), "overlap_comm");
  EXPECT_EQ(closestMatch("reduce_bucket", keys), "");  // 5 edits: too far
  EXPECT_EQ(closestMatch("xyz", keys), "");
  EXPECT_EQ(closestMatch("anything", {}), "");
}

TEST(ClosestMatch, TiesGoToTheFirstCandidate) {
  EXPECT_EQ(closestMatch("fp32", {"fp16", "bf16", "fp31", "fp33"}), "fp31");
}

}  // namespace
}  // namespace zshard
