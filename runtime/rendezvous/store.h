#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace zshard::rendezvous {

using Millis = std::chrono::milliseconds;

inline constexpr Millis kDefaultStoreTimeout = std::chrono::minutes(5);

// A key-value store shared by the ranks of a job: rendezvous data (addresses,
// NCCL ids), counters, and hang reports. Values are byte strings.
// Implementations are thread-safe. Blocking calls throw TimeoutError naming
// the keys after `timeout`; a broken backend throws CommError.
class Store {
 public:
  virtual ~Store() = default;

  // Creates or overwrites `key`.
  virtual void set(const std::string& key, const std::string& value) = 0;
  // Returns the value of `key`, waiting until it is set.
  virtual std::string get(const std::string& key, Millis timeout = kDefaultStoreTimeout) = 0;
  // Adds `delta` to the integer counter `key` (0 when new); returns the sum.
  virtual int64_t add(const std::string& key, int64_t delta) = 0;
  // Whether every key exists now (never blocks).
  virtual bool check(const std::vector<std::string>& keys) = 0;
  // Waits until every key exists.
  virtual void wait(const std::vector<std::string>& keys,
                    Millis timeout = kDefaultStoreTimeout) = 0;
  // Removes `key` if present; true when it existed.
  virtual bool remove(const std::string& key) = 0;
};

// A view of another store in which every key is "<prefix>/<key>", so that
// restarts (generations), subgroups and users of one store do not collide.
// Does not own `base`, which must outlive it.
class PrefixStore : public Store {
 public:
  PrefixStore(Store& base, std::string prefix) : base_(base), prefix_(std::move(prefix) + "/") {}

  void set(const std::string& key, const std::string& value) override {
    base_.set(prefix_ + key, value);
  }
  std::string get(const std::string& key, Millis timeout) override {
    return base_.get(prefix_ + key, timeout);
  }
  int64_t add(const std::string& key, int64_t delta) override {
    return base_.add(prefix_ + key, delta);
  }
  bool check(const std::vector<std::string>& keys) override { return base_.check(prefixed(keys)); }
  void wait(const std::vector<std::string>& keys, Millis timeout) override {
    base_.wait(prefixed(keys), timeout);
  }
  bool remove(const std::string& key) override { return base_.remove(prefix_ + key); }
  using Store::get;
  using Store::wait;

 private:
  std::vector<std::string> prefixed(const std::vector<std::string>& keys) const {
    std::vector<std::string> out;
    for (const std::string& k : keys) out.push_back(prefix_ + k);
    return out;
  }

  Store& base_;
  std::string prefix_;
};

// "a, b, c" for messages.
std::string joinKeys(const std::vector<std::string>& keys);

}  // namespace zshard::rendezvous
