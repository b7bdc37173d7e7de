#include "runtime/rendezvous/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "runtime/core/error.h"
#include "runtime/core/hex.h"

namespace zshard::rendezvous {

std::string hmacSha256(const std::string& key, const std::string& message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
           &len) == nullptr) {
    throw Error("HMAC-SHA256 failed (OpenSSL)");
  }
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw Error("could not read random bytes (OpenSSL RAND_bytes)");
  }
  return out;
}

std::string newJobToken() {
  return toHex(randomBytes(16));
}

bool constantTimeEqual(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace zshard::rendezvous
