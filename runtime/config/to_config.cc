#include "runtime/config/to_config.h"

#include "proto/config.pb.h"

namespace zshard::config {

namespace {

// DeepSpeed's Adam/Lamb betas when the key is absent (a repeated field has
// no proto default).
constexpr std::array<double, 2> kDefaultBetas = {0.9, 0.999};

Precision precisionOf(const std::string& name) {
  if (name == "fp16") return Precision::kFp16;
  if (name == "bf16") return Precision::kBf16;
  return Precision::kFp32;
}

OffloadDevice deviceOf(const std::string& name) {
  if (name == "cpu") return OffloadDevice::kCpu;
  if (name == "nvme") return OffloadDevice::kNvme;
  return OffloadDevice::kNone;
}

OptimizerConfig toOptimizer(const pb::Optimizer& o) {
  const pb::OptimizerParams& p = o.params();
  OptimizerConfig out;
  out.given = o.has_type();
  const std::string& t = o.type();
  out.type = t == "Adam"   ? OptimizerType::kAdam
             : t == "Lamb" ? OptimizerType::kLamb
             : t == "SGD"  ? OptimizerType::kSgd
                           : OptimizerType::kAdamW;
  out.lr = p.lr();
  out.betas = p.betas_size() == 2 ? std::array<double, 2>{p.betas(0), p.betas(1)} : kDefaultBetas;
  out.eps = p.eps();
  out.weight_decay = p.weight_decay();
  // DeepSpeed: "AdamW" always decouples weight decay; "Adam" follows adam_w_mode.
  out.adam_w_mode = t == "AdamW" ? true : p.adam_w_mode();
  out.bias_correction = p.bias_correction();
  out.momentum = p.momentum();
  out.dampening = p.dampening();
  out.nesterov = p.nesterov();
  out.max_coeff = p.max_coeff();
  out.min_coeff = p.min_coeff();
  out.max_grad_norm = p.max_grad_norm();
  return out;
}

SchedulerType schedulerTypeOf(const pb::Scheduler& s) {
  if (!s.has_type()) return SchedulerType::kNone;
  const std::string& t = s.type();
  if (t == "WarmupLR") return SchedulerType::kWarmupLR;
  if (t == "WarmupDecayLR") return SchedulerType::kWarmupDecayLR;
  if (t == "WarmupCosineLR") return SchedulerType::kWarmupCosineLR;
  if (t == "OneCycle") return SchedulerType::kOneCycle;
  return SchedulerType::kLRRangeTest;
}

SchedulerConfig toScheduler(const pb::Scheduler& s) {
  const pb::SchedulerParams& p = s.params();
  SchedulerConfig out;
  out.type = schedulerTypeOf(s);
  out.last_batch_iteration = p.last_batch_iteration();
  out.warmup_min_lr = p.warmup_min_lr();
  out.warmup_max_lr = p.warmup_max_lr();
  out.warmup_num_steps = p.warmup_num_steps();
  out.warmup_linear = p.warmup_type() == "linear";
  out.total_num_steps = p.total_num_steps();
  out.warmup_min_ratio = p.warmup_min_ratio();
  out.cos_min_ratio = p.cos_min_ratio();
  out.cycle_min_lr = p.cycle_min_lr();
  out.cycle_max_lr = p.cycle_max_lr();
  out.decay_lr_rate = p.decay_lr_rate();
  out.cycle_first_step_size = p.cycle_first_step_size();
  // DeepSpeed: the second half of the cycle defaults to the first's length.
  out.cycle_second_step_size =
      p.has_cycle_second_step_size() ? p.cycle_second_step_size() : p.cycle_first_step_size();
  out.decay_step_size = p.decay_step_size();
  out.cycle_momentum = p.cycle_momentum();
  out.cycle_min_mom = p.cycle_min_mom();
  out.cycle_max_mom = p.cycle_max_mom();
  out.decay_mom_rate = p.decay_mom_rate();
  out.lr_range_test_min_lr = p.lr_range_test_min_lr();
  out.lr_range_test_step_size = p.lr_range_test_step_size();
  out.lr_range_test_step_rate = p.lr_range_test_step_rate();
  out.lr_range_test_staircase = p.lr_range_test_staircase();
  return out;
}

ZeroConfig toZero(const pb::ZeroOptimization& z) {
  ZeroConfig out;
  out.stage = z.stage();
  out.overlap_comm = z.overlap_comm();
  out.reduce_bucket_size = z.has_reduce_bucket_size() ? z.reduce_bucket_size() : 0;
  out.ignore_unused_parameters = z.ignore_unused_parameters();
  out.stage3_param_persistence_threshold = z.stage3_param_persistence_threshold();
  out.stage3_gather_16bit_weights_on_model_save = z.stage3_gather_16bit_weights_on_model_save();
  out.stage3_prefetch_bucket_size = z.stage3_prefetch_bucket_size();
  out.stage3_max_live_parameters = z.stage3_max_live_parameters();
  out.stage3_max_reuse_distance = z.stage3_max_reuse_distance();
  out.log_trace_cache_warnings = z.log_trace_cache_warnings();
  out.memory_efficient_linear = z.memory_efficient_linear();
  out.offload_optimizer = deviceOf(z.offload_optimizer().device());
  out.offload_param = deviceOf(z.offload_param().device());
  out.offload_optimizer_pin_memory = z.offload_optimizer().pin_memory();
  out.offload_param_pin_memory = z.offload_param().pin_memory();
  out.offload_ratio = z.offload_optimizer().ratio();
  if (z.has_sub_group_size()) out.sub_group_size = z.sub_group_size();
  return out;
}

LossScaleConfig toLossScale(const pb::Fp16& f) {
  return LossScaleConfig{f.loss_scale(), f.initial_scale_power(),    f.loss_scale_window(),
                         f.hysteresis(), f.consecutive_hysteresis(), f.min_loss_scale()};
}

}  // namespace

MonitorConfig toMonitor(const pb::Monitor& m) {
  return MonitorConfig{m.enabled(), m.output_path(), m.job_name()};
}

ObserveConfig toObserve(const pb::DeepSpeedConfig& cfg) {
  ObserveConfig out;
  out.tensorboard = toMonitor(cfg.tensorboard());
  out.csv = toMonitor(cfg.csv_monitor());
  const pb::Wandb& w = cfg.wandb();
  out.wandb = w.enabled();
  out.wandb_group = w.group();
  out.wandb_team = w.team();
  out.wandb_project = w.project();
  const pb::CommsLogger& c = cfg.comms_logger();
  out.comms_logger = c.enabled();
  out.comms_verbose = c.verbose();
  out.comms_prof_all = c.prof_all();
  out.comms_prof_ops.assign(c.prof_ops().begin(), c.prof_ops().end());
  const pb::FlopsProfiler& f = cfg.flops_profiler();
  out.flops_profiler = f.enabled();
  out.profile_step = f.profile_step();
  out.module_depth = f.module_depth();
  out.top_modules = f.top_modules();
  out.flops_detailed = f.detailed();
  out.recompute_fwd_factor = f.recompute_fwd_factor();
  out.flops_output_file = f.output_file();
  const pb::ZshardTrace& t = cfg.zshard().trace();
  out.trace = t.enabled();
  out.trace_dir = t.output_path();
  if (t.steps_size() == 2) {
    out.trace_first = t.steps(0);
    out.trace_last = t.steps(1);
  }
  return out;
}

Config toConfig(const pb::DeepSpeedConfig& cfg) {
  Config out;
  out.gradient_clipping = cfg.gradient_clipping();
  if (cfg.zshard().timeouts().has_collective()) {
    out.collective_timeout = std::chrono::milliseconds(
        static_cast<int64_t>(cfg.zshard().timeouts().collective() * 1000));
  }
  out.steps_per_print = cfg.steps_per_print();
  out.wall_clock_breakdown = cfg.wall_clock_breakdown();
  out.dataloader_drop_last = cfg.dataloader_drop_last();
  out.zero_allow_untested_optimizer = cfg.zero_allow_untested_optimizer();
  out.prescale_gradients = cfg.prescale_gradients();
  out.gradient_predivide_factor = cfg.gradient_predivide_factor();
  out.precision = cfg.fp16().enabled()   ? Precision::kFp16
                  : cfg.bf16().enabled() ? Precision::kBf16
                                         : Precision::kFp32;
  out.fp16_auto_cast = cfg.fp16().auto_cast();
  if (cfg.has_communication_data_type()) {
    out.communication_data_type = precisionOf(cfg.communication_data_type());
  }
  if (cfg.data_types().has_grad_accum_dtype()) {
    out.grad_accum_dtype = precisionOf(cfg.data_types().grad_accum_dtype());
  }
  out.loss_scale = toLossScale(cfg.fp16());
  out.optimizer = toOptimizer(cfg.optimizer());
  out.scheduler = toScheduler(cfg.scheduler());
  out.zero = toZero(cfg.zero_optimization());
  const pb::ZshardCheckpoint& ours = cfg.zshard().checkpoint();
  out.checkpoint =
      CheckpointConfig{cfg.checkpoint().tag_validation(), ours.dir(), ours.save_on_signal(),
                       ours.resume() == "latest", ours.keep_last()};
  out.observe = toObserve(cfg);
  return out;
}

}  // namespace zshard::config
