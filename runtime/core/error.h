#pragma once

#include <stdexcept>
#include <string>

namespace zshard {

// The one error model of zshard host code. Every message says what was
// expected, what was found and, where there is one, what to do about it.
// Library return codes (CUDA, NCCL, PMIx) become these at the call site.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A ds.json that cannot be used; see config/diagnostic.h for the per-key list.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Wrong command-line usage (zlaunch exits 2 on it).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A file or other operating-system resource could not be used.
class IoError : public Error {
 public:
  using Error::Error;
};

// A wait (store key, collective, peer) passed its deadline.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// A collective or transport failed (peer gone, protocol error, ...).
class CommError : public Error {
 public:
  using Error::Error;
};

// A peer could not prove it knows the job's secret token.
class AuthError : public Error {
 public:
  using Error::Error;
};

// Builds "expected <expected>, got <found>" with an optional "; <advice>".
std::string expectedGot(const std::string& expected, const std::string& found,
                        const std::string& advice = "");

}  // namespace zshard
