#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace zshard::config {

// The validated, typed form of a ds.json: what the runtime acts on. Built
// only by loadConfig() (load.h); DeepSpeed's defaults live in
// proto/config.proto and are never repeated here. Every member is read by
// the runtime; a key it does not act on is marked (inert) in the schema
// instead of being carried here (tests/runtime/config/schema_contract_test.cc
// holds every schema key to one or the other). Plain values: copyable,
// thread-compatible, comparable.

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
  double max_coeff{}, min_coeff{};
  double max_grad_norm{};  // Lamb: clips the global gradient norm (as gradient_clipping)
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
  int64_t decay_step_size{};
  bool cycle_momentum{};
  double cycle_min_mom{}, cycle_max_mom{}, decay_mom_rate{};
  double lr_range_test_min_lr{}, lr_range_test_step_rate{};
  int64_t lr_range_test_step_size{};
  bool lr_range_test_staircase{};
};

struct ZeroConfig {
  int stage{};
  bool overlap_comm{};
  int64_t reduce_bucket_size{};  // 0: not given, sized by the model (zero::defaultBucketNumel)
  bool ignore_unused_parameters{};
  // Stage 3: parameters of runs this small stay gathered; save_16bit_model
  // gathers the whole model (else it writes nothing, as DeepSpeed).
  int64_t stage3_param_persistence_threshold{};
  bool stage3_gather_16bit_weights_on_model_save{};
  // Stage 3 prefetch (elements): how far ahead of the recorded module order
  // gathers start, how many elements may be gathered at once, and how soon
  // a released run must be used again to stay gathered. Each step whose
  // order differs from the recorded one is logged with
  // log_trace_cache_warnings (else only the first).
  int64_t stage3_prefetch_bucket_size{};
  int64_t stage3_max_live_parameters{};
  int64_t stage3_max_reuse_distance{};
  bool log_trace_cache_warnings{};
  // Stage 3: nn.Linear saves its weight, not a transposed view of the
  // gathered buffer, for backward (DeepSpeed's memory_efficient_linear).
  bool memory_efficient_linear{};
  // ZeRO-Offload: where the optimizer state (stages 1-3) and, at stage 3,
  // the parameter shards live; "cpu" only (NVMe is refused, support.h).
  // pin_memory page-locks that host memory (GPU workers); ratio is the
  // fraction of each shard's optimizer state offloaded (Twin-Flow); the
  // host steps sub_group_size elements between transfers.
  OffloadDevice offload_optimizer = OffloadDevice::kNone;
  OffloadDevice offload_param = OffloadDevice::kNone;
  bool offload_optimizer_pin_memory{};
  bool offload_param_pin_memory{};
  double offload_ratio{};
  std::optional<int64_t> sub_group_size;  // unset: the whole shard at once
};

struct CheckpointConfig {
  std::string tag_validation;  // Ignore | Warn | Fail
  // zshard.checkpoint: where preemption saves and auto-resume look, and
  // how many tags each save keeps (0: all).
  std::string dir;
  bool save_on_signal{};
  bool resume_latest{};
  int keep_last{};
};

// A monitor block (tensorboard, csv_monitor): DeepSpeed writes under
// output_path/job_name.
struct MonitorConfig {
  bool enabled{};
  std::string output_path, job_name;
};

// What watches a run: monitors, the communication log, the flops profiler
// and the timeline (python/zshard/observe.py acts on it).
struct ObserveConfig {
  MonitorConfig tensorboard, csv;
  bool wandb{};
  std::string wandb_group, wandb_team, wandb_project;
  bool comms_logger{}, comms_verbose{}, comms_prof_all{};
  std::vector<std::string> comms_prof_ops;
  bool flops_profiler{};
  int profile_step{}, module_depth{}, top_modules{};
  bool flops_detailed{};
  double recompute_fwd_factor{};
  std::string flops_output_file;
  bool trace{};
  std::string trace_dir;
  int64_t trace_first{}, trace_last{};  // 0: no bound
};

struct Config {
  BatchConfig batch;
  // zshard.timeouts.collective; unset: collectiveTimeout() (core/timeouts.h).
  std::optional<std::chrono::milliseconds> collective_timeout;
  double gradient_clipping{};
  int64_t steps_per_print{};
  bool wall_clock_breakdown{};
  bool dataloader_drop_last{};
  bool zero_allow_untested_optimizer{};  // a client optimizer of another class may step the shard
  bool prescale_gradients{};
  double gradient_predivide_factor{};
  Precision precision = Precision::kFp32;
  bool fp16_auto_cast{};                             // forward casts floating inputs to fp16
  std::optional<Precision> communication_data_type;  // unset: training precision
  std::optional<Precision> grad_accum_dtype;         // data_types.grad_accum_dtype
  LossScaleConfig loss_scale;                        // used when fp16
  OptimizerConfig optimizer;
  SchedulerConfig scheduler;
  ZeroConfig zero;
  CheckpointConfig checkpoint;
  ObserveConfig observe;
  // Key paths written as "auto" (HuggingFace style), in file order. They
  // hold DeepSpeed's default until resolveAuto() (auto.h) fills them.
  std::vector<std::string> auto_keys;
};

bool operator==(const BatchConfig& a, const BatchConfig& b);
bool operator==(const LossScaleConfig& a, const LossScaleConfig& b);
bool operator==(const OptimizerConfig& a, const OptimizerConfig& b);
bool operator==(const SchedulerConfig& a, const SchedulerConfig& b);
bool operator==(const ZeroConfig& a, const ZeroConfig& b);
bool operator==(const CheckpointConfig& a, const CheckpointConfig& b);
bool operator==(const MonitorConfig& a, const MonitorConfig& b);
bool operator==(const ObserveConfig& a, const ObserveConfig& b);
bool operator==(const Config& a, const Config& b);
inline bool operator!=(const Config& a, const Config& b) {
  return !(a == b);
}

const char* toString(Precision p);
const char* toString(OptimizerType t);
const char* toString(SchedulerType t);
const char* toString(OffloadDevice d);

}  // namespace zshard::config
