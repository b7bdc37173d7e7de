#include "runtime/config/summary.h"

#include <sstream>

#include "runtime/config/support.h"

namespace zshard::config {

namespace {

std::string batchLine(const BatchConfig& b) {
  std::ostringstream s;
  auto value = [](int64_t v) { return v > 0 ? std::to_string(v) : std::string("?"); };
  s << "batch: train_batch_size " << value(b.train_batch_size) << " = micro "
    << value(b.micro_batch_per_gpu) << " x accumulation " << value(b.gradient_accumulation_steps)
    << " x world " << (b.world_size > 0 ? std::to_string(b.world_size) : std::string("?"));
  if (b.world_size == 0) s << " (the rest is inferred from the world size at launch)";
  return s.str();
}

std::string precisionLine(const Config& c) {
  std::ostringstream s;
  s << "precision: " << toString(c.precision);
  if (c.precision == Precision::kFp16) {
    const LossScaleConfig& l = c.loss_scale;
    if (l.static_scale > 0) {
      s << ", static loss scale " << l.static_scale;
    } else {
      s << ", dynamic loss scale 2^" << l.initial_scale_power << " (window " << l.scale_window
        << ", hysteresis " << l.hysteresis << ", min " << l.min_scale << ")";
    }
    if (c.fp16_auto_cast) s << ", forward inputs cast to fp16";
  }
  s << "; gradients accumulated and communicated in " << toString(gradientPrecision(c));
  if (c.prescale_gradients) {
    s << ", divided by the world size before the reduction";
  } else if (c.gradient_predivide_factor != 1.0) {
    s << ", divided by " << c.gradient_predivide_factor << " before the reduction";
  }
  return s.str();
}

std::string zeroLine(const ZeroConfig& z) {
  std::ostringstream s;
  s << "zero: stage " << z.stage;
  if (z.stage == 0) {
    s << " (gradients all-reduced as in DeepSpeed; the optimizer state is still sharded)";
  }
  if (z.stage == 3) {
    s << " (parameters sharded too, each module's gathered when it runs), "
         "stage3_param_persistence_threshold "
      << z.stage3_param_persistence_threshold << " (smaller runs stay whole), "
      << "stage3_prefetch_bucket_size " << z.stage3_prefetch_bucket_size
      << " (elements gathered ahead of the recorded module order; 0: on demand), "
      << "stage3_max_live_parameters " << z.stage3_max_live_parameters
      << " (most elements gathered at once, prefetched and kept included), "
      << "stage3_max_reuse_distance " << z.stage3_max_reuse_distance
      << " (a run used again within this many elements stays gathered), "
      << "stage3_gather_16bit_weights_on_model_save "
      << (z.stage3_gather_16bit_weights_on_model_save ? "true" : "false");
  }
  if (z.stage >= 2) {
    s << ", reduce_bucket_size "
      << (z.reduce_bucket_size > 0 ? std::to_string(z.reduce_bucket_size)
                                   : std::string("a quarter of the model (2^20 to 5e8 elements)"))
      << ", overlap_comm " << (z.overlap_comm ? "on" : "off");
  } else {
    s << ", gradients reduced in place at the accumulation boundary (one "
      << (z.stage == 0 ? "all-reduce" : "reduce-scatter") << ")";
  }
  s << (z.ignore_unused_parameters ? ", unused parameters count as zero gradients"
                                   : ", an unused parameter is an error");
  if (z.offload_optimizer == OffloadDevice::kCpu) {
    s << "; offload_optimizer cpu: " << z.offload_ratio * 100 << "% of each shard's fp32 state in "
      << (z.offload_optimizer_pin_memory ? "pinned" : "pageable")
      << " host memory, stepped there by the CPU kernels";
    if (z.sub_group_size) s << " in sub-groups of " << *z.sub_group_size << " elements";
  }
  if (z.offload_param == OffloadDevice::kCpu) {
    s << "; offload_param cpu: the 16-bit parameter shard in "
      << (z.offload_param_pin_memory ? "pinned" : "pageable")
      << " host memory, copied to the device for each gather";
  }
  return s.str();
}

}  // namespace

std::string optimizerLine(const OptimizerConfig& o) {
  if (!o.given) return "optimizer: none in config (the script passes its own)";
  std::ostringstream s;
  s << "optimizer: " << toString(o.type) << " lr=" << o.lr << " weight_decay=" << o.weight_decay;
  if (o.type == OptimizerType::kSgd) {
    s << " momentum=" << o.momentum << (o.nesterov ? " nesterov" : "");
  } else {
    s << " betas=(" << o.betas[0] << ", " << o.betas[1] << ") eps=" << o.eps;
  }
  if (o.type == OptimizerType::kAdam) s << (o.adam_w_mode ? " decoupled-decay" : " l2-decay");
  return s.str();
}

std::string schedulerLine(const SchedulerConfig& s) {
  std::ostringstream out;
  out << "scheduler: " << toString(s.type);
  switch (s.type) {
    case SchedulerType::kWarmupLR:
    case SchedulerType::kWarmupDecayLR:
      out << " lr " << s.warmup_min_lr << " -> " << s.warmup_max_lr << " over "
          << s.warmup_num_steps << " steps (" << (s.warmup_linear ? "linear" : "log") << ")";
      if (s.type == SchedulerType::kWarmupDecayLR) out << ", decay to step " << s.total_num_steps;
      break;
    case SchedulerType::kWarmupCosineLR:
      out << " warmup " << s.warmup_num_steps << " steps, cosine to step " << s.total_num_steps;
      break;
    case SchedulerType::kOneCycle:
      out << " lr " << s.cycle_min_lr << " <-> " << s.cycle_max_lr;
      break;
    case SchedulerType::kLRRangeTest: out << " from lr " << s.lr_range_test_min_lr; break;
    default: break;
  }
  return out.str();
}

std::string summarize(const Config& c) {
  std::ostringstream s;
  s << batchLine(c.batch) << "\n" << precisionLine(c) << "\n" << optimizerLine(c.optimizer) << "\n";
  if (c.scheduler.type != SchedulerType::kNone) s << schedulerLine(c.scheduler) << "\n";
  s << zeroLine(c.zero) << "\n";
  if (clippingThreshold(c) > 0)
    s << "gradient clipping: global norm " << clippingThreshold(c) << "\n";
  if (c.collective_timeout) {
    s << "collective timeout: " << c.collective_timeout->count() / 1000.0 << " s\n";
  }
  const CheckpointConfig& k = c.checkpoint;
  if (k.save_on_signal || k.resume_latest || k.keep_last > 0) {
    s << "checkpoints:"
      << (k.save_on_signal ? " saved to " + k.dir + " on SIGUSR1/SIGTERM (exit 75)," : "")
      << (k.resume_latest ? " resumed from " + k.dir + "'s latest at initialize()," : "")
      << (k.keep_last > 0 ? " the newest " + std::to_string(k.keep_last) + " tags kept"
                          : " every tag kept")
      << "\n";
  }
  if (!c.auto_keys.empty()) {
    s << "auto (resolved at initialize):";
    for (const std::string& key : c.auto_keys) s << " " << key;
    s << "\n";
  }
  return s.str();
}

}  // namespace zshard::config
