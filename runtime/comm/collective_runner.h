#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/comm/communicator.h"

namespace zshard::rendezvous {
class Store;
}

namespace zshard::comm {

// What a collective is, for messages: "reduceScatter #17 (4096 x fp32)".
struct CollectiveInfo {
  const char* name = "";
  int64_t elements = 0;
  DType dtype = DType::kFloat32;
  int64_t sequence = 0;
  std::string describe() const;
};

// Runs a backend's collectives in order on one dedicated thread, numbering
// them, and turns failures and timeouts into errors that name the
// collective. A backend whose calls only queue work on a device (NCCL)
// issues each one as soon as it is enqueued, behind those still in flight,
// and the thread polls their completions in issue order between issues. On a timeout it reports
// "<rank> waits at <collective>" to the store under hang/<name>/<sequence>/ (each communicator
// numbers its own collectives, so its name keeps them apart), gives peers a moment to do the same,
// and says which ranks never arrived (behind, hung or dead) — what the launcher and the user need
// to find the culprit; the last report also goes to the store key hang/last, where zlaunch reads
// it. Shared by every backend.
class CollectiveRunner {
 public:
  // `store` may be null (no hang reports). Not owned; must outlive this.
  // `name` is the communicator's, unique among those sharing the store.
  CollectiveRunner(rendezvous::Store* store, std::string name, int rank, int size, Millis timeout);
  ~CollectiveRunner();

  // True once an issued collective has completed; throws (CommError,
  // TimeoutError) when it failed or ran past its time. Called on the comm
  // thread until it returns true or throws.
  using Poll = std::function<bool()>;

  // Queues `op` (run on the comm thread; complete when it returns). `op`
  // may throw; its error is rethrown from Work::wait, prefixed with the
  // collective.
  std::shared_ptr<Work> enqueue(const char* name, int64_t elements, DType dtype,
                                std::function<void()> op);
  // Queues `issue` (run on the comm thread), which starts the collective
  // and returns how to tell it has completed (null: complete already). The
  // next collective is issued without waiting for this one.
  std::shared_ptr<Work> enqueueIssued(const char* name, int64_t elements, DType dtype,
                                      std::function<Poll()> issue);
  Millis timeout() const { return timeout_; }

  // Builds the error for a collective that timed out or failed, reporting
  // the hang to the store first. Used by Work::wait and by the comm thread.
  std::string hangReport(const CollectiveInfo& info, const std::string& cause);
  void markReached(const CollectiveInfo& info);

 private:
  struct Task;
  struct InFlight;
  void loop();
  void start(const std::shared_ptr<Task>& task);
  bool retireCompleted();
  void fail(Task& task, const std::exception& e, bool timeout);
  std::string reachedDir(const CollectiveInfo& info) const;

  rendezvous::Store* store_;
  std::string name_;
  int rank_, size_;
  Millis timeout_;
  int64_t next_sequence_ = 0;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<Task>> queue_;
  std::deque<InFlight> in_flight_;  // issued, not complete (comm thread only)
  int64_t last_completion_ = 0;     // when the previous collective was seen done
  std::string broken_;              // first failure; later collectives fail with it
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace zshard::comm
