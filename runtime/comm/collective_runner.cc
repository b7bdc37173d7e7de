#include "runtime/comm/collective_runner.h"

#include <chrono>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/observe/comms_log.h"
#include "runtime/observe/trace.h"
#include "runtime/rendezvous/store.h"

namespace zshard::comm {

namespace {

// How long a timed-out rank waits for peers' hang reports before naming them.
constexpr Millis kReportGrace = std::chrono::milliseconds(1000);

}  // namespace

std::vector<int64_t> evenCounts(int64_t count, int ranks) {
  std::vector<int64_t> counts(ranks, count / ranks);
  for (int64_t r = 0; r < count % ranks; ++r) ++counts[r];
  return counts;
}

std::string CollectiveInfo::describe() const {
  return std::string(name) + " #" + std::to_string(sequence) + " (" + std::to_string(elements) +
         " x " + dtypeName(dtype) + ")";
}

struct CollectiveRunner::Task : public Work {
  CollectiveInfo info;
  std::function<void()> op;
  CollectiveRunner* runner = nullptr;
  mutable std::mutex mutex;
  std::condition_variable finished;
  bool complete = false;
  std::string error;
  bool timed_out = false;

  void wait(Millis timeout) override {
    std::unique_lock<std::mutex> lock(mutex);
    if (!complete) waitTimed(lock, timeout);
    if (!error.empty()) {
      if (timed_out) throw TimeoutError(error);
      throw CommError(error);
    }
  }

  // Blocks until complete; the time counts as exposed communication (and
  // is a "wait" slice on the caller's track when tracing).
  void waitTimed(std::unique_lock<std::mutex>& lock, Millis timeout) {
    const int64_t begin = observe::nowMicros();
    const bool ok = finished.wait_for(lock, timeout, [&] { return complete; });
    const int64_t end = observe::nowMicros();
    observe::addWaited(end - begin);
    observe::Trace& trace = observe::Trace::get();
    if (trace.recording()) trace.slice("wait " + info.describe(), "wait", begin, end);
    if (!ok) {
      lock.unlock();
      throw TimeoutError(runner->hangReport(
          info, "did not complete within " + std::to_string(timeout.count()) + " ms"));
    }
  }

  bool done() const override {
    std::lock_guard<std::mutex> lock(mutex);
    return complete;
  }

  void finish(std::string err, bool timeout) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      complete = true;
      error = std::move(err);
      timed_out = timeout;
    }
    finished.notify_all();
  }
};

CollectiveRunner::CollectiveRunner(rendezvous::Store* store, std::string name, int rank, int size,
                                   Millis timeout)
    : store_(store),
      name_(std::move(name)),
      rank_(rank),
      size_(size),
      timeout_(timeout),
      thread_([this] { loop(); }) {}

CollectiveRunner::~CollectiveRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  thread_.join();
}

std::shared_ptr<Work> CollectiveRunner::enqueue(const char* name, int64_t elements, DType dtype,
                                                std::function<void()> op) {
  auto task = std::make_shared<Task>();
  task->op = std::move(op);
  task->runner = this;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task->info = {name, elements, dtype, next_sequence_++};
    queue_.push_back(task);
  }
  ready_.notify_all();
  return task;
}

void CollectiveRunner::loop() {
  observe::Trace::get().nameThread("comm " + name_);
  while (true) {
    std::shared_ptr<Task> task;
    std::string broken;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = queue_.front();
      queue_.pop_front();
      broken = broken_;
    }
    if (!broken.empty()) {
      task->finish(task->info.describe() + " not run: the communicator is broken since: " + broken,
                   false);
      continue;
    }
    try {
      const int64_t begin = observe::nowMicros();
      task->op();
      const CollectiveInfo& i = task->info;
      observe::collectiveDone(i.name, i.elements * static_cast<int64_t>(dtypeSize(i.dtype)), size_,
                              i.sequence, name_, begin, observe::nowMicros());
      task->finish("", false);
    } catch (const TimeoutError& e) {
      const std::string report = hangReport(task->info, e.what());
      std::lock_guard<std::mutex> lock(mutex_);
      broken_ = report;
      task->finish(report, true);
    } catch (const std::exception& e) {
      const std::string message = task->info.describe() + " failed on rank " +
                                  std::to_string(rank_) + ": " + e.what() +
                                  " (a peer died or the network failed)";
      // It did reach the collective: a peer's hang report must not count it
      // as behind (a timing-out peer may close the connection first).
      markReached(task->info);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        broken_ = message;
      }
      log(LogLevel::kError, message);
      task->finish(message, false);
    }
  }
}

std::string CollectiveRunner::reachedDir(const CollectiveInfo& info) const {
  return "hang/" + name_ + "/" + std::to_string(info.sequence) + "/";
}

// Records in the store that this rank reached collective `info` (what
// hang reports count). Best effort.
void CollectiveRunner::markReached(const CollectiveInfo& info) {
  if (store_ == nullptr) return;
  try {
    store_->set(reachedDir(info) + std::to_string(rank_), info.describe());
  } catch (const Error&) {
  }
}

std::string CollectiveRunner::hangReport(const CollectiveInfo& info, const std::string& cause) {
  std::string message = info.describe() + " (communicator " + name_ + ") timed out on rank " +
                        std::to_string(rank_) + ": " + cause;
  if (store_ != nullptr) {
    const std::string dir = reachedDir(info);
    try {
      markReached(info);
      // A first report at once, completed below once peers had their say.
      if (!store_->check({"hang/last"}))
        store_->set("hang/last", message + "; waiting for the other ranks' reports");
      std::this_thread::sleep_for(kReportGrace);
      std::string absent;
      for (int r = 0; r < size_; ++r) {
        if (!store_->check({dir + std::to_string(r)}))
          absent += (absent.empty() ? "" : ", ") + std::to_string(r);
      }
      message += absent.empty() ? "; every rank reached it (a transport problem)"
                                : "; ranks that never reached it (behind, hung or dead): " + absent;
      store_->set("hang/last", message);  // for the launcher's root-cause report
    } catch (const Error& e) {
      message += std::string("; could not report to the store: ") + e.what();
    }
  }
  log(LogLevel::kError, message);
  return message;
}

}  // namespace zshard::comm
