#include "runtime/config/load.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace zshard::config {
namespace {

bool hasWarning(const LoadedConfig& loaded, const std::string& path, const std::string& text) {
  for (const Diagnostic& w : loaded.warnings) {
    if (w.path == path && w.message.find(text) != std::string::npos) return true;
  }
  return false;
}

// DeepSpeed's documented defaults (deepspeed.ai/docs/config-json and
// deepspeed/runtime/zero/config.py), written out independently of the schema.
TEST(LoadConfig, DefaultsAreDeepSpeeds) {
  const Config c = loadConfig(R"({"train_batch_size": 8, "optimizer": {"type": "Adam"}})").config;
  EXPECT_EQ(c.steps_per_print, 10);
  EXPECT_EQ(c.gradient_clipping, 0.0);
  EXPECT_FALSE(c.wall_clock_breakdown);
  EXPECT_FALSE(c.prescale_gradients);
  EXPECT_EQ(c.gradient_predivide_factor, 1.0);
  EXPECT_EQ(c.precision, Precision::kFp32);
  EXPECT_FALSE(c.communication_data_type.has_value());
  EXPECT_EQ(c.loss_scale.static_scale, 0.0);
  EXPECT_EQ(c.loss_scale.initial_scale_power, 16);
  EXPECT_EQ(c.loss_scale.scale_window, 1000);
  EXPECT_EQ(c.loss_scale.hysteresis, 2);
  EXPECT_FALSE(c.loss_scale.consecutive_hysteresis);
  EXPECT_EQ(c.loss_scale.min_scale, 1.0);
  EXPECT_EQ(c.optimizer.lr, 1e-3);
  EXPECT_EQ(c.optimizer.betas[0], 0.9);
  EXPECT_EQ(c.optimizer.betas[1], 0.999);
  EXPECT_EQ(c.optimizer.eps, 1e-8);
  EXPECT_EQ(c.optimizer.weight_decay, 0.0);
  EXPECT_TRUE(c.optimizer.adam_w_mode);
  EXPECT_TRUE(c.optimizer.bias_correction);
  EXPECT_EQ(c.scheduler.type, SchedulerType::kNone);
  const ZeroConfig& z = c.zero;
  EXPECT_EQ(z.stage, 0);
  EXPECT_FALSE(z.overlap_comm);
  EXPECT_EQ(z.reduce_bucket_size, 0);  // not given: sized by the model
  EXPECT_EQ(z.offload_optimizer, OffloadDevice::kNone);
  EXPECT_EQ(z.offload_param, OffloadDevice::kNone);
  EXPECT_TRUE(z.ignore_unused_parameters);
  EXPECT_EQ(c.checkpoint.tag_validation, "Warn");
  EXPECT_FALSE(c.fp16_auto_cast);
  EXPECT_FALSE(c.grad_accum_dtype.has_value());
  EXPECT_EQ(c.scheduler.last_batch_iteration, -1);
}

TEST(LoadConfig, SchedulerDefaultsAreDeepSpeeds) {
  Config c = loadConfig(R"({"train_batch_size": 8, "scheduler": {"type": "WarmupLR"}})").config;
  EXPECT_EQ(c.scheduler.warmup_min_lr, 0.0);
  EXPECT_EQ(c.scheduler.warmup_max_lr, 0.001);
  EXPECT_EQ(c.scheduler.warmup_num_steps, 1000);
  EXPECT_FALSE(c.scheduler.warmup_linear);
  EXPECT_EQ(c.scheduler.last_batch_iteration, -1);
  c = loadConfig(R"({"train_batch_size": 8, "scheduler": {"type": "OneCycle",
                     "params": {"cycle_min_lr": 1e-4, "cycle_max_lr": 1e-3}}})")
          .config;
  EXPECT_EQ(c.scheduler.cycle_first_step_size, 2000);
  EXPECT_EQ(c.scheduler.cycle_second_step_size, 2000);  // defaults to the first
  EXPECT_TRUE(c.scheduler.cycle_momentum);
  EXPECT_EQ(c.scheduler.cycle_min_mom, 0.8);
  EXPECT_EQ(c.scheduler.cycle_max_mom, 0.9);
}

// Every sample config is valid, or refused only for a feature that is not
// supported yet (tests/python/test_sample_configs.py runs each one through
// check-config and initialize()).
TEST(LoadConfig, EverySampleConfigIsValidOrNotSupportedYet) {
  int count = 0, refused = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ZSHARD_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".json") continue;
    ++count;
    LoadOptions options;
    options.world_size = 4;
    try {
      loadConfigFile(entry.path().string(), options);
    } catch (const InvalidConfigError& e) {
      ++refused;
      for (const Diagnostic& d : e.errors())
        EXPECT_NE(d.message.find("not supported yet"), std::string::npos) << d.str();
    }
  }
  EXPECT_GE(count, 6);
  EXPECT_EQ(refused, 0);
}

TEST(LoadConfig, AnUnresolvedAutoIsAnErrorAtInitialize) {
  LoadOptions options;
  options.world_size = 2;
  options.require_resolved = true;
  const std::string text = R"({"train_micro_batch_size_per_gpu": 4, "train_batch_size": "auto",
      "optimizer": {"type": "AdamW", "params": {"lr": "auto"}},
      "zero_optimization": {"stage": 2, "reduce_bucket_size": "auto"}})";
  try {
    loadConfig(text, options);
    ADD_FAILURE() << "unresolved auto accepted";
  } catch (const InvalidConfigError& e) {
    std::vector<std::string> paths;
    for (const Diagnostic& d : e.errors()) paths.push_back(d.path);
    // train_batch_size is inferred (4 x 1 x 2); the other two have no value.
    EXPECT_EQ(paths, (std::vector<std::string>{"optimizer.params.lr",
                                               "zero_optimization.reduce_bucket_size"}));
    EXPECT_NE(e.errors()[0].message.find("HuggingFace"), std::string::npos);
  }
  options.auto_values["optimizer.params.lr"] = 0.01;
  options.hidden_size = 64;
  const Config c = loadConfig(text, options).config;
  EXPECT_EQ(c.optimizer.lr, 0.01);
  EXPECT_EQ(c.zero.reduce_bucket_size, 64 * 64);
  EXPECT_EQ(c.batch.train_batch_size, 8);
  options.require_resolved = false;  // check-config: listed, not an error
  options.auto_values.clear();
  EXPECT_NO_THROW(loadConfig(text, options));
}

TEST(LoadConfig, ReadsSampleValues) {
  LoadOptions options;
  options.world_size = 8;
  const Config c = loadConfigFile(ZSHARD_SOURCE_DIR "/configs/zero2.json", options).config;
  EXPECT_EQ(c.zero.stage, 2);
  EXPECT_EQ(c.zero.reduce_bucket_size, 200000000);  // written as 2e8
  EXPECT_EQ(c.precision, Precision::kBf16);
  EXPECT_EQ(c.optimizer.type, OptimizerType::kAdamW);
  EXPECT_EQ(c.optimizer.betas[1], 0.95);
  EXPECT_EQ(c.scheduler.type, SchedulerType::kWarmupDecayLR);
  EXPECT_TRUE(c.scheduler.warmup_linear);
  EXPECT_EQ(c.batch.train_batch_size, 8 * 2 * 8);
}

TEST(LoadConfig, AcceptsExponentNotationForIntegers) {
  const Config c = loadConfig(R"({"train_batch_size": 1.6e1, "zero_optimization":
      {"stage": 2, "reduce_bucket_size": 5e8, "allgather_bucket_size": 2.5e7}})")
                       .config;
  EXPECT_EQ(c.batch.train_batch_size, 16);
  EXPECT_EQ(c.zero.reduce_bucket_size, 500000000);
}

TEST(LoadConfig, TypeNamesAreCaseInsensitive) {
  const Config c = loadConfig(R"({"train_batch_size": 8, "optimizer": {"type": "adamw"},
      "scheduler": {"type": "warmuplr"}})")
                       .config;
  EXPECT_EQ(c.optimizer.type, OptimizerType::kAdamW);
  EXPECT_EQ(c.scheduler.type, SchedulerType::kWarmupLR);
}

TEST(LoadConfig, AdamFollowsAdamWModeAndAdamWAlwaysDecouples) {
  const char* adam =
      R"({"train_batch_size": 8, "optimizer": {"type": "Adam", "params": {"adam_w_mode": false}}})";
  EXPECT_FALSE(loadConfig(adam).config.optimizer.adam_w_mode);
  const char* adamw = R"({"train_batch_size": 8, "optimizer": {"type": "AdamW"}})";
  EXPECT_TRUE(loadConfig(adamw).config.optimizer.adam_w_mode);
}

TEST(LoadConfig, NullMeansDefault) {
  const Config c = loadConfig(R"({"train_batch_size": 8, "communication_data_type": null,
      "zero_optimization": {"stage": null}})")
                       .config;
  EXPECT_FALSE(c.communication_data_type.has_value());
  EXPECT_EQ(c.zero.stage, 0);
}

TEST(LoadConfig, AutoKeysAreListedAndResolvedFromOptions) {
  LoadOptions options;
  options.world_size = 4;
  options.hidden_size = 1024;
  options.auto_values = {{"train_micro_batch_size_per_gpu", 8},
                         {"gradient_accumulation_steps", 2},
                         {"optimizer.params.lr", 5e-5},
                         {"bf16.enabled", 1}};
  const LoadedConfig loaded = loadConfigFile(ZSHARD_SOURCE_DIR "/configs/hf_auto.json", options);
  const Config& c = loaded.config;
  EXPECT_EQ(c.batch.train_batch_size, 8 * 2 * 4);
  EXPECT_EQ(c.optimizer.lr, 5e-5);
  EXPECT_EQ(c.precision, Precision::kBf16);
  EXPECT_EQ(c.zero.reduce_bucket_size, 1024 * 1024);  // HuggingFace: hidden^2
  EXPECT_EQ(c.optimizer.eps, 1e-8);                   // no value: DeepSpeed's default
  ASSERT_FALSE(c.auto_keys.empty());
  EXPECT_EQ(c.auto_keys.front(), "train_batch_size");
}

TEST(LoadConfig, OldNamesGoToTheirNewKeysWithAWarning) {
  const LoadedConfig loaded = loadConfig(R"({"train_batch_size": 8, "bfloat16": {"enabled": true},
      "zero_optimization": {"stage": 2, "stage3_gather_fp16_weights_on_model_save": true}})");
  EXPECT_EQ(loaded.config.precision, Precision::kBf16);
  EXPECT_TRUE(hasWarning(loaded, "bfloat16", "old name of bf16"));
  EXPECT_TRUE(hasWarning(loaded, "zero_optimization.stage3_gather_fp16_weights_on_model_save",
                         "stage3_gather_16bit_weights_on_model_save"));
}

TEST(LoadConfig, DeprecatedCpuOffloadMapsToOffloadOptimizer) {
  const LoadedConfig loaded = loadConfig(
      R"({"train_batch_size": 8, "zero_optimization": {"stage": 2, "cpu_offload": true,
          "cpu_offload_use_pin_memory": true}})");
  EXPECT_EQ(loaded.config.zero.offload_optimizer, OffloadDevice::kCpu);
  EXPECT_TRUE(loaded.config.zero.offload_optimizer_pin_memory);
  EXPECT_TRUE(hasWarning(loaded, "zero_optimization.cpu_offload", "offload_optimizer"));
  EXPECT_TRUE(hasWarning(loaded, "zero_optimization.cpu_offload_use_pin_memory", "pin_memory"));
}

TEST(LoadConfig, InertBlocksAreAcceptedWithAWarning) {
  const LoadedConfig loaded = loadConfig(R"({"train_batch_size": 8,
      "activation_checkpointing": {"partition_activations": true, "number_checkpoints": 4},
      "autotuning": {"enabled": false, "anything": {"goes": [1, 2]}}})");
  for (const char* block : {"activation_checkpointing", "autotuning"}) {
    EXPECT_TRUE(hasWarning(loaded, block, "not acted on")) << block;
  }
  EXPECT_EQ(loaded.warnings.size(), 2u);  // one per block, not one per key inside
}

TEST(LoadConfig, ObservingBlocksAreActedOn) {
  const LoadedConfig loaded = loadConfig(R"({"train_batch_size": 8,
      "tensorboard": {"enabled": true, "output_path": "/tmp/tb", "job_name": "x"},
      "csv_monitor": {"enabled": true},
      "wandb": {"enabled": false, "project": "p"},
      "flops_profiler": {"enabled": true, "profile_step": 3, "module_depth": 2, "top_modules": 4,
                         "output_file": "f.txt"},
      "comms_logger": {"enabled": true, "prof_all": false, "prof_ops": ["all_reduce"]},
      "zshard": {"trace": {"enabled": true, "output_path": "t", "steps": [2, 4]}}})");
  EXPECT_TRUE(loaded.warnings.empty()) << loaded.warnings[0].str();
  const ObserveConfig& o = loaded.config.observe;
  EXPECT_TRUE(o.tensorboard.enabled);
  EXPECT_EQ(o.tensorboard.output_path, "/tmp/tb");
  EXPECT_EQ(o.tensorboard.job_name, "x");
  EXPECT_TRUE(o.csv.enabled);
  EXPECT_EQ(o.csv.job_name, "DeepSpeedJobName");  // DeepSpeed's default
  EXPECT_EQ(o.wandb_project, "p");
  EXPECT_EQ(o.profile_step, 3);
  EXPECT_EQ(o.module_depth, 2);
  EXPECT_EQ(o.top_modules, 4);
  EXPECT_EQ(o.flops_output_file, "f.txt");
  EXPECT_FALSE(o.comms_prof_all);
  EXPECT_EQ(o.comms_prof_ops, std::vector<std::string>{"all_reduce"});
  EXPECT_TRUE(o.trace);
  EXPECT_EQ(o.trace_first, 2);
  EXPECT_EQ(o.trace_last, 4);
}

TEST(LoadConfig, ObservingBlocksRefuseWhatCannotWork) {
  auto errorOf = [](const std::string& json) {
    try {
      loadConfig(json);
    } catch (const InvalidConfigError& e) {
      return e.errors().at(0).str();
    }
    return std::string("no error");
  };
  EXPECT_NE(errorOf(R"({"train_batch_size": 8, "comms_logger": {"prof_ops": ["allreduce"]}})")
                .find("comms_logger.prof_ops[0]: expected one of all_reduce"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"train_batch_size": 8, "zshard": {"trace": {"enabled": true}}})")
                .find("zshard.trace.output_path: required with enabled"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"train_batch_size": 8, "zshard": {"trace": {"output_path": "t",
                                                                   "steps": [5, 2]}}})")
                .find("zshard.trace.steps: expected [first, last] with first <= last, got [5, 2]"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"train_batch_size": 8, "zshard": {"trace": {"steps": [1]}}})")
                .find("zshard.trace.steps"),
            std::string::npos);
  const LoadedConfig both = loadConfig(
      R"({"train_batch_size": 8, "comms_logger": {"enabled": true, "prof_ops": ["barrier"]}})");
  EXPECT_TRUE(hasWarning(both, "comms_logger.prof_ops", "ignored while prof_all is true"));
}

TEST(LoadConfig, WarnsAboutStage3KeysBelowStage3) {
  const LoadedConfig loaded = loadConfig(R"({"train_batch_size": 8, "zero_optimization":
      {"stage": 2, "stage3_max_live_parameters": 1e9}})");
  EXPECT_TRUE(hasWarning(loaded, "zero_optimization.stage3_max_live_parameters",
                         "only used from ZeRO stage 3 on; zero_optimization.stage is 2"));
}

TEST(LoadConfig, OptimizerSpecificParameters) {
  Config c = loadConfig(R"({"train_batch_size": 8, "optimizer": {"type": "SGD",
      "params": {"lr": 0.1, "momentum": 0.9, "nesterov": true}}})")
                 .config;
  EXPECT_EQ(c.optimizer.type, OptimizerType::kSgd);
  EXPECT_EQ(c.optimizer.momentum, 0.9);
  EXPECT_TRUE(c.optimizer.nesterov);
  c = loadConfig(R"({"train_batch_size": 8, "optimizer": {"type": "Lamb",
      "params": {"lr": 0.01, "max_coeff": 0.3, "min_coeff": 0.01}}})")
          .config;
  EXPECT_EQ(c.optimizer.type, OptimizerType::kLamb);
  EXPECT_EQ(c.optimizer.max_coeff, 0.3);
}

TEST(LoadConfig, UnreadableFileIsAConfigError) {
  try {
    loadConfigFile("/nonexistent/ds.json");
    FAIL() << "no error";
  } catch (const InvalidConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ds.json"), std::string::npos);
  }
  EXPECT_THROW(loadConfigFile(ZSHARD_SOURCE_DIR "/configs"), InvalidConfigError);  // a directory
}

}  // namespace

// Files that are no config are refused before they are read: a FIFO (which
// would wait for a writer), a device (/dev/zero never ends), a file over
// the size bound.
TEST(LoadConfigFile, WhatIsNotARegularFileOfSaneSizeIsRefusedUnread) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("zshard_cfg_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string fifo = dir + "/fifo.json", big = dir + "/big.json";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  { std::ofstream(big) << "{}"; }
  std::filesystem::resize_file(big, kMaxConfigBytes + 1);
  for (const auto& [path, words] :
       std::vector<std::pair<std::string, std::string>>{{fifo, "not a regular file"},
                                                        {"/dev/zero", "not a regular file"},
                                                        {big, "of at most 16 MiB"},
                                                        {dir + "/missing.json", "no such file"}}) {
    try {
      loadConfigFile(path);
      ADD_FAILURE() << path;
    } catch (const InvalidConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

// A hostile document costs bounded output: a megabyte-long unknown key gets
// no "did you mean" (and a shortened path), a million wrong-type elements
// give the first 20 errors and a line saying there may be more.
TEST(LoadConfig, HostileDocumentsGiveBoundedDiagnostics) {
  try {
    loadConfig("{\"" + std::string(1 << 20, 'x') + "\": 1}");
    ADD_FAILURE();
  } catch (const InvalidConfigError& e) {
    ASSERT_FALSE(e.errors().empty());
    EXPECT_LT(e.errors()[0].str().size(), 300u);
    EXPECT_EQ(e.errors()[0].message, "unknown key");  // no "did you mean"
  }
  std::string many = "{\"train_batch_size\": 8, \"comms_logger\": {\"prof_ops\": [";
  for (int i = 0; i < 1000000; ++i) many += i ? ",1" : "1";
  many += "]}}";
  try {
    loadConfig(many);
    ADD_FAILURE();
  } catch (const InvalidConfigError& e) {
    EXPECT_LE(e.errors().size(), Diagnostics::kMaxKept);
    EXPECT_NE(e.moreLine(), "");
  }
}

}  // namespace zshard::config

namespace zshard::config {

TEST(LoadConfig, ZshardsOwnBlockIsTypedAndItsDirRequired) {
  const Config c = loadConfig(R"({"train_batch_size": 8, "zshard": {
      "timeouts": {"collective": 2.5},
      "checkpoint": {"dir": "/ck", "save_on_signal": true, "resume": "latest", "keep_last": 3}}})")
                       .config;
  EXPECT_EQ(c.collective_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.checkpoint.dir, "/ck");
  EXPECT_TRUE(c.checkpoint.save_on_signal);
  EXPECT_TRUE(c.checkpoint.resume_latest);
  EXPECT_EQ(c.checkpoint.keep_last, 3);
  EXPECT_FALSE(loadConfig(R"({"train_batch_size": 8})").config.collective_timeout.has_value());
  try {
    loadConfig(R"({"train_batch_size": 8, "zshard": {"checkpoint": {"save_on_signal": true}}})");
    ADD_FAILURE() << "save_on_signal without a directory";
  } catch (const InvalidConfigError& e) {
    EXPECT_EQ(e.errors().at(0).path, "zshard.checkpoint.dir");
  }
}

}  // namespace zshard::config
