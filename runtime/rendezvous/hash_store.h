#pragma once

#include <condition_variable>
#include <map>
#include <mutex>

#include "runtime/rendezvous/store.h"

namespace zshard::rendezvous {

// An in-process Store (threads as ranks in tests; the TcpStore server's
// table). Thread-safe.
class HashStore : public Store {
 public:
  void set(const std::string& key, const std::string& value) override;
  std::string get(const std::string& key, Millis timeout = kDefaultStoreTimeout) override;
  int64_t add(const std::string& key, int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, Millis timeout = kDefaultStoreTimeout) override;
  bool remove(const std::string& key) override;

 private:
  bool allPresent(const std::vector<std::string>& keys) const;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::string> data_;
};

}  // namespace zshard::rendezvous
