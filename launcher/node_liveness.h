#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "runtime/rendezvous/store.h"

namespace zshard::launcher {

// Whether the job's other controllers are still there: each controller
// adds to its own heartbeat counter in the job store every `period` and
// watches the others' counters; one that has not moved for `limit` is dead
// (its controller was killed, hangs, or its machine went down). Polled from
// the controller's thread (not thread-safe); a store that fails is the
// caller's (it throws).
class NodeLiveness {
 public:
  NodeLiveness(rendezvous::Store& store, std::string prefix, int node_rank, int node_count,
               std::chrono::milliseconds limit,
               std::chrono::milliseconds period = std::chrono::milliseconds(500));

  // Beats (at most once per period) and returns the nodes found dead so far
  // (once dead, always dead), in order.
  const std::vector<int>& poll();
  // "node 1 (no heartbeat for 6 s: its controller was killed, ...)".
  std::string describeDead() const;

 private:
  struct Seen {
    int64_t beats = -1;
    std::chrono::steady_clock::time_point since;
  };
  std::string keyOf(int node) const { return prefix_ + "/alive/" + std::to_string(node); }

  rendezvous::Store& store_;
  std::string prefix_;
  int node_rank_, node_count_;
  std::chrono::milliseconds limit_, period_;
  std::chrono::steady_clock::time_point last_beat_{};
  std::map<int, Seen> seen_;
  std::vector<int> dead_;
};

}  // namespace zshard::launcher
