#include "runtime/config/semantic_checks.h"

#include <cmath>
#include <string>

#include "proto/config.pb.h"

namespace zshard::config {

namespace {

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void checkPrecision(const pb::DeepSpeedConfig& cfg, Diagnostics& diags) {
  if (cfg.fp16().enabled() && cfg.bf16().enabled()) {
    diags.error("bf16.enabled",
                "fp16.enabled is true as well; enable at most one of fp16 and bf16");
  }
  const pb::Fp16& fp16 = cfg.fp16();
  const double initial = std::ldexp(1.0, fp16.initial_scale_power());
  if (fp16.enabled() && fp16.loss_scale() == 0 && fp16.min_loss_scale() > initial) {
    diags.error("fp16.min_loss_scale",
                expectedGot("at most the initial scale 2^" +
                                std::to_string(fp16.initial_scale_power()) + " = " + num(initial),
                            num(fp16.min_loss_scale())));
  }
}

void checkOffload(const pb::ZeroOptimization& zero, Diagnostics& diags) {
  const std::string stage = std::to_string(zero.stage());
  if (zero.offload_optimizer().device() != "none" && zero.stage() == 0) {
    diags.error("zero_optimization.offload_optimizer.device",
                "offloading the optimizer needs zero_optimization.stage 1, 2 or 3; stage is 0");
  }
  if (zero.offload_param().device() != "none" && zero.stage() != 3) {
    diags.error("zero_optimization.offload_param.device",
                "offloading parameters needs zero_optimization.stage 3; stage is " + stage);
  }
  if (zero.offload_optimizer().device() == "nvme" && zero.offload_optimizer().nvme_path().empty()) {
    diags.error("zero_optimization.offload_optimizer.nvme_path",
                "required when device is \"nvme\"");
  }
  if (zero.offload_param().device() == "nvme" && zero.offload_param().nvme_path().empty()) {
    diags.error("zero_optimization.offload_param.nvme_path", "required when device is \"nvme\"");
  }
}

// Preemption saves and auto-resume need the directory they use.
void checkZshardCheckpoint(const pb::ZshardCheckpoint& c, Diagnostics& diags) {
  if ((c.save_on_signal() || c.resume() == "latest") && c.dir().empty()) {
    diags.error("zshard.checkpoint.dir",
                std::string("required with ") +
                    (c.save_on_signal() ? "save_on_signal" : "resume \"latest\"") +
                    ": the directory preemption saves go to and runs resume from");
  }
}

// The collectives comms_logger.prof_ops may name (DeepSpeed's names).
constexpr const char* kCommsOps[] = {"all_reduce", "reduce_scatter", "all_gather", "broadcast",
                                     "barrier"};

void checkCommsLogger(const pb::CommsLogger& c, Diagnostics& diags) {
  for (int i = 0; i < c.prof_ops_size(); ++i) {
    bool known = false;
    for (const char* op : kCommsOps) known = known || c.prof_ops(i) == op;
    if (!known) {
      diags.error("comms_logger.prof_ops[" + std::to_string(i) + "]",
                  expectedGot("one of all_reduce, reduce_scatter, all_gather, broadcast, barrier",
                              "\"" + c.prof_ops(i) + "\""));
    }
  }
  if (c.enabled() && c.prof_all() && c.prof_ops_size() > 0) {
    diags.warn("comms_logger.prof_ops",
               "ignored while prof_all is true (as in DeepSpeed): every collective is logged; "
               "set prof_all false to log only these");
  }
}

void checkTrace(const pb::ZshardTrace& t, Diagnostics& diags) {
  if (t.enabled() && t.output_path().empty()) {
    diags.error("zshard.trace.output_path",
                "required with enabled: the directory the per-rank traces and trace.json go to");
  }
  if (t.steps_size() == 2 && t.steps(0) > t.steps(1)) {
    diags.error("zshard.trace.steps", expectedGot("[first, last] with first <= last",
                                                  "[" + std::to_string(t.steps(0)) + ", " +
                                                      std::to_string(t.steps(1)) + "]"));
  }
}

void checkScheduler(const pb::Scheduler& sched, Diagnostics& diags) {
  const pb::SchedulerParams& p = sched.params();
  const std::string& type = sched.type();
  if ((type == "WarmupDecayLR" || type == "WarmupCosineLR") && p.has_total_num_steps() &&
      p.total_num_steps() < p.warmup_num_steps()) {
    diags.error("scheduler.params.total_num_steps",
                expectedGot("at least warmup_num_steps = " + std::to_string(p.warmup_num_steps()),
                            std::to_string(p.total_num_steps())));
  }
  if ((type == "WarmupLR" || type == "WarmupDecayLR") && p.warmup_max_lr() < p.warmup_min_lr()) {
    diags.error(
        "scheduler.params.warmup_max_lr",
        expectedGot("at least warmup_min_lr = " + num(p.warmup_min_lr()), num(p.warmup_max_lr())));
  }
  if (type == "OneCycle" && p.cycle_max_lr() < p.cycle_min_lr()) {
    diags.error(
        "scheduler.params.cycle_max_lr",
        expectedGot("at least cycle_min_lr = " + num(p.cycle_min_lr()), num(p.cycle_max_lr())));
  }
  if (type == "OneCycle" && p.cycle_max_mom() < p.cycle_min_mom()) {
    diags.error(
        "scheduler.params.cycle_max_mom",
        expectedGot("at least cycle_min_mom = " + num(p.cycle_min_mom()), num(p.cycle_max_mom())));
  }
}

}  // namespace

void normalizeDeprecated(pb::DeepSpeedConfig& cfg) {
  pb::ZeroOptimization* zero = cfg.mutable_zero_optimization();
  if (zero->cpu_offload() && !zero->offload_optimizer().has_device()) {
    zero->mutable_offload_optimizer()->set_device("cpu");
  }
  if (zero->cpu_offload_params() && !zero->offload_param().has_device()) {
    zero->mutable_offload_param()->set_device("cpu");
  }
  if (zero->cpu_offload_use_pin_memory()) {
    if (!zero->offload_optimizer().has_pin_memory())
      zero->mutable_offload_optimizer()->set_pin_memory(true);
    if (!zero->offload_param().has_pin_memory())
      zero->mutable_offload_param()->set_pin_memory(true);
  }
}

void checkSemantics(const pb::DeepSpeedConfig& cfg, Diagnostics& diags) {
  checkPrecision(cfg, diags);
  checkOffload(cfg.zero_optimization(), diags);
  checkZshardCheckpoint(cfg.zshard().checkpoint(), diags);
  checkCommsLogger(cfg.comms_logger(), diags);
  checkTrace(cfg.zshard().trace(), diags);
  if (cfg.has_scheduler()) checkScheduler(cfg.scheduler(), diags);
}

}  // namespace zshard::config
