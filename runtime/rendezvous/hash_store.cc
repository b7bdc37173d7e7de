#include "runtime/rendezvous/hash_store.h"

#include "runtime/core/error.h"

namespace zshard::rendezvous {

std::string joinKeys(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

void HashStore::set(const std::string& key, const std::string& value) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    data_[key] = value;
  }
  changed_.notify_all();
}

std::string HashStore::get(const std::string& key, Millis timeout) {
  wait({key}, timeout);
  std::lock_guard<std::mutex> lock(mutex_);
  return data_.at(key);
}

int64_t HashStore::add(const std::string& key, int64_t delta) {
  int64_t value;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = data_.find(key);
    value = (it == data_.end() ? 0 : std::stoll(it->second)) + delta;
    data_[key] = std::to_string(value);
  }
  changed_.notify_all();
  return value;
}

bool HashStore::allPresent(const std::vector<std::string>& keys) const {
  for (const std::string& k : keys) {
    if (data_.count(k) == 0) return false;
  }
  return true;
}

bool HashStore::check(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mutex_);
  return allPresent(keys);
}

void HashStore::wait(const std::vector<std::string>& keys, Millis timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!changed_.wait_for(lock, timeout, [&] { return allPresent(keys); })) {
    throw TimeoutError("store: keys not set within " + std::to_string(timeout.count()) +
                       " ms: " + joinKeys(keys));
  }
}

bool HashStore::remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  return data_.erase(key) > 0;
}

}  // namespace zshard::rendezvous
