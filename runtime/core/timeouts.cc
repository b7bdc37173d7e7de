#include "runtime/core/timeouts.h"

#include <cstdlib>
#include <string>

#include "runtime/core/error.h"

namespace zshard {

namespace {

std::chrono::milliseconds fromEnv(const char* name, std::chrono::milliseconds fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (*end != '\0' || !(seconds > 0) || seconds > 86400) {
    throw Error(std::string(name) + ": " +
                expectedGot("seconds in (0, 86400]", "\"" + std::string(text) + "\""));
  }
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

}  // namespace

std::chrono::milliseconds collectiveTimeout() {
  return fromEnv("ZSHARD_COLLECTIVE_TIMEOUT", kDefaultCollectiveTimeout);
}

std::chrono::milliseconds storeIoTimeout() {
  return fromEnv("ZSHARD_STORE_TIMEOUT", kDefaultStoreIoTimeout);
}

}  // namespace zshard
