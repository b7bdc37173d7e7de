#pragma once

#include <string>

namespace zshard::rendezvous {

// HMAC-SHA256(key, message) as 32 raw bytes. (OpenSSL adapter.)
std::string hmacSha256(const std::string& key, const std::string& message);

// `n` bytes from the operating system's CSPRNG; throws Error on failure.
std::string randomBytes(size_t n);

// A fresh secret for a job's store: 16 random bytes as 32 hex digits.
std::string newJobToken();

// Comparison whose time does not depend on where a and b differ.
bool constantTimeEqual(const std::string& a, const std::string& b);

}  // namespace zshard::rendezvous
