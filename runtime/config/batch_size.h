#pragma once

#include <cstdint>
#include <optional>

#include "runtime/config/config.h"
#include "runtime/config/diagnostic.h"

namespace zshard::config {

// The three batch keys as written (absent or "auto" = nullopt) and the
// world size when it is known.
struct BatchInput {
  std::optional<int64_t> train_batch_size;
  std::optional<int64_t> micro_batch_per_gpu;
  std::optional<int64_t> gradient_accumulation_steps;
  std::optional<int> world_size;
  bool any_auto = false;  // some batch key is "auto": underdetermined is fine
};

// DeepSpeed's rule: train_batch_size = micro x accumulation x world size.
// Infers the missing one exactly as DeepSpeed does (accumulation defaults to
// 1 when only one of the others is given) and reports an inconsistency or an
// indivisible split to `diags` under the offending key. Without a world size,
// three given keys imply it (and must divide); fewer are kept as given.
// Pure function.
BatchConfig resolveBatch(const BatchInput& in, Diagnostics& diags);

}  // namespace zshard::config
