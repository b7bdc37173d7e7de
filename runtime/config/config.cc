#include "runtime/config/config.h"

namespace zshard::config {

namespace {

auto fields(const BatchConfig& b) {
  return std::tie(b.train_batch_size, b.micro_batch_per_gpu, b.gradient_accumulation_steps,
                  b.world_size);
}
auto fields(const LossScaleConfig& l) {
  return std::tie(l.static_scale, l.initial_scale_power, l.scale_window, l.hysteresis,
                  l.consecutive_hysteresis, l.min_scale);
}
auto fields(const OptimizerConfig& o) {
  return std::tie(o.type, o.given, o.lr, o.betas, o.eps, o.weight_decay, o.adam_w_mode,
                  o.bias_correction, o.momentum, o.dampening, o.nesterov, o.max_coeff, o.min_coeff,
                  o.max_grad_norm);
}
auto fields(const SchedulerConfig& s) {
  return std::tie(s.type, s.last_batch_iteration, s.warmup_min_lr, s.warmup_max_lr,
                  s.warmup_num_steps, s.warmup_linear, s.total_num_steps, s.warmup_min_ratio,
                  s.cos_min_ratio, s.cycle_min_lr, s.cycle_max_lr, s.decay_lr_rate,
                  s.cycle_first_step_size, s.cycle_second_step_size, s.decay_step_size,
                  s.cycle_momentum, s.cycle_min_mom, s.cycle_max_mom, s.decay_mom_rate,
                  s.lr_range_test_min_lr, s.lr_range_test_step_rate, s.lr_range_test_step_size,
                  s.lr_range_test_staircase);
}
auto fields(const ZeroConfig& z) {
  return std::tie(z.stage, z.overlap_comm, z.reduce_bucket_size, z.ignore_unused_parameters,
                  z.stage3_param_persistence_threshold, z.stage3_gather_16bit_weights_on_model_save,
                  z.stage3_prefetch_bucket_size, z.stage3_max_live_parameters,
                  z.stage3_max_reuse_distance, z.log_trace_cache_warnings,
                  z.memory_efficient_linear, z.offload_optimizer, z.offload_param,
                  z.offload_optimizer_pin_memory, z.offload_param_pin_memory, z.offload_ratio,
                  z.sub_group_size);
}

}  // namespace

bool operator==(const BatchConfig& a, const BatchConfig& b) {
  return fields(a) == fields(b);
}
bool operator==(const LossScaleConfig& a, const LossScaleConfig& b) {
  return fields(a) == fields(b);
}
bool operator==(const OptimizerConfig& a, const OptimizerConfig& b) {
  return fields(a) == fields(b);
}
bool operator==(const SchedulerConfig& a, const SchedulerConfig& b) {
  return fields(a) == fields(b);
}
bool operator==(const ZeroConfig& a, const ZeroConfig& b) {
  return fields(a) == fields(b);
}
bool operator==(const CheckpointConfig& a, const CheckpointConfig& b) {
  return std::tie(a.tag_validation, a.dir, a.save_on_signal, a.resume_latest, a.keep_last) ==
         std::tie(b.tag_validation, b.dir, b.save_on_signal, b.resume_latest, b.keep_last);
}
bool operator==(const MonitorConfig& a, const MonitorConfig& b) {
  return std::tie(a.enabled, a.output_path, a.job_name) ==
         std::tie(b.enabled, b.output_path, b.job_name);
}
bool operator==(const ObserveConfig& a, const ObserveConfig& b) {
  auto tied = [](const ObserveConfig& c) {
    return std::tie(c.tensorboard, c.csv, c.wandb, c.wandb_group, c.wandb_team, c.wandb_project,
                    c.comms_logger, c.comms_verbose, c.comms_prof_all, c.comms_prof_ops,
                    c.flops_profiler, c.profile_step, c.module_depth, c.top_modules,
                    c.flops_detailed, c.recompute_fwd_factor, c.flops_output_file, c.trace,
                    c.trace_dir, c.trace_first, c.trace_last);
  };
  return tied(a) == tied(b);
}
bool operator==(const Config& a, const Config& b) {
  return std::tie(a.batch, a.gradient_clipping, a.steps_per_print, a.wall_clock_breakdown,
                  a.dataloader_drop_last, a.zero_allow_untested_optimizer, a.prescale_gradients,
                  a.gradient_predivide_factor, a.precision, a.fp16_auto_cast,
                  a.communication_data_type, a.grad_accum_dtype, a.loss_scale, a.optimizer,
                  a.scheduler, a.zero, a.checkpoint, a.auto_keys, a.collective_timeout,
                  a.observe) ==
         std::tie(b.batch, b.gradient_clipping, b.steps_per_print, b.wall_clock_breakdown,
                  b.dataloader_drop_last, b.zero_allow_untested_optimizer, b.prescale_gradients,
                  b.gradient_predivide_factor, b.precision, b.fp16_auto_cast,
                  b.communication_data_type, b.grad_accum_dtype, b.loss_scale, b.optimizer,
                  b.scheduler, b.zero, b.checkpoint, b.auto_keys, b.collective_timeout, b.observe);
}

const char* toString(Precision p) {
  switch (p) {
    case Precision::kFp16: return "fp16";
    case Precision::kBf16: return "bf16";
    default: return "fp32";
  }
}

const char* toString(OptimizerType t) {
  switch (t) {
    case OptimizerType::kAdam: return "Adam";
    case OptimizerType::kLamb: return "Lamb";
    case OptimizerType::kSgd: return "SGD";
    default: return "AdamW";
  }
}

const char* toString(SchedulerType t) {
  switch (t) {
    case SchedulerType::kWarmupLR: return "WarmupLR";
    case SchedulerType::kWarmupDecayLR: return "WarmupDecayLR";
    case SchedulerType::kWarmupCosineLR: return "WarmupCosineLR";
    case SchedulerType::kOneCycle: return "OneCycle";
    case SchedulerType::kLRRangeTest: return "LRRangeTest";
    default: return "none";
  }
}

const char* toString(OffloadDevice d) {
  switch (d) {
    case OffloadDevice::kCpu: return "cpu";
    case OffloadDevice::kNvme: return "nvme";
    default: return "none";
  }
}

}  // namespace zshard::config
