#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/config/diagnostic.h"

namespace zshard::config {

// What the caller knows when a config is loaded: at initialize() the world
// size and model; at check-config maybe just --world-size.
struct LoadOptions {
  std::optional<int> world_size;
  // Values for keys written as "auto", by key path (numbers; true = 1);
  // entries for keys the file did not write as "auto" are not used.
  std::map<std::string, double> auto_values;
  // The model's hidden size: "auto" bucket sizes follow the HuggingFace
  // integration (reduce_bucket_size = h*h, stage3_prefetch_bucket_size =
  // 0.9*h*h, stage3_param_persistence_threshold = 10*h).
  std::optional<int64_t> hidden_size;
  // At initialize(): an "auto" that nothing above (nor the batch-size
  // inference) resolves is an error naming the key, never a default.
  bool require_resolved = false;
};

struct LoadedConfig {
  Config config;
  std::vector<Diagnostic> warnings;  // inert blocks, deprecated names, ...
};

// Parses, validates and types a ds.json. Throws InvalidConfigError listing
// every problem (malformed JSON: one, with line and column). Features not
// supported yet are errors (support.h). "auto" keys not given in `options`
// keep DeepSpeed's default (batch keys: inferred) unless require_resolved.
LoadedConfig loadConfig(std::string_view json_text, const LoadOptions& options = {});

// Same for a file; an unreadable file is an InvalidConfigError naming it.
// A file that is not a regular file (a FIFO, a device) or is larger than
// kMaxConfigBytes is refused before it is read.
inline constexpr uintmax_t kMaxConfigBytes = uintmax_t{16} << 20;
LoadedConfig loadConfigFile(const std::string& path, const LoadOptions& options = {});

}  // namespace zshard::config
