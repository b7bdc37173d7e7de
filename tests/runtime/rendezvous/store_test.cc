// The Store contract, run against every implementation, plus TcpStore's
// authentication and a multi-process rendezvous over a real TCP server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/rendezvous/hash_store.h"
#include "runtime/rendezvous/tcp_store.h"
#include "tests/support/store_server.h"

namespace zshard::rendezvous {
namespace {

using namespace std::chrono_literals;

// Each backend: a shared server (or none) and a way to make clients.
struct Backend {
  std::string name;
  std::function<std::function<std::unique_ptr<Store>()>()> make;
};

std::ostream& operator<<(std::ostream& os, const Backend& b) {
  return os << b.name;
}

Backend hashBackend() {
  return {"Hash", [] {
            auto shared = std::make_shared<HashStore>();
            return std::function<std::unique_ptr<Store>()>([shared] {
              return std::unique_ptr<Store>(std::make_unique<PrefixStore>(*shared, "t"));
            });
          }};
}

Backend tcpBackend() {
  return {"Tcp", [] {
            auto server = std::make_shared<TcpStoreServer>("secret", "127.0.0.1");
            return std::function<std::unique_ptr<Store>()>([server] {
              return std::unique_ptr<Store>(
                  std::make_unique<TcpStore>("127.0.0.1", server->port(), "secret", 5s));
            });
          }};
}

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { client_ = GetParam().make(); }
  std::function<std::unique_ptr<Store>()> client_;
};

TEST_P(StoreContract, SetGetOverwrite) {
  auto s = client_();
  s->set("a", std::string("x\0y", 3));
  EXPECT_EQ(s->get("a", 1s), std::string("x\0y", 3));
  s->set("a", "z");
  EXPECT_EQ(s->get("a", 1s), "z");
  EXPECT_TRUE(s->check({"a"}));
  EXPECT_FALSE(s->check({"a", "b"}));
  EXPECT_TRUE(s->remove("a"));
  EXPECT_FALSE(s->remove("a"));
  EXPECT_FALSE(s->check({"a"}));
}

TEST_P(StoreContract, GetTimesOutNamingTheKey) {
  auto s = client_();
  const auto t0 = Clock::now();
  try {
    s->get("never", 200ms);
    FAIL();
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("never"), std::string::npos) << e.what();
  }
  EXPECT_GE(Clock::now() - t0, 190ms);
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_THROW(s->wait({"x", "y"}, 100ms), TimeoutError);
}

TEST_P(StoreContract, GetWaitsForAnotherClient) {
  auto reader = client_();
  std::thread writer([this] {
    auto w = client_();
    std::this_thread::sleep_for(100ms);
    w->set("late", "v");
  });
  EXPECT_EQ(reader->get("late", 5s), "v");
  writer.join();
}

TEST_P(StoreContract, AddIsAtomicAcrossClients) {
  constexpr int kThreads = 8, kAdds = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      auto s = client_();
      for (int i = 0; i < kAdds; ++i) s->add("counter", 1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(client_()->add("counter", 0), kThreads * kAdds);
  EXPECT_EQ(client_()->add("other", -3), -3);
}

TEST_P(StoreContract, PrefixesIsolateKeys) {
  auto s = client_();
  PrefixStore gen0(*s, "gen0"), gen1(*s, "gen1");
  gen0.set("k", "0");
  gen1.set("k", "1");
  EXPECT_EQ(gen0.get("k", 1s), "0");
  EXPECT_EQ(gen1.get("k", 1s), "1");
  EXPECT_FALSE(s->check({"k"}));
  EXPECT_TRUE(s->check({"gen0/k"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values(hashBackend(), tcpBackend()),
                         [](const auto& info) { return info.param.name; });

TEST(TcpStore, ClientWithWrongTokenIsRefusedAndLogged) {
  std::vector<std::string> lines;
  std::mutex m;
  setLogSink([&](LogLevel, const std::string& line) {
    std::lock_guard<std::mutex> lock(m);
    lines.push_back(line);
  });
  TcpStoreServer server("right", "127.0.0.1");
  try {
    TcpStore intruder("127.0.0.1", server.port(), "wrong", 2s);
    FAIL() << "accepted a wrong token";
  } catch (const AuthError& e) {
    EXPECT_NE(std::string(e.what()).find("wrong job token"), std::string::npos) << e.what();
  }
  for (int i = 0; i < 100 && server.refusedClients() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server.refusedClients(), 1);
  setLogSink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("refused client 127.0.0.1:"), std::string::npos) << lines[0];
  TcpStore friendly("127.0.0.1", server.port(), "right", 2s);  // the server still serves
  friendly.set("k", "v");
  EXPECT_EQ(friendly.get("k", 1s), "v");
}

TEST(TcpStore, NoServerIsATimeoutNamingTheAddress) {
  const int port = [] {
    Socket s = listenTcp("127.0.0.1", 0);
    return boundPort(s);
  }();  // closed again: nothing listens there
  try {
    TcpStore("127.0.0.1", port, "t", 300ms);
    FAIL();
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos);
  }
}

// Real processes: 4 forked ranks meet through a server in a fifth.
TEST(TcpStore, ForkedRanksRendezvous) {
  auto [server, port] = testing::forkTcpStoreServer("job-token");
  constexpr int kRanks = 4;
  const std::vector<int> codes = testing::runRanks(
      kRanks,
      [port = port](int r) {
        TcpStore store("127.0.0.1", port, "job-token", 5s);
        store.set("rank/" + std::to_string(r), "addr" + std::to_string(r));
        for (int p = 0; p < kRanks; ++p) {
          if (store.get("rank/" + std::to_string(p), 10s) != "addr" + std::to_string(p)) return 2;
        }
        return store.add("arrived", 1) <= kRanks ? 0 : 3;
      },
      30s);
  EXPECT_EQ(codes, std::vector<int>(kRanks, 0));
  TcpStore check("127.0.0.1", port, "job-token", 1s);
  EXPECT_EQ(check.add("arrived", 0), kRanks);
}

}  // namespace
}  // namespace zshard::rendezvous
