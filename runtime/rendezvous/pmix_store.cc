#include "runtime/rendezvous/pmix_store.h"

#include <thread>

#include "runtime/core/error.h"
#include "runtime/rendezvous/pmix_client.h"

namespace zshard::rendezvous {

namespace {

const std::string kPrefix = "zshard/";
constexpr Millis kPoll = std::chrono::milliseconds(20);

}  // namespace

PmixStore::PmixStore() {
  PmixClient::instance();
}

void PmixStore::set(const std::string& key, const std::string& value) {
  PmixClient::instance().putCommitFence(kPrefix + key, value);
}

bool PmixStore::lookup(const std::string& key, std::string& value) {
  PmixClient& client = PmixClient::instance();
  for (int r = 0; r < client.size(); ++r) {
    if (client.get(r, kPrefix + key, value)) return true;
  }
  return false;
}

std::string PmixStore::get(const std::string& key, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string value;
  while (!lookup(key, value)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      throw TimeoutError("PMIx store: key not published by any rank within " +
                         std::to_string(timeout.count()) + " ms: " + key);
    }
    std::this_thread::sleep_for(kPoll);
  }
  return value;
}

int64_t PmixStore::add(const std::string& key, int64_t) {
  throw Error("PMIx store: add(\"" + key +
              "\") has no PMIx equivalent; use a TcpStore for counters");
}

bool PmixStore::check(const std::vector<std::string>& keys) {
  std::string ignored;
  for (const std::string& k : keys) {
    if (!lookup(k, ignored)) return false;
  }
  return true;
}

void PmixStore::wait(const std::vector<std::string>& keys, Millis timeout) {
  for (const std::string& k : keys) get(k, timeout);
}

bool PmixStore::remove(const std::string& key) {
  throw Error("PMIx store: remove(\"" + key + "\") has no PMIx equivalent");
}

}  // namespace zshard::rendezvous
