#include "launcher/local_rank_arg.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "runtime/core/error.h"

namespace zshard::launcher {
namespace {

std::string scriptWith(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(LocalRankArg, AutoPassesItToScriptsThatParseIt) {
  const std::string parses =
      scriptWith("parses.py", "p.add_argument('--local_rank', type=int, default=-1)\n");
  const std::string dashed = scriptWith("dashed.py", "p.add_argument(\"--local-rank\")\n");
  const std::string plain =
      scriptWith("plain.py", "rank = os.environ['LOCAL_RANK']  # deepspeed\n");
  const std::string ds_script = scriptWith("ds.py", "import os\nimport deepspeed\n");
  const std::string ds_from = scriptWith("ds_from.py", "  from deepspeed.comm import comm\n");
  const std::string not_ds = scriptWith("not_ds.py", "import deepspeed_like\nimport zshard\n");
  EXPECT_TRUE(passesLocalRankArg("auto", {parses, "--lr", "1"}, ""));
  EXPECT_TRUE(passesLocalRankArg("auto", {dashed}, ""));
  EXPECT_FALSE(passesLocalRankArg("auto", {plain}, ""));
  EXPECT_TRUE(passesLocalRankArg("auto", {ds_script}, ""));
  EXPECT_TRUE(passesLocalRankArg("auto", {ds_from}, ""));
  EXPECT_FALSE(passesLocalRankArg("auto", {not_ds}, ""));
  EXPECT_FALSE(passesLocalRankArg("auto", {"/no/such/script.py"}, ""));
  EXPECT_FALSE(passesLocalRankArg("auto", {}, "pkg.train"));
  EXPECT_TRUE(passesLocalRankArg("on", {plain}, ""));
  EXPECT_TRUE(passesLocalRankArg("on", {}, "pkg.train"));
  EXPECT_FALSE(passesLocalRankArg("off", {parses}, ""));
  EXPECT_THROW(passesLocalRankArg("maybe", {parses}, ""), UsageError);
}

TEST(LocalRankArg, GoesRightAfterTheScriptAsDeepSpeedPutsIt) {
  std::vector<std::string> argv = {"python3", "-u", "train.py", "--lr", "3"};
  insertLocalRankArg(argv, 2, 3);
  EXPECT_EQ(argv,
            (std::vector<std::string>{"python3", "-u", "train.py", "--local_rank=3", "--lr", "3"}));
}

}  // namespace
}  // namespace zshard::launcher
