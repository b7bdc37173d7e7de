#include "runtime/checkpoint/shard_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/core/error.h"
#include "runtime/core/fault_point.h"
#include "runtime/core/hex.h"

namespace zshard::checkpoint {

namespace {

constexpr int64_t kStagingBytes = 64 << 20;

// SHA-256 of consecutive fixed-size blocks of a byte stream fed in pieces
// of any size.
class BlockHasher {
 public:
  explicit BlockHasher(int64_t block_bytes) : block_bytes_(block_bytes), ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr) throw Error("SHA-256: out of memory (OpenSSL)");
    restart();
  }
  ~BlockHasher() { EVP_MD_CTX_free(ctx_); }

  void feed(const char* data, int64_t n) {
    while (n > 0) {
      const int64_t take = std::min(n, block_bytes_ - in_block_);
      EVP_DigestUpdate(ctx_, data, static_cast<size_t>(take));
      in_block_ += take;
      data += take;
      n -= take;
      if (in_block_ == block_bytes_) finishBlock();
    }
  }
  std::vector<std::string> finish() {
    if (in_block_ > 0) finishBlock();
    return std::move(digests_);
  }

 private:
  void restart() {
    if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw Error("SHA-256 init failed");
    in_block_ = 0;
  }
  void finishBlock() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    digests_.push_back(toHex({reinterpret_cast<const char*>(digest), len}));
    restart();
  }

  int64_t block_bytes_;
  int64_t in_block_ = 0;
  EVP_MD_CTX* ctx_;
  std::vector<std::string> digests_;
};

}  // namespace

ShardFileInfo writeShardFile(const std::string& path, kernels::Backend& backend,
                             const std::vector<const float*>& buffers, int64_t numel,
                             int64_t block_bytes, int rank) {
  const int64_t buffer_bytes = numel * static_cast<int64_t>(sizeof(float));
  const int64_t total = buffer_bytes * static_cast<int64_t>(buffers.size());
  AtomicFileWriter writer(path);
  BlockHasher hasher(block_bytes);
  std::vector<char> staging(backend.onHost() ? 0 : std::min(buffer_bytes, kStagingBytes));
  int64_t written = 0;
  bool halfway = false;
  for (const float* buffer : buffers) {
    const char* bytes = reinterpret_cast<const char*>(buffer);
    for (int64_t at = 0; at < buffer_bytes;) {
      const int64_t n = std::min(buffer_bytes - at, kStagingBytes);
      const char* host = bytes + at;
      if (!backend.onHost()) {
        backend.copyToHost(staging.data(), host, static_cast<size_t>(n));
        host = staging.data();
      }
      hasher.feed(host, n);
      writer.append({host, static_cast<size_t>(n)});
      at += n;
      written += n;
      if (!halfway && 2 * written >= total) {
        halfway = true;
        faultPoint("checkpoint.mid_shard", rank);
      }
    }
  }
  writer.commit();
  return {total, block_bytes, hasher.finish()};
}

VerifiedShardReader::VerifiedShardReader(std::string path, const ShardFileInfo& info)
    : path_(std::move(path)), info_(info) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw IoError("checkpoint file \"" + path_ + "\" cannot be opened: " + std::strerror(errno) +
                  "; the checkpoint is incomplete");
  }
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
  if (info_.block_bytes < 1 || static_cast<int64_t>(info_.block_sha256.size()) != blocks) {
    ::close(fd_);
    throw IoError("checkpoint manifest: the digests of \"" + path_ + "\" do not cover the file");
  }
}

VerifiedShardReader::~VerifiedShardReader() {
  if (fd_ >= 0) ::close(fd_);
}

// Reads block `block` (`length` bytes) into dst and checks its digest.
void VerifiedShardReader::readBlock(int64_t block, char* dst, int64_t length) {
  const int64_t offset = block * info_.block_bytes;
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
  const std::string found = sha256Hex({dst, static_cast<size_t>(length)});
  if (found != info_.block_sha256[block]) {
    throw IoError("checkpoint file \"" + path_ + "\" is corrupt: block " + std::to_string(block) +
                  " (bytes " + std::to_string(offset) + ".." + std::to_string(offset + length) +
                  ") has SHA-256 " + found + ", the manifest recorded " +
                  info_.block_sha256[block] + "; it will not be loaded");
  }
}

void VerifiedShardReader::read(int64_t offset, int64_t length, char* dst) {
  if (offset < 0 || length < 0 || offset + length > info_.bytes) {
    throw IoError("checkpoint file \"" + path_ + "\": bytes [" + std::to_string(offset) + ", " +
                  std::to_string(offset + length) + ") are outside its " +
                  std::to_string(info_.bytes) + " bytes");
  }
  const int64_t bb = info_.block_bytes;
  while (length > 0) {
    const int64_t block = offset / bb;
    const int64_t block_start = block * bb;
    const int64_t block_len = std::min(bb, info_.bytes - block_start);
    const int64_t within = offset - block_start;
    const int64_t take = std::min(length, block_len - within);
    if (within == 0 && take == block_len) {
      readBlock(block, dst, block_len);  // a whole block: straight into place
    } else {
      if (cached_block_ != block) {
        cache_.resize(static_cast<size_t>(bb));
        cached_block_ = -1;
        readBlock(block, cache_.data(), block_len);
        cached_block_ = block;
      }
      std::memcpy(dst, cache_.data() + within, static_cast<size_t>(take));
    }
    dst += take;
    offset += take;
    length -= take;
  }
}

}  // namespace zshard::checkpoint
