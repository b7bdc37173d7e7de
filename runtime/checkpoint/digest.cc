// The digest adapters: the only file that includes xxhash.h (inlined, so no
// run-time library is needed) and OpenSSL's EVP.
#include "runtime/checkpoint/digest.h"

#define XXH_INLINE_ALL
#include <openssl/evp.h>
#include <xxhash.h>

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/core/hex.h"

namespace zshard::checkpoint {

namespace {

std::string hexOf(XXH128_hash_t h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  return toHex({reinterpret_cast<const char*>(c.digest), sizeof c.digest});
}

}  // namespace

std::string sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw Error("SHA-256 failed (OpenSSL)");
  }
  return toHex(std::string_view(reinterpret_cast<const char*>(digest), len));
}

struct BlockDigester::State {
  XXH3_state_t xxh;
};

std::string blockDigest(const char* data, size_t n) {
  return hexOf(XXH3_128bits(data, n));
}

BlockDigester::BlockDigester(int64_t block_bytes)
    : block_bytes_(block_bytes), state_(std::make_unique<State>()) {
  XXH3_128bits_reset(&state_->xxh);
}

BlockDigester::~BlockDigester() = default;

void BlockDigester::feed(const char* data, int64_t n) {
  while (n > 0) {
    const int64_t take = std::min(n, block_bytes_ - in_block_);
    XXH3_128bits_update(&state_->xxh, data, static_cast<size_t>(take));
    in_block_ += take;
    data += take;
    n -= take;
    if (in_block_ == block_bytes_) finishBlock();
  }
}

std::vector<std::string> BlockDigester::finish() {
  if (in_block_ > 0) finishBlock();
  return std::move(digests_);
}

void BlockDigester::finishBlock() {
  digests_.push_back(hexOf(XXH3_128bits_digest(&state_->xxh)));
  XXH3_128bits_reset(&state_->xxh);
  in_block_ = 0;
}

}  // namespace zshard::checkpoint
