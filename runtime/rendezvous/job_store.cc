#include "runtime/rendezvous/job_store.h"

#include <unistd.h>

#include <cstdlib>
#include <mutex>

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

// Where peers reach a store this process serves: loopback when they are
// all on this machine, else this machine's name.
std::string servingHost(bool one_machine) {
  char host[256] = "127.0.0.1";
  if (!one_machine) gethostname(host, sizeof host - 1);
  return host;
}

// "host port token" of a store rank 0 serves.
std::string published(const std::string& host, const TcpStoreServer& server,
                      const std::string& token) {
  return host + " " + std::to_string(server.port()) + " " + token;
}

std::unique_ptr<Store> connect(const std::string& info) {
  const size_t a = info.find(' '), b = info.rfind(' ');
  if (a == std::string::npos || a == b) {
    throw Error("job store address: " + expectedGot("\"host port token\"", "\"" + info + "\""));
  }
  return std::make_unique<TcpStore>(info.substr(0, a), std::stoi(info.substr(a + 1, b - a - 1)),
                                    info.substr(b + 1));
}

std::string storePrefix() {
  return env("ZSHARD_STORE_PREFIX", "job");
}

}  // namespace

JobStore::JobStore(const std::string& info, std::unique_ptr<TcpStoreServer> server)
    : server_(std::move(server)), client_(connect(info)) {
  view_ = std::make_unique<PrefixStore>(*client_, storePrefix());
}

JobStore::JobStore(const Topology& t) {
  if (t.source == "single") {
    client_ = std::make_unique<HashStore>();
  } else if (t.source == "pmix") {
    PmixStore pmix;
    std::string mine;
    if (t.rank == 0) {
      const std::string token = newJobToken();
      const std::string host = servingHost(t.node_count == 1);
      server_ = std::make_unique<TcpStoreServer>(token, listenAddressFor(host));
      mine = published(host, *server_, token);
    }
    pmix.set("jobstore/" + std::to_string(t.rank), mine);
    client_ = connect(pmix.get("jobstore/0"));
  } else {
    const std::string token =
        t.source == "zlaunch" ? requiredToken("zlaunch") : requiredToken(t.source.c_str());
    if (t.source != "zlaunch" && t.rank == 0) {
      server_ =
          std::make_unique<TcpStoreServer>(token, listenAddressFor(t.master_addr), t.master_port);
    }
    client_ = std::make_unique<TcpStore>(t.master_addr, t.master_port, token);
  }
  view_ = std::make_unique<PrefixStore>(*client_, storePrefix());
}

JobStore::~JobStore() = default;

namespace {

// Deliberately never destroyed: rank 0 may serve the store to peers that
// are still finishing when this process's static destructors run.
JobStore*& processStore() {
  static JobStore* store = nullptr;
  return store;
}

std::unique_ptr<TcpStoreServer>& servedByThisProcess() {
  static std::unique_ptr<TcpStoreServer> server;
  return server;
}

void requireNoStoreYet(const char* what) {
  if (processStore() != nullptr) {
    throw Error(std::string(what) + ": expected to come before the job store's first use, but " +
                "this process already has one");
  }
}

}  // namespace

JobStore& processJobStore() {
  static std::once_flag made;
  std::call_once(made, [] {
    if (processStore() == nullptr) processStore() = new JobStore(detectTopology());
  });
  return *processStore();
}

std::string serveProcessJobStore(const std::string& given) {
  requireNoStoreYet("serveProcessJobStore");
  const std::string token = given.empty() ? newJobToken() : given;
  const std::string host = servingHost(false);
  servedByThisProcess() = std::make_unique<TcpStoreServer>(token, listenAddressFor(host));
  return published(host, *servedByThisProcess(), token);
}

void joinProcessJobStore(const std::string& info) {
  requireNoStoreYet("joinProcessJobStore");
  processStore() = new JobStore(info, std::move(servedByThisProcess()));
}

}  // namespace zshard::rendezvous
