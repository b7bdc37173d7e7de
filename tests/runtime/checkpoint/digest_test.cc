// The digests against published test vectors, and a block stream fed in
// odd pieces against one-shot digests of its blocks.
#include "runtime/checkpoint/digest.h"

#include <gtest/gtest.h>

namespace zshard::checkpoint {
namespace {

TEST(Digest, Sha256MatchesFips180) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, Xxh3OfTheEmptyInputMatchesTheReference) {
  // XXH3_128bits("") from xxHash's reference implementation (canonical form).
  EXPECT_EQ(blockDigest("", 0), "99aa06d3014798d86001c324468d497f");
}

TEST(Digest, BlocksFedInPiecesMatchOneShotDigests) {
  std::string data(10000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 3);
  BlockDigester d(4096);
  for (size_t at = 0; at < data.size(); at += 999)
    d.feed(data.data() + at, std::min<size_t>(999, data.size() - at));
  const std::vector<std::string> got = d.finish();
  ASSERT_EQ(got.size(), 3u);  // 4096 + 4096 + 1808
  for (size_t b = 0; b < 3; ++b) {
    const size_t n = std::min<size_t>(4096, data.size() - b * 4096);
    EXPECT_EQ(got[b], blockDigest(data.data() + b * 4096, n)) << "block " << b;
  }
  std::string flipped = data;
  flipped[5000] ^= 1;
  EXPECT_NE(blockDigest(flipped.data() + 4096, 4096), got[1]);
}

}  // namespace
}  // namespace zshard::checkpoint
