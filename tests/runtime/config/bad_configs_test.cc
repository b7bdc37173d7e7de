// Each bad config must be refused with an error on the right key path whose
// message contains the right words; nothing may crash or pass.
#include <gtest/gtest.h>

#include "runtime/config/load.h"

namespace zshard::config {
namespace {

struct BadConfig {
  const char* name;
  const char* json;
  const char* path;     // the key path the error must name ("" = document)
  const char* message;  // a substring of that error's message
  int world_size = 4;
};

std::ostream& operator<<(std::ostream& os, const BadConfig& c) {
  return os << c.name;
}

// A minimal valid prefix keeps each case about one problem.
#define OK_BATCH R"("train_micro_batch_size_per_gpu": 2, )"

const BadConfig kBadConfigs[] = {
    {"StageTooHigh", "{" OK_BATCH R"("zero_optimization": {"stage": 4}})",
     "zero_optimization.stage", "expected 0..3, got 4"},
    {"StageNegative", "{" OK_BATCH R"("zero_optimization": {"stage": -1}})",
     "zero_optimization.stage", "expected 0..3, got -1"},
    {"StageAsString", "{" OK_BATCH R"("zero_optimization": {"stage": "2"}})",
     "zero_optimization.stage", "expected an integer, got the string \"2\""},
    {"StageFractional", "{" OK_BATCH R"("zero_optimization": {"stage": 2.5}})",
     "zero_optimization.stage", "expected an integer, got the number 2.5"},
    {"StageAuto", "{" OK_BATCH R"("zero_optimization": {"stage": "auto"}})",
     "zero_optimization.stage", "\"auto\" is not accepted for this key"},
    {"MisspeltBlock", "{" OK_BATCH R"("zero_optimisation": {"stage": 2}})", "zero_optimisation",
     "unknown key; did you mean \"zero_optimization\"?"},
    {"MisspeltKey", "{" OK_BATCH R"("zero_optimization": {"stgae": 2}})", "zero_optimization.stgae",
     "unknown key; did you mean \"stage\"?"},
    {"KeyInWrongBlock", "{" OK_BATCH R"("stage": 2})", "stage",
     "unknown key; did you mean \"zero_optimization.stage\"?"},
    {"MisspeltTopLevel", R"({"train_batch_szie": 8, "train_batch_size": 8})", "train_batch_szie",
     "did you mean \"train_batch_size\"?"},
    {"UnknownKeyNoSuggestion", "{" OK_BATCH R"("frobnicate": 1})", "frobnicate", "unknown key"},
    {"MisspeltInInertBlock", "{" OK_BATCH R"("tensorboard": {"enable": true}})",
     "tensorboard.enable", "did you mean \"enabled\"?"},
    {"UnsupportedOptimizer", "{" OK_BATCH R"("optimizer": {"type": "Lion"}})", "optimizer.type",
     "expected one of Adam, AdamW, Lamb, SGD, got \"Lion\""},
    {"MisspeltOptimizer", "{" OK_BATCH R"("optimizer": {"type": "AdamX"}})", "optimizer.type",
     "did you mean \"Adam\"?"},
    {"OptimizerWithoutType", "{" OK_BATCH R"("optimizer": {"params": {"lr": 0.1}}})",
     "optimizer.type", "required"},
    {"BetasThree",
     "{" OK_BATCH R"("optimizer": {"type": "AdamW", "params": {"betas": [0.9, 0.99, 0.999]}}})",
     "optimizer.params.betas", "expected 2 elements, got 3"},
    {"BetaOne", "{" OK_BATCH R"("optimizer": {"type": "AdamW", "params": {"betas": [0.9, 1.0]}}})",
     "optimizer.params.betas[1]", "expected [0, 1), got 1.0"},
    {"BetasNotArray", "{" OK_BATCH R"("optimizer": {"type": "AdamW", "params": {"betas": 0.9}}})",
     "optimizer.params.betas", "expected an array of a number, got the number 0.9"},
    {"NegativeLr", "{" OK_BATCH R"("optimizer": {"type": "AdamW", "params": {"lr": -1e-3}}})",
     "optimizer.params.lr", "expected >= 0, got -1e-3"},
    {"ZeroEps", "{" OK_BATCH R"("optimizer": {"type": "AdamW", "params": {"eps": 0}}})",
     "optimizer.params.eps", "expected > 0, got 0"},
    {"MomentumForAdam",
     "{" OK_BATCH R"("optimizer": {"type": "AdamW", "params": {"momentum": 0.9}}})",
     "optimizer.params.momentum", "not a parameter of AdamW (it belongs to SGD)"},
    {"Amsgrad", "{" OK_BATCH R"("optimizer": {"type": "Adam", "params": {"amsgrad": true}}})",
     "optimizer.params.amsgrad", "not supported"},
    {"Fp16AndBf16", "{" OK_BATCH R"("fp16": {"enabled": true}, "bf16": {"enabled": true}})",
     "bf16.enabled", "enable at most one of fp16 and bf16"},
    {"EnabledAsString", "{" OK_BATCH R"("fp16": {"enabled": "yes"}})", "fp16.enabled",
     "expected true or false, got the string \"yes\""},
    {"ScalePowerTooHigh", "{" OK_BATCH R"("fp16": {"enabled": true, "initial_scale_power": 200}})",
     "fp16.initial_scale_power", "expected 0..127, got 200"},
    {"ScaleWindowZero", "{" OK_BATCH R"("fp16": {"enabled": true, "loss_scale_window": 0}})",
     "fp16.loss_scale_window", "expected >= 1, got 0"},
    {"HysteresisZero", "{" OK_BATCH R"("fp16": {"enabled": true, "hysteresis": 0}})",
     "fp16.hysteresis", "expected >= 1, got 0"},
    {"MinLossScaleZero", "{" OK_BATCH R"("fp16": {"enabled": true, "min_loss_scale": 0}})",
     "fp16.min_loss_scale", "expected > 0, got 0"},
    {"MinLossScaleAboveInitial",
     "{" OK_BATCH R"("fp16": {"enabled": true, "initial_scale_power": 4, "min_loss_scale": 64}})",
     "fp16.min_loss_scale", "at most the initial scale 2^4 = 16, got 64"},
    {"NegativeClipping", "{" OK_BATCH R"("gradient_clipping": -1})", "gradient_clipping",
     "expected >= 0, got -1"},
    {"InconsistentBatch",
     R"({"train_batch_size": 32, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2})",
     "train_batch_size", "4 x 2 x 2 = 16, got 32", 2},
    {"IndivisibleBatch", R"({"train_batch_size": 30, "train_micro_batch_size_per_gpu": 4})",
     "train_batch_size", "a multiple of train_micro_batch_size_per_gpu x world size 2 = 8, got 30",
     2},
    {"NoBatchSize", R"({"gradient_accumulation_steps": 4})", "train_batch_size", "required"},
    {"ZeroBatch", R"({"train_batch_size": 0})", "train_batch_size", "expected >= 1, got 0"},
    {"OffloadDeviceGpu",
     "{" OK_BATCH R"("zero_optimization": {"stage": 2, "offload_optimizer": {"device": "gpu"}}})",
     "zero_optimization.offload_optimizer.device", "expected one of none, cpu, nvme, got \"gpu\""},
    {"OffloadAtStage0",
     "{" OK_BATCH R"("zero_optimization": {"offload_optimizer": {"device": "cpu"}}})",
     "zero_optimization.offload_optimizer.device", "needs zero_optimization.stage 1, 2 or 3"},
    {"OffloadParamAtStage2",
     "{" OK_BATCH R"("zero_optimization": {"stage": 2, "offload_param": {"device": "cpu"}}})",
     "zero_optimization.offload_param.device", "needs zero_optimization.stage 3; stage is 2"},
    {"NvmeWithoutPath",
     "{" OK_BATCH R"("zero_optimization": {"stage": 3, "offload_optimizer": {"device": "nvme"}}})",
     "zero_optimization.offload_optimizer.nvme_path", "required when device is \"nvme\""},
    {"UnknownScheduler", "{" OK_BATCH R"("scheduler": {"type": "CosineLR"}})", "scheduler.type",
     "expected one of WarmupLR, WarmupDecayLR, WarmupCosineLR, OneCycle, LRRangeTest"},
    {"DecayWithoutTotalSteps",
     "{" OK_BATCH R"("scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": 10}}})",
     "scheduler.params.total_num_steps", "required for WarmupDecayLR"},
    {"DecayWithoutParams", "{" OK_BATCH R"("scheduler": {"type": "WarmupCosineLR"}})",
     "scheduler.params.total_num_steps", "required for WarmupCosineLR"},
    {"TotalBelowWarmup",
     "{" OK_BATCH
     R"("scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": 1000, "total_num_steps": 500}}})",
     "scheduler.params.total_num_steps", "expected at least warmup_num_steps = 1000, got 500"},
    {"WarmupTypeCosine",
     "{" OK_BATCH R"("scheduler": {"type": "WarmupLR", "params": {"warmup_type": "cosine"}}})",
     "scheduler.params.warmup_type", "expected one of log, linear, got \"cosine\""},
    {"OneCycleWithoutLrs", "{" OK_BATCH R"("scheduler": {"type": "OneCycle", "params": {}}})",
     "scheduler.params.cycle_min_lr", "required for OneCycle"},
    {"CycleParamForWarmup",
     "{" OK_BATCH R"("scheduler": {"type": "WarmupLR", "params": {"cycle_min_lr": 0.1}}})",
     "scheduler.params.cycle_min_lr", "not a parameter of WarmupLR (it belongs to OneCycle)"},
    {"BlockNotObject", "{" OK_BATCH R"("zero_optimization": true})", "zero_optimization",
     "expected an object, got true"},
    {"BucketAsString", "{" OK_BATCH R"("zero_optimization": {"reduce_bucket_size": "5e8"}})",
     "zero_optimization.reduce_bucket_size", "expected an integer, got the string \"5e8\""},
    {"BucketTooLarge", "{" OK_BATCH R"("zero_optimization": {"reduce_bucket_size": 1e30}})",
     "zero_optimization.reduce_bucket_size", "expected an integer within 64 bits, got 1e30"},
    {"Int32Overflow", "{" OK_BATCH R"("fp16": {"loss_scale_window": 3000000000}})",
     "fp16.loss_scale_window", "expected an integer within 32 bits, got 3000000000"},
    {"BothBf16Names", "{" OK_BATCH R"("bf16": {"enabled": true}, "bfloat16": {"enabled": true}})",
     "bfloat16", "given together with its newer name bf16"},
    {"CommTypeFp8", "{" OK_BATCH R"("communication_data_type": "fp8"})", "communication_data_type",
     "expected one of fp32, fp16, bf16, got \"fp8\""},
    {"StepsPerPrintZero", "{" OK_BATCH R"("steps_per_print": 0})", "steps_per_print",
     "expected >= 1, got 0"},
    {"TagValidation", "{" OK_BATCH R"("checkpoint": {"tag_validation": "Strict"}})",
     "checkpoint.tag_validation", "expected one of Ignore, Warn, Fail"},
    {"TopLevelArray", R"([{"train_batch_size": 8}])", "", "expected a JSON object at the top"},
    {"TrailingComma", "{\n  \"train_batch_size\": 8,\n}", "", "malformed JSON: line 3, column 1"},
    {"UnterminatedString", "{\n  \"train_batch_size\": 8,\n  \"fp16\": {\"enabled\n}", "",
     "malformed JSON: line 3, column 20"},
    {"DuplicateKey", "{\"train_batch_size\": 8,\n \"train_batch_size\": 16}", "",
     "malformed JSON: line 2, column 2: duplicate key \"train_batch_size\""},
    {"EmptyFile", "", "", "malformed JSON: line 1, column 1"},
    {"NaN", R"({"train_batch_size": 8, "gradient_clipping": NaN})", "",
     "malformed JSON: line 1, column 46"},
    {"WorldSizeZero", R"({"train_batch_size": 8})", "--world-size", "expected >= 1, got 0", 0},
};

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, IsRefusedNamingTheKey) {
  const BadConfig& c = GetParam();
  LoadOptions options;
  options.world_size = c.world_size;
  try {
    loadConfig(c.json, options);
    FAIL() << "accepted: " << c.json;
  } catch (const InvalidConfigError& e) {
    bool found = false;
    for (const Diagnostic& d : e.errors()) {
      found = found || (d.path == c.path && d.message.find(c.message) != std::string::npos);
    }
    EXPECT_TRUE(found) << "wanted " << c.path << ": ..." << c.message << "...\ngot:\n" << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, BadConfigTest, ::testing::ValuesIn(kBadConfigs),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(BadConfigs, EveryProblemIsReportedNotJustTheFirst) {
  try {
    loadConfig(R"({"train_batch_size": 8, "zero_optimization": {"stage": 9, "stgae": 1},
                   "optimizer": {"type": "Adamm"}, "fp16": {"enabled": 3}})");
    FAIL();
  } catch (const InvalidConfigError& e) {
    EXPECT_EQ(e.errors().size(), 4u) << e.what();
  }
}

}  // namespace
}  // namespace zshard::config
