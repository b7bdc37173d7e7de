#include "launcher/local_rank_arg.h"

#include <fstream>
#include <iterator>
#include <regex>

#include "runtime/core/error.h"

namespace zshard::launcher {

namespace {

// A script written for DeepSpeed's launcher (it imports deepspeed, which
// that launcher always gives --local_rank) or one that parses the option.
bool expectsLocalRank(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  static const std::regex imports_deepspeed(R"((^|\n)[ \t]*(import|from)[ \t]+deepspeed\b)");
  return text.find("--local_rank") != std::string::npos ||
         text.find("--local-rank") != std::string::npos ||
         std::regex_search(text, imports_deepspeed);
}

}  // namespace

bool passesLocalRankArg(const std::string& mode, const std::vector<std::string>& script,
                        const std::string& module) {
  if (mode != "auto" && mode != "on" && mode != "off") {
    throw UsageError("--local-rank-arg: " + expectedGot("auto, on or off", "\"" + mode + "\""));
  }
  if (mode != "auto") return mode == "on";
  return module.empty() && !script.empty() && expectsLocalRank(script.front());
}

void insertLocalRankArg(std::vector<std::string>& argv, size_t script_index, int local_rank) {
  argv.insert(argv.begin() + static_cast<long>(script_index) + 1,
              "--local_rank=" + std::to_string(local_rank));
}

}  // namespace zshard::launcher
