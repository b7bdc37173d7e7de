// libFuzzer entry: any byte string given to loadConfig must either load or
// raise ConfigError; anything else (a crash, a sanitizer report, another
// exception type) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/config/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  zshard::config::LoadOptions options;
  if (size > 0) options.world_size = 1 + data[0] % 16;
  try {
    zshard::config::loadConfig(text, options);
  } catch (const zshard::ConfigError&) {
  }
  return 0;
}
