#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace zshard::checkpoint {

// What the manifest records of a written shard file.
struct ShardFileInfo {
  int64_t bytes = 0;
  int64_t block_bytes = 0;
  std::string digest_algorithm;            // digest.h's kBlockDigestAlgorithm
  std::vector<std::string> block_digests;  // hex, one per block
};

inline constexpr int64_t kBlockBytes = 1 << 20;

// A stretch of a rank's state buffers: elements [offset, offset + numel)
// of each, in `backend`'s memory (offloaded state lives in pieces: some on
// the host, the rest on the device).
struct StatePiece {
  kernels::Backend* backend = nullptr;
  int64_t offset = 0;
  int64_t numel = 0;
  std::vector<float*> buffers;  // one per state buffer, numel floats each
};

// Writes the state buffers `pieces` hold (each the pieces' total numel
// floats), one buffer after the other, each in piece order, to `path`
// atomically (AtomicFileWriter), hashing every block of `block_bytes`
// (digest.h). Device memory is staged through host memory in chunks, so
// host memory stays bounded. Calls faultPoint("checkpoint.mid_shard", rank)
// once half the file is written. Throws IoError naming the file.
ShardFileInfo writeShardFile(const std::string& path, const std::vector<StatePiece>& pieces,
                             int64_t block_bytes, int rank);

// Reads byte ranges of one shard file, verifying every block it touches
// against the manifest's digests before any byte of it is used. The file
// size is checked at open (a truncated file is refused at once). Not
// thread-safe.
class VerifiedShardReader {
 public:
  VerifiedShardReader(std::string path, const ShardFileInfo& info);
  ~VerifiedShardReader();
  VerifiedShardReader(const VerifiedShardReader&) = delete;
  VerifiedShardReader& operator=(const VerifiedShardReader&) = delete;

  // Copies bytes [offset, offset + length) into dst. Throws IoError naming
  // the file and block when a digest differs, or the range is outside it.
  void read(int64_t offset, int64_t length, char* dst);
  // Reads and checks every block holding bytes [offset, offset + length)
  // through a bounded scratch buffer, keeping nothing (a load's first pass).
  void verify(int64_t offset, int64_t length);
  int64_t bytesRead() const { return bytes_read_; }

 private:
  void checkRange(int64_t offset, int64_t length) const;
  void readBlocks(int64_t offset, int64_t length, char* dst);

  std::string path_;
  ShardFileInfo info_;
  int fd_ = -1;
  int64_t cached_block_ = -1;  // the last partially used block, verified
  std::vector<char> cache_;
  std::unique_ptr<char[]> scratch_;
  int64_t bytes_read_ = 0;
};

}  // namespace zshard::checkpoint
