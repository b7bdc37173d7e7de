#pragma once

#include <string>
#include <vector>

namespace zshard::launcher {

// Whether workers get DeepSpeed's `--local_rank=N` argument, as DeepSpeed's
// launcher gives it. "on": always; "off": never (DeepSpeed's
// --no_local_rank); "auto": when the script's source names a --local_rank
// (or --local-rank) option or imports deepspeed (a script written for
// DeepSpeed's launcher, which always passes it), so a plain script whose
// argparse would reject it runs unchanged. A -m module has no file to
// read: "auto" passes nothing there. Throws UsageError for another
// mode.
bool passesLocalRankArg(const std::string& mode, const std::vector<std::string>& script,
                        const std::string& module);

// argv with `--local_rank=N` right after the script (or module) name, where
// DeepSpeed's launcher puts it; `script_index` is that name's position.
void insertLocalRankArg(std::vector<std::string>& argv, size_t script_index, int local_rank);

}  // namespace zshard::launcher
