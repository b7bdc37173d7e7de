// What a config makes the runtime do (support.h), through loadConfig.
#include "runtime/config/support.h"

#include <gtest/gtest.h>

#include <tuple>

#include "runtime/config/load.h"
#include "runtime/config/summary.h"

namespace zshard::config {
namespace {

Config load(const std::string& body) {
  return loadConfig(R"({"train_batch_size": 8, )" + body + "}").config;
}

TEST(Support, GradientDtypeIsCommunicationThenAccumulationThenTraining) {
  EXPECT_EQ(gradientPrecision(load(R"("bf16": {"enabled": true})")), Precision::kBf16);
  EXPECT_EQ(
      gradientPrecision(load(R"("bf16": {"enabled": true}, "communication_data_type": "fp32")")),
      Precision::kFp32);
  EXPECT_EQ(gradientPrecision(
                load(R"("bf16": {"enabled": true}, "data_types": {"grad_accum_dtype": "fp32"})")),
            Precision::kFp32);
  const Config c = load(R"("bf16": {"enabled": true}, "communication_data_type": "fp32")");
  EXPECT_NE(summarize(c).find("precision: bf16; gradients accumulated and communicated in fp32"),
            std::string::npos)
      << summarize(c);
}

TEST(Support, TwoDifferentGradientDtypesAreRefused) {
  try {
    load(R"("bf16": {"enabled": true}, "communication_data_type": "bf16",
            "data_types": {"grad_accum_dtype": "fp32"})");
    ADD_FAILURE() << "accepted";
  } catch (const InvalidConfigError& e) {
    EXPECT_EQ(e.errors().at(0).path, "data_types.grad_accum_dtype");
    EXPECT_NE(e.errors()[0].message.find("not supported yet"), std::string::npos);
  }
}

TEST(Support, StageZeroAllReducesAndSaysSo) {
  const Config c = load(R"("zero_optimization": {"stage": 0})");
  EXPECT_NE(summarize(c).find("stage 0 (gradients all-reduced as in DeepSpeed"), std::string::npos);
}

TEST(Support, StageThreeNamesItsPrefetchSettingsWithDeepSpeedsDefaults) {
  const std::string three = summarize(load(R"("zero_optimization": {"stage": 3,
                                              "stage3_prefetch_bucket_size": 1000})"));
  for (const char* part : {"stage3_prefetch_bucket_size 1000 (elements gathered ahead",
                           "stage3_max_live_parameters 1000000000 (most elements gathered at once",
                           "stage3_max_reuse_distance 1000000000 (a run used again",
                           "stage3_param_persistence_threshold 100000 (smaller runs stay whole)"}) {
    EXPECT_NE(three.find(part), std::string::npos) << part << "\n" << three;
  }
}

TEST(Support, TheSummarySaysWhatRuns) {
  // Stage 1 reduces at the boundary: no overlap_comm claim; predivision is named.
  const std::string one = summarize(load(R"("zero_optimization": {"stage": 1, "overlap_comm": true},
                                            "gradient_predivide_factor": 4)"));
  EXPECT_EQ(one.find("overlap_comm"), std::string::npos) << one;
  EXPECT_NE(one.find("divided by 4 before the reduction"), std::string::npos) << one;
  const std::string two =
      summarize(load(R"("zero_optimization": {"stage": 2, "overlap_comm": true})"));
  EXPECT_NE(two.find("overlap_comm on"), std::string::npos) << two;
}

TEST(Support, LambMaxGradNormClipsLikeGradientClipping) {
  const std::string lamb = R"("optimizer": {"type": "Lamb", "params": {"max_grad_norm": 2.0}})";
  EXPECT_EQ(clippingThreshold(load(lamb)), 2.0);
  EXPECT_EQ(clippingThreshold(load(lamb + R"(, "gradient_clipping": 1.0)")), 1.0);
  EXPECT_EQ(clippingThreshold(load(R"("gradient_clipping": 3.0)")), 3.0);
  EXPECT_EQ(clippingThreshold(load(R"("optimizer": {"type": "SGD"})")), 0.0);
}

TEST(Support, OneCycleWithSgdWarnsThatMomentumIsNotCycled) {
  const LoadedConfig loaded = loadConfig(R"({"train_batch_size": 8, "optimizer": {"type": "SGD"},
      "scheduler": {"type": "OneCycle", "params": {"cycle_min_lr": 0.1, "cycle_max_lr": 1}}})");
  bool found = false;
  for (const Diagnostic& w : loaded.warnings)
    found = found || w.path == "scheduler.params.cycle_momentum";
  EXPECT_TRUE(found);
}

TEST(Support, OffloadIsTypedWithItsSettings) {
  const Config c = load(R"("zero_optimization": {"stage": 3, "sub_group_size": 1000,
      "offload_optimizer": {"device": "cpu", "pin_memory": true, "ratio": 0.25},
      "offload_param": {"device": "cpu"}})");
  EXPECT_EQ(c.zero.offload_optimizer, OffloadDevice::kCpu);
  EXPECT_EQ(c.zero.offload_param, OffloadDevice::kCpu);
  EXPECT_TRUE(c.zero.offload_optimizer_pin_memory);
  EXPECT_FALSE(c.zero.offload_param_pin_memory);
  EXPECT_EQ(c.zero.offload_ratio, 0.25);
  EXPECT_EQ(c.zero.sub_group_size, 1000);
  EXPECT_FALSE(load(R"("zero_optimization": {"stage": 2})").zero.sub_group_size.has_value());
}

TEST(Support, OffloadThatCannotRunIsRefusedNamingTheKey) {
  for (
      const auto& [body, path, words] :
      std::vector<std::tuple<std::string, std::string, std::string>>{
          {R"("zero_optimization": {"stage": 3, "offload_param": {"device": "cpu"}})",
           "zero_optimization.offload_param.device", "needs offload_optimizer"},
          {R"("zero_optimization": {"stage": 2, "offload_optimizer": {"device": "nvme", "nvme_path": "/x"}})",
           "zero_optimization.offload_optimizer.device", "NVMe offload"},
          {R"("zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"},
               "offload_param": {"device": "nvme", "nvme_path": "/x"}})",
           "zero_optimization.offload_param.device", "NVMe offload"},
          {R"("optimizer": {"type": "Lamb"}, "zero_optimization": {"stage": 2,
               "offload_optimizer": {"device": "cpu", "ratio": 0.5}})",
           "zero_optimization.offload_optimizer.ratio", "Lamb"}}) {
    try {
      load(body);
      ADD_FAILURE() << body;
    } catch (const InvalidConfigError& e) {
      EXPECT_EQ(e.errors().at(0).path, path) << body;
      EXPECT_NE(e.errors()[0].message.find(words), std::string::npos) << e.errors()[0].message;
    }
  }
}

TEST(Support, OffloadSettingsThatChangeNothingAreWarnedAbout) {
  for (const auto& [body, path] : std::vector<std::pair<std::string, std::string>>{
           {R"("zero_optimization": {"stage": 2, "offload_optimizer": {"ratio": 0.5}})",
            "zero_optimization.offload_optimizer"},
           {R"("zero_optimization": {"stage": 2, "sub_group_size": 100})",
            "zero_optimization.sub_group_size"},
           {R"("zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu",
               "buffer_count": 8}})",
            "zero_optimization.offload_optimizer.buffer_count"}}) {
    const LoadedConfig loaded = loadConfig(R"({"train_batch_size": 8, )" + body + "}");
    bool found = false;
    for (const Diagnostic& w : loaded.warnings) found = found || w.path == path;
    EXPECT_TRUE(found) << body;
  }
}

}  // namespace
}  // namespace zshard::config
