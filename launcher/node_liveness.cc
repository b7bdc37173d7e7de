#include "launcher/node_liveness.h"

#include <algorithm>

namespace zshard::launcher {

using Clock = std::chrono::steady_clock;

NodeLiveness::NodeLiveness(rendezvous::Store& store, std::string prefix, int node_rank,
                           int node_count, std::chrono::milliseconds limit,
                           std::chrono::milliseconds period)
    : store_(store),
      prefix_(std::move(prefix)),
      node_rank_(node_rank),
      node_count_(node_count),
      limit_(limit),
      period_(period) {}

const std::vector<int>& NodeLiveness::poll() {
  const auto now = Clock::now();
  if (node_count_ <= 1 || now - last_beat_ < period_) return dead_;
  last_beat_ = now;
  store_.add(keyOf(node_rank_), 1);
  for (int node = 0; node < node_count_; ++node) {
    if (node == node_rank_ || std::find(dead_.begin(), dead_.end(), node) != dead_.end()) continue;
    const int64_t beats = store_.add(keyOf(node), 0);
    Seen& s = seen_[node];
    if (beats != s.beats) {
      s = {beats, now};
    } else if (now - s.since >= limit_) {
      dead_.push_back(node);
    }
  }
  std::sort(dead_.begin(), dead_.end());
  return dead_;
}

std::string NodeLiveness::describeDead() const {
  std::string nodes;
  for (int n : dead_) nodes += (nodes.empty() ? "" : ", ") + std::to_string(n);
  return "node(s) " + nodes + " stopped answering (no heartbeat for " +
         std::to_string(limit_.count() / 1000) +
         " s: the node's zlaunch was killed or hangs, or its machine went down)";
}

}  // namespace zshard::launcher
