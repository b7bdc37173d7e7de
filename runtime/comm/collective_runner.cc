#include "runtime/comm/collective_runner.h"

#include <algorithm>
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

// Completion polling backs off from kPollFirst to kPollMax: a short
// collective is seen at once, a long one costs no core spinning.
constexpr auto kPollFirst = std::chrono::microseconds(10);
constexpr auto kPollMax = std::chrono::microseconds(1000);

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
  std::function<Poll()> issue;
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

struct CollectiveRunner::InFlight {
  std::shared_ptr<Task> task;
  Poll poll;  // null: complete
  int64_t issued = 0;
};

std::shared_ptr<Work> CollectiveRunner::enqueue(const char* name, int64_t elements, DType dtype,
                                                std::function<void()> op) {
  return enqueueIssued(name, elements, dtype, [op = std::move(op)]() -> Poll {
    op();
    return nullptr;
  });
}

std::shared_ptr<Work> CollectiveRunner::enqueueIssued(const char* name, int64_t elements,
                                                      DType dtype, std::function<Poll()> issue) {
  auto task = std::make_shared<Task>();
  task->issue = std::move(issue);
  task->runner = this;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task->info = {name, elements, dtype, next_sequence_++};
    queue_.push_back(task);
  }
  ready_.notify_all();
  return task;
}

// Issues each collective as it comes; between issues polls the oldest in
// flight (collectives complete in issue order), sleeping with back-off
// while nothing new arrives. Stops once the queue is drained and every
// issued collective has completed or failed.
void CollectiveRunner::loop() {
  observe::Trace::get().nameThread("comm " + name_);
  auto pause = std::chrono::duration_cast<std::chrono::microseconds>(kPollFirst);
  while (true) {
    std::shared_ptr<Task> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (in_flight_.empty()) {
        ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
      } else {
        ready_.wait_for(lock, pause, [&] { return !queue_.empty(); });
      }
      if (!queue_.empty()) {
        task = queue_.front();
        queue_.pop_front();
      }
    }
    if (task != nullptr) start(task);
    if (retireCompleted() || task != nullptr) {
      pause = std::chrono::duration_cast<std::chrono::microseconds>(kPollFirst);
    } else {
      pause = std::min(2 * pause, std::chrono::duration_cast<std::chrono::microseconds>(kPollMax));
    }
  }
}

void CollectiveRunner::start(const std::shared_ptr<Task>& task) {
  std::string broken;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    broken = broken_;
  }
  if (!broken.empty()) {
    task->finish(task->info.describe() + " not run: the communicator is broken since: " + broken,
                 false);
    return;
  }
  try {
    const int64_t issued = observe::nowMicros();
    Poll poll = task->issue();
    in_flight_.push_back({task, std::move(poll), issued});
  } catch (const TimeoutError& e) {
    fail(*task, e, true);
  } catch (const std::exception& e) {
    fail(*task, e, false);
  }
}

// Completes the collectives at the front that are done; true if any.
bool CollectiveRunner::retireCompleted() {
  bool any = false;
  while (!in_flight_.empty()) {
    InFlight f = in_flight_.front();
    try {
      if (f.poll != nullptr && !f.poll()) break;
    } catch (const TimeoutError& e) {
      in_flight_.pop_front();
      fail(*f.task, e, true);
      return true;
    } catch (const std::exception& e) {
      in_flight_.pop_front();
      fail(*f.task, e, false);
      return true;
    }
    in_flight_.pop_front();
    const int64_t end = observe::nowMicros();
    // Issued back to back, collectives run one after another: one's time
    // starts when it was issued or when the one before it completed.
    const int64_t begin = std::max(f.issued, last_completion_);
    last_completion_ = end;
    const CollectiveInfo& i = f.task->info;
    observe::collectiveDone(i.name, i.elements * static_cast<int64_t>(dtypeSize(i.dtype)), size_,
                            i.sequence, name_, begin, end);
    f.task->finish("", false);
    any = true;
  }
  return any;
}

// The communicator is broken from here on: `task` fails with the error,
// and so does every collective issued after it.
void CollectiveRunner::fail(Task& task, const std::exception& e, bool timeout) {
  std::string message;
  if (timeout) {
    message = hangReport(task.info, e.what());
  } else {
    message = task.info.describe() + " failed on rank " + std::to_string(rank_) + ": " + e.what() +
              " (a peer died or the network failed)";
    // It did reach the collective: a peer's hang report must not count it
    // as behind (a timing-out peer may close the connection first).
    markReached(task.info);
    log(LogLevel::kError, message);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    broken_ = message;
  }
  task.finish(message, timeout);
  for (InFlight& f : in_flight_) {
    f.task->finish(
        f.task->info.describe() + " not completed: the communicator is broken since: " + message,
        false);
  }
  in_flight_.clear();
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
