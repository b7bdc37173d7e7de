#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace zshard::config {

// The validated, typed form of a ds.json: what the runtime acts on. Built
// only by loadConfig() (load.h); DeepSpeed's defaults live in
// proto/config.proto and are never repeated here. Plain values: copyable,
// thread-compatible.

enum class Precision { kFp32, kFp16, kBf16 };
enum class OptimizerType { kAdam, kAdamW, kLamb, kSgd };
enum class SchedulerType {
  kNone,
  kWarmupLR,
  kWarmupDecayLR,
  kWarmupCosineLR,
  kOneCycle,
  kLRRangeTest
};
enum class OffloadDevice { kNone, kCpu, kNvme };

struct BatchConfig {
  // Known when the world size was known at load time; 0 otherwise (then
  // `micro` and `accumulation` given in the file are kept and the rest is
  // inferred at initialize()).
  int64_t train_batch_size = 0;
  int64_t micro_batch_per_gpu = 0;
  int64_t gradient_accumulation_steps = 0;
  int world_size = 0;
};

struct LossScaleConfig {
  double static_scale{};  // 0: dynamic
  int initial_scale_power{};
  int scale_window{};
  int hysteresis{};
  bool consecutive_hysteresis{};
  double min_scale{};
};

struct OptimizerConfig {
  OptimizerType type = OptimizerType::kAdamW;
  bool given = false;  // false: no optimizer block (the client brings one)
  double lr{};
  std::array<double, 2> betas{};
  double eps{};
  double weight_decay{};
  bool adam_w_mode{};
  bool bias_correction{};
  double momentum{}, dampening{};
  bool nesterov{};
  double max_coeff{}, min_coeff{}, max_grad_norm{};
};

struct SchedulerConfig {
  SchedulerType type = SchedulerType::kNone;
  int64_t last_batch_iteration{};
  double warmup_min_lr{}, warmup_max_lr{};
  int64_t warmup_num_steps{};
  bool warmup_linear{};  // false: "log"
  int64_t total_num_steps{};
  double warmup_min_ratio{}, cos_min_ratio{};
  double cycle_min_lr{}, cycle_max_lr{}, decay_lr_rate{};
  int64_t cycle_first_step_size{}, cycle_second_step_size{};
  int64_t cycle_first_stair_count{}, cycle_second_stair_count{};
  int64_t decay_step_size{};
  bool cycle_momentum{};
  double cycle_min_mom{}, cycle_max_mom{}, decay_mom_rate{};
  double lr_range_test_min_lr{}, lr_range_test_step_rate{};
  int64_t lr_range_test_step_size{};
  bool lr_range_test_staircase{};
};

struct OffloadConfig {
  OffloadDevice device = OffloadDevice::kNone;
  std::string nvme_path;
  bool pin_memory{};
  double ratio{};  // optimizer offload only
};

struct ZeroConfig {
  int stage{};
  bool contiguous_gradients{}, overlap_comm{}, reduce_scatter{};
  int64_t reduce_bucket_size{};
  bool allgather_partitions{};
  int64_t allgather_bucket_size{};
  bool load_from_fp32_weights{};
  OffloadConfig offload_optimizer;
  OffloadConfig offload_param;
  int64_t sub_group_size{};
  int64_t stage3_prefetch_bucket_size{};
  int64_t stage3_param_persistence_threshold{};
  int64_t stage3_model_persistence_threshold{};
  int64_t stage3_max_live_parameters{};
  int64_t stage3_max_reuse_distance{};
  bool stage3_gather_16bit_weights_on_model_save{};
  bool round_robin_gradients{};
  bool ignore_unused_parameters{};
};

struct CheckpointConfig {
  std::string tag_validation;  // Ignore | Warn | Fail
  bool load_universal{};
  bool use_node_local_storage{};
};

struct Config {
  BatchConfig batch;
  double gradient_clipping{};
  int64_t steps_per_print{};
  bool wall_clock_breakdown{};
  bool prescale_gradients{};
  double gradient_predivide_factor{};
  Precision precision = Precision::kFp32;
  std::optional<Precision> communication_data_type;  // unset: training precision
  LossScaleConfig loss_scale;                        // used when fp16
  OptimizerConfig optimizer;
  SchedulerConfig scheduler;
  ZeroConfig zero;
  CheckpointConfig checkpoint;
  // Key paths written as "auto" (HuggingFace style), in file order. They
  // hold DeepSpeed's default until resolveAuto() (auto.h) fills them.
  std::vector<std::string> auto_keys;
};

const char* toString(Precision p);
const char* toString(OptimizerType t);
const char* toString(SchedulerType t);
const char* toString(OffloadDevice d);

}  // namespace zshard::config
