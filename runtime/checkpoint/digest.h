#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zshard::checkpoint {

// SHA-256 of `bytes` as 64 lowercase hex digits (the manifest's checksum).
std::string sha256Hex(std::string_view bytes);

// Checksums of checkpoint data blocks: XXH3-128 (xxHash), fast enough to
// verify every byte at memory speed, strong enough to catch any corruption
// a disk or a copy makes (not a defence against deliberate tampering; the
// manifest that holds the digests is itself SHA-256 checked).
inline constexpr const char* kBlockDigestAlgorithm = "xxh3-128";

// 32 lowercase hex digits of one block.
std::string blockDigest(const char* data, size_t n);

// Digests of consecutive `block_bytes` blocks of a stream fed in pieces of
// any size (the last block may be shorter). Not thread-safe.
class BlockDigester {
 public:
  explicit BlockDigester(int64_t block_bytes);
  ~BlockDigester();
  void feed(const char* data, int64_t n);
  std::vector<std::string> finish();

 private:
  struct State;
  void finishBlock();

  int64_t block_bytes_;
  int64_t in_block_ = 0;
  std::unique_ptr<State> state_;
  std::vector<std::string> digests_;
};

}  // namespace zshard::checkpoint
