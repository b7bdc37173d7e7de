// bench/store_soak: the store server against a connect storm and frames
// that announce 64 MiB without the token, on loopback: the process's RSS
// and thread count before, at most during and after, and whether the
// server still serves. Figures for RESULTS.md (issue 15); no peer.
//
//   bench_store_soak [connects=50000] [oversized=500]
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/rendezvous/socket.h"
#include "runtime/rendezvous/tcp_store.h"
#include "tests/support/proc_status.h"

namespace {

using zshard::testing::statusField;

using namespace zshard;
using namespace zshard::rendezvous;
using namespace std::chrono_literals;

struct Sample {
  int64_t rss_kb = 0, threads = 0;
};

Sample sample() {
  return {statusField("VmRSS"), statusField("Threads")};
}

void report(const char* what, const Sample& before, const Sample& most, const Sample& after,
            double seconds) {
  std::printf(
      "%-36s %8.1f s  RSS %6.1f -> max %6.1f -> %6.1f MiB  threads %3lld -> max %3lld -> %3lld\n",
      what, seconds, before.rss_kb / 1024.0, most.rss_kb / 1024.0, after.rss_kb / 1024.0,
      static_cast<long long>(before.threads), static_cast<long long>(most.threads),
      static_cast<long long>(after.threads));
}

void settle(TcpStoreServer& server) {
  for (int i = 0; i < 500 && server.openConnections() > 0; ++i) std::this_thread::sleep_for(10ms);
}

}  // namespace

int main(int argc, char** argv) {
  const int connects = argc > 1 ? std::atoi(argv[1]) : 50000;
  const int oversized = argc > 2 ? std::atoi(argv[2]) : 500;
  setLogSink([](LogLevel, const std::string&) {});  // the refusal lines are the server's business
  TcpStoreServer server("secret");
  const auto deadline = [] { return Clock::now() + 5s; };

  Sample before = sample(), most = before;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < connects; ++i) {
    Socket s = connectTcp("127.0.0.1", server.port(), deadline());
    if (i % 1000 == 0) {
      const Sample now = sample();
      most = {std::max(most.rss_kb, now.rss_kb), std::max(most.threads, now.threads)};
    }
  }
  settle(server);
  report(("connect/close x " + std::to_string(connects)).c_str(), before, most, sample(),
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  before = sample(), most = before;
  t0 = std::chrono::steady_clock::now();
  std::vector<Socket> held;
  const std::string header = {0, 0, 0, 4};  // 64 MiB announced
  for (int i = 0; i < oversized; ++i) {
    Socket s = connectTcp("127.0.0.1", server.port(), deadline());
    try {
      recvFrame(s, deadline());
      ::send(s.fd(), header.data(), header.size(), MSG_NOSIGNAL);
    } catch (const Error&) {
    }
    held.push_back(std::move(s));
    if (i % 50 == 0) {
      const Sample now = sample();
      most = {std::max(most.rss_kb, now.rss_kb), std::max(most.threads, now.threads)};
    }
  }
  settle(server);
  report(("64 MiB frames without the token x " + std::to_string(oversized)).c_str(), before, most,
         sample(), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  TcpStore client("127.0.0.1", server.port(), "secret", 5s);
  client.set("alive", "yes");
  const bool serving = client.get("alive", 1s) == "yes";
  std::printf("refused=%d open_connections=%d still_serving=%s\n", server.refusedClients(),
              server.openConnections(), serving ? "yes" : "no");
  return serving ? 0 : 1;
}
