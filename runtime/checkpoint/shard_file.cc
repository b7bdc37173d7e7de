#include "runtime/checkpoint/shard_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/digest.h"
#include "runtime/core/error.h"
#include "runtime/core/fault_point.h"
#include "runtime/observe/progress.h"

namespace zshard::checkpoint {

namespace {

constexpr int64_t kStagingBytes = 64 << 20;
// Reads into place go up to 64 MiB at a time; verification reads through an
// 8 MiB scratch buffer (fresh pages cost more than the disk on some VMs).
constexpr int64_t kMaxReadBytes = 64 << 20;
constexpr int64_t kScratchBytes = 8 << 20;

}  // namespace

namespace {

// Appends `bytes` of one piece's buffer, staged through host memory when
// it lives on a device.
class ShardWriter {
 public:
  ShardWriter(const std::string& path, int64_t block_bytes, int64_t total, int rank)
      : writer_(path),
        hasher_(block_bytes),
        total_(total),
        rank_(rank),
        progress_("checkpoint save, rank " + std::to_string(rank) + "'s shard", total, rank == 0) {}

  void append(kernels::Backend& backend, const char* bytes, int64_t size) {
    for (int64_t at = 0; at < size;) {
      const int64_t n = std::min(size - at, kStagingBytes);
      const char* host = bytes + at;
      if (!backend.onHost()) {
        staging_.resize(static_cast<size_t>(std::min(size, kStagingBytes)));
        backend.copyToHost(staging_.data(), host, static_cast<size_t>(n));
        host = staging_.data();
      }
      hasher_.feed(host, n);
      writer_.append({host, static_cast<size_t>(n)});
      at += n;
      written_ += n;
      progress_.advance(n);
      if (!halfway_ && 2 * written_ >= total_) {
        halfway_ = true;
        faultPoint("checkpoint.mid_shard", rank_);
      }
    }
  }

  std::vector<std::string> commit() {
    writer_.commit();
    progress_.finish();
    return hasher_.finish();
  }

 private:
  AtomicFileWriter writer_;
  BlockDigester hasher_;
  std::vector<char> staging_;
  int64_t total_, written_ = 0;
  int rank_;
  bool halfway_ = false;
  observe::Progress progress_;
};

}  // namespace

ShardFileInfo writeShardFile(const std::string& path, const std::vector<StatePiece>& pieces,
                             int64_t block_bytes, int rank) {
  const size_t count = pieces.empty() ? 0 : pieces.front().buffers.size();
  int64_t total = 0;
  for (const StatePiece& p : pieces) {
    total += p.numel * static_cast<int64_t>(sizeof(float) * count);
  }
  ShardWriter writer(path, block_bytes, total, rank);
  for (size_t b = 0; b < count; ++b) {
    for (const StatePiece& p : pieces) {
      writer.append(*p.backend, reinterpret_cast<const char*>(p.buffers.at(b)),
                    p.numel * static_cast<int64_t>(sizeof(float)));
    }
  }
  return {total, block_bytes, kBlockDigestAlgorithm, writer.commit()};
}

VerifiedShardReader::VerifiedShardReader(std::string path, const ShardFileInfo& info)
    : path_(std::move(path)), info_(info) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw IoError("checkpoint file \"" + path_ + "\" cannot be opened: " + std::strerror(errno) +
                  "; the checkpoint is incomplete");
  }
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);  // larger readahead; a hint only
  struct stat st {};
  ::fstat(fd_, &st);
  if (st.st_size != info_.bytes) {
    ::close(fd_);
    throw IoError(
        "checkpoint file \"" + path_ + "\" is " +
        (st.st_size < info_.bytes ? "truncated" : "longer than recorded") + ": " +
        expectedGot(std::to_string(info_.bytes) + " bytes (manifest)", std::to_string(st.st_size)) +
        "; it will not be loaded");
  }
  const int64_t blocks = (info_.bytes + info_.block_bytes - 1) / info_.block_bytes;
  if (info_.block_bytes < 1 || static_cast<int64_t>(info_.block_digests.size()) != blocks ||
      info_.digest_algorithm != kBlockDigestAlgorithm) {
    ::close(fd_);
    throw IoError("checkpoint manifest: the " + info_.digest_algorithm + " digests of \"" + path_ +
                  "\" do not cover the file (or this zshard does not know that checksum)");
  }
}

VerifiedShardReader::~VerifiedShardReader() {
  if (fd_ >= 0) ::close(fd_);
}

void VerifiedShardReader::checkRange(int64_t offset, int64_t length) const {
  if (offset < 0 || length < 0 || offset + length > info_.bytes) {
    throw IoError("checkpoint file \"" + path_ + "\": bytes [" + std::to_string(offset) + ", " +
                  std::to_string(offset + length) + ") are outside its " +
                  std::to_string(info_.bytes) + " bytes");
  }
}

// Reads `length` bytes from `offset` (both on block boundaries, or up to
// the end of the file) into dst in one pread loop, then checks the digest
// of every block in it. Large reads let the kernel stream from the disk.
void VerifiedShardReader::readBlocks(int64_t offset, int64_t length, char* dst) {
  for (int64_t done = 0; done < length;) {
    const ssize_t n = ::pread(fd_, dst + done, static_cast<size_t>(length - done), offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw IoError(
          "reading checkpoint file \"" + path_ + "\" at byte " + std::to_string(offset + done) +
          " failed: " + (n == 0 ? std::string("unexpected end of file") : std::strerror(errno)));
    }
    done += n;
  }
  bytes_read_ += length;
  const int64_t bb = info_.block_bytes;
  for (int64_t at = 0; at < length; at += bb) {
    const int64_t block = (offset + at) / bb;
    const int64_t n = std::min(bb, length - at);
    const std::string found = blockDigest(dst + at, static_cast<size_t>(n));
    if (found != info_.block_digests[block]) {
      throw IoError("checkpoint file \"" + path_ + "\" is corrupt: block " + std::to_string(block) +
                    " (bytes " + std::to_string(offset + at) + ".." +
                    std::to_string(offset + at + n) + ") has " + info_.digest_algorithm + " " +
                    found + ", the manifest recorded " + info_.block_digests[block] +
                    "; it will not be loaded");
    }
  }
}

void VerifiedShardReader::read(int64_t offset, int64_t length, char* dst) {
  checkRange(offset, length);
  const int64_t bb = info_.block_bytes;
  while (length > 0) {
    const int64_t block_start = offset / bb * bb;
    const int64_t within = offset - block_start;
    // Whole blocks inside the range (and a short last block of the file)
    // go straight into place, many at a time.
    const int64_t end = offset + length;
    const int64_t whole_end = end == info_.bytes ? end : end / bb * bb;
    if (within == 0 && whole_end > offset) {
      const int64_t n = std::min(whole_end - offset, kMaxReadBytes / bb * bb);
      readBlocks(offset, n, dst);
      dst += n;
      offset += n;
      length -= n;
      continue;
    }
    const int64_t block = offset / bb;
    const int64_t block_len = std::min(bb, info_.bytes - block_start);
    if (cached_block_ != block) {
      cache_.resize(static_cast<size_t>(bb));
      cached_block_ = -1;
      readBlocks(block_start, block_len, cache_.data());
      cached_block_ = block;
    }
    const int64_t take = std::min(length, block_len - within);
    std::memcpy(dst, cache_.data() + within, static_cast<size_t>(take));
    dst += take;
    offset += take;
    length -= take;
  }
}

void VerifiedShardReader::verify(int64_t offset, int64_t length) {
  checkRange(offset, length);
  const int64_t bb = info_.block_bytes;
  const int64_t end = std::min(info_.bytes, (offset + length + bb - 1) / bb * bb);
  const int64_t chunk = std::max<int64_t>(1, kScratchBytes / bb) * bb;
  if (scratch_ == nullptr) scratch_.reset(new char[chunk]);  // uninitialised: read into
  for (int64_t at = offset / bb * bb; at < end;) {
    const int64_t n = std::min(end - at, chunk);
    readBlocks(at, n, scratch_.get());
    at += n;
  }
}

}  // namespace zshard::checkpoint
