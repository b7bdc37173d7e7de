#include "runtime/rendezvous/job_store.h"

#include <unistd.h>

#include <cstdlib>

#include "runtime/core/error.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/rendezvous/hmac.h"
#include "runtime/rendezvous/pmix_store.h"
#include "runtime/rendezvous/tcp_store.h"

namespace zshard::rendezvous {

namespace {

std::string env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr ? v : fallback;
}

std::string requiredToken(const char* source) {
  const std::string token = env("ZSHARD_JOB_TOKEN");
  if (token.empty()) {
    throw Error(
        std::string("ZSHARD_JOB_TOKEN: expected the job's secret token (any hard-to-guess string, "
                    "the same on every rank), got nothing; the store of a ") +
        source + " job needs it so that other users cannot join");
  }
  return token;
}

}  // namespace

JobStore::JobStore(const Topology& t) {
  if (t.source == "single") {
    client_ = std::make_unique<HashStore>();
  } else if (t.source == "pmix") {
    PmixStore pmix;
    std::string published;
    if (t.rank == 0) {
      const std::string token = newJobToken();
      server_ = std::make_unique<TcpStoreServer>(token, "0.0.0.0");
      char host[256] = "127.0.0.1";
      gethostname(host, sizeof host - 1);
      published = std::string(host) + " " + std::to_string(server_->port()) + " " + token;
    }
    pmix.set("jobstore/" + std::to_string(t.rank), published);
    const std::string info = pmix.get("jobstore/0");
    const size_t a = info.find(' '), b = info.rfind(' ');
    client_ = std::make_unique<TcpStore>(
        info.substr(0, a), std::stoi(info.substr(a + 1, b - a - 1)), info.substr(b + 1));
  } else {
    const std::string token =
        t.source == "zlaunch" ? requiredToken("zlaunch") : requiredToken(t.source.c_str());
    if (t.source != "zlaunch" && t.rank == 0) {
      server_ = std::make_unique<TcpStoreServer>(token, "0.0.0.0", t.master_port);
    }
    client_ = std::make_unique<TcpStore>(t.master_addr, t.master_port, token);
  }
  view_ = std::make_unique<PrefixStore>(*client_, env("ZSHARD_STORE_PREFIX", "job"));
}

JobStore::~JobStore() = default;

JobStore& processJobStore() {
  // Deliberately never destroyed: rank 0 may serve the store to peers that
  // are still finishing when this process's static destructors run.
  static JobStore* store = new JobStore(detectTopology());
  return *store;
}

}  // namespace zshard::rendezvous
