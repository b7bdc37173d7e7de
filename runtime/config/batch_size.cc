#include "runtime/config/batch_size.h"

#include <string>

namespace zshard::config {

namespace {

constexpr const char* kTrain = "train_batch_size";
constexpr const char* kMicro = "train_micro_batch_size_per_gpu";
constexpr const char* kAccum = "gradient_accumulation_steps";

std::string str(int64_t v) {
  return std::to_string(v);
}

// Divides `total` by `divisor` or reports why it cannot be split evenly.
std::optional<int64_t> split(int64_t total, int64_t divisor, const std::string& what,
                             Diagnostics& diags) {
  if (total % divisor == 0) return total / divisor;
  diags.error(kTrain, expectedGot("a multiple of " + what + " = " + str(divisor), str(total)));
  return std::nullopt;
}

BatchConfig withoutWorldSize(const BatchInput& in, Diagnostics& diags) {
  BatchConfig out;
  out.micro_batch_per_gpu = in.micro_batch_per_gpu.value_or(0);
  out.gradient_accumulation_steps = in.gradient_accumulation_steps.value_or(0);
  if (!in.train_batch_size || !in.micro_batch_per_gpu || !in.gradient_accumulation_steps) {
    out.train_batch_size = in.train_batch_size.value_or(0);
    return out;
  }
  const int64_t per_rank = *in.micro_batch_per_gpu * *in.gradient_accumulation_steps;
  if (auto world =
          split(*in.train_batch_size, per_rank, std::string(kMicro) + " x " + kAccum, diags)) {
    out.train_batch_size = *in.train_batch_size;
    out.world_size = static_cast<int>(*world);
  }
  return out;
}

BatchConfig withWorldSize(const BatchInput& in, int world, Diagnostics& diags) {
  BatchConfig out;
  out.world_size = world;
  std::optional<int64_t> train = in.train_batch_size, micro = in.micro_batch_per_gpu,
                         accum = in.gradient_accumulation_steps;
  const std::string w = "world size " + str(world);
  if (train && micro && !accum) {
    accum = split(*train, *micro * world, std::string(kMicro) + " x " + w, diags);
  } else if (train && accum && !micro) {
    micro = split(*train, *accum * world, std::string(kAccum) + " x " + w, diags);
  } else if (train && !micro && !accum) {
    accum = 1;
    micro = split(*train, world, w, diags);
  } else if (micro && !train) {
    accum = accum.value_or(1);
    train = *micro * *accum * world;
  }
  if (!train || !micro || !accum) return out;
  if (*train != *micro * *accum * world) {
    diags.error(kTrain, expectedGot(std::string(kMicro) + " x " + kAccum +
                                        " x world size = " + str(*micro) + " x " + str(*accum) +
                                        " x " + str(world) + " = " + str(*micro * *accum * world),
                                    str(*train), "fix one of the three or drop one to infer it"));
    return out;
  }
  out.train_batch_size = *train;
  out.micro_batch_per_gpu = *micro;
  out.gradient_accumulation_steps = *accum;
  return out;
}

}  // namespace

BatchConfig resolveBatch(const BatchInput& in, Diagnostics& diags) {
  if (!in.train_batch_size && !in.micro_batch_per_gpu) {
    if (!in.any_auto) {
      diags.error(kTrain, std::string("required: give train_batch_size or ") + kMicro +
                              " (or both); DeepSpeed infers the rest");
    }
    BatchConfig out;
    out.gradient_accumulation_steps = in.gradient_accumulation_steps.value_or(0);
    return out;
  }
  if (in.world_size) return withWorldSize(in, *in.world_size, diags);
  return withoutWorldSize(in, diags);
}

}  // namespace zshard::config
