#pragma once

#include <string>
#include <vector>

namespace zshard::launcher {

// One host of a DeepSpeed hostfile and the GPU slots zlaunch may use there.
struct HostSlots {
  std::string host;
  std::vector<int> slots;
  bool operator==(const HostSlots& o) const { return host == o.host && slots == o.slots; }
};

// Parses DeepSpeed's hostfile format: one "HOST slots=N" per line, '#'
// comments and blank lines ignored. Throws UsageError naming the line.
std::vector<HostSlots> parseHostfile(const std::string& text);

// DeepSpeed's --include / --exclude: "HOST[:SLOT[,SLOT...]][@HOST...]".
// include keeps only what it names (a host without slots: all its slots);
// exclude removes it (a host without slots: the whole host). At most one
// of them may be non-empty. Unknown hosts or slots are a UsageError.
std::vector<HostSlots> filterHosts(const std::vector<HostSlots>& hosts, const std::string& include,
                                   const std::string& exclude);

struct LaunchOptions;

// With --hostfile: reads it, applies --include/--exclude, and finds this
// host in it (by its name or short name; no ssh: zlaunch runs on each
// host), setting the node count and rank, the worker count (its slots),
// node 0 as the master (port 29500 unless given), and CUDA_VISIBLE_DEVICES
// to the selected slots. Without --hostfile, nothing changes.
void applyHostfile(LaunchOptions& options);

}  // namespace zshard::launcher
