// The store server as an adversary and an unlucky client meet it: storms
// of connections, frames announcing 64 MiB, proofs that never come,
// authenticated requests that are malformed. Each leaves the server
// bounded (threads, memory) and serving; refusals are reported in one line
// per interval, not one each.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "proto/control.pb.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/rendezvous/hmac.h"
#include "runtime/rendezvous/socket.h"
#include "runtime/rendezvous/tcp_store.h"
#include "tests/support/proc_status.h"

namespace zshard::rendezvous {
namespace {

using zshard::testing::statusField;

using namespace std::chrono_literals;

Clock::time_point soon() {
  return Clock::now() + 5s;
}

// Log lines captured for the test's lifetime.
class CapturedLog {
 public:
  CapturedLog() {
    setLogSink([this](LogLevel level, const std::string& line) {
      if (level < LogLevel::kWarning) return;
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(line);
    });
  }
  ~CapturedLog() { setLogSink(nullptr); }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

// The server still serves a client that knows the token.
void expectServing(TcpStoreServer& server, const std::string& token) {
  TcpStore client("127.0.0.1", server.port(), token, 5s);
  client.set("alive", "yes");
  EXPECT_EQ(client.get("alive", 1s), "yes");
}

// A client that proves the token by hand, then sends what it likes.
Socket authenticatedSocket(int port, const std::string& token) {
  Socket s = connectTcp("127.0.0.1", port, soon());
  pb::Challenge challenge;
  EXPECT_TRUE(challenge.ParseFromString(recvFrame(s, soon())));
  pb::Proof proof;
  proof.set_hmac(hmacSha256(token, "client" + challenge.nonce()));
  proof.set_nonce(randomBytes(32));
  sendFrame(s, proof.SerializeAsString(), soon());
  pb::Proof reply;
  EXPECT_TRUE(reply.ParseFromString(recvFrame(s, soon())));
  return s;
}

// Whether the server closed `s` (a read returns end of stream) within 5 s.
bool closedByServer(const Socket& s) {
  try {
    recvFrame(s, soon());
  } catch (const TimeoutError&) {
    return false;
  } catch (const CommError&) {
    return true;
  }
  return false;
}

void sendRaw(const Socket& s, const std::string& bytes) {
  ASSERT_EQ(::send(s.fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

std::string header(uint32_t n) {
  return {char(n & 255), char((n >> 8) & 255), char((n >> 16) & 255), char(n >> 24)};
}

TEST(TcpStoreServer, AConnectStormLeavesThreadsBoundedAndTheServerServing) {
  CapturedLog log;
  TcpStoreServer server("secret");
  const int64_t threads_before = statusField("Threads");
  int64_t most_threads = 0;
  constexpr int kStorm = 5000;
  for (int i = 0; i < kStorm; ++i) {
    Socket s = connectTcp("127.0.0.1", server.port(), soon());
    if (i % 500 == 0) most_threads = std::max(most_threads, statusField("Threads"));
  }
  // The server drains its accept queue behind the storm.
  for (int i = 0; i < 250 && server.refusedClients() < kStorm; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  for (int i = 0; i < 100 && server.openConnections() > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(server.refusedClients(), kStorm);
  EXPECT_EQ(server.openConnections(), 0);
  EXPECT_LE(most_threads, threads_before + TcpStoreLimits{}.max_handshakes);
  EXPECT_LE(statusField("Threads"), threads_before + 1);
  expectServing(server, "secret");
  // One line at the first refusal; the rest are counted for the next report.
  EXPECT_LE(log.lines().size(), 2u);
  ASSERT_FALSE(log.lines().empty());
  EXPECT_NE(log.lines()[0].find("refused client 127.0.0.1:"), std::string::npos) << log.lines()[0];
}

TEST(TcpStoreServer, OversizedUnauthenticatedFramesAllocateNothing) {
  CapturedLog log;
  TcpStoreServer server("secret");
  const int64_t rss_before = statusField("VmRSS");  // kB
  std::vector<Socket> held;
  for (int i = 0; i < 500; ++i) {
    Socket s = connectTcp("127.0.0.1", server.port(), soon());
    try {
      recvFrame(s, soon());  // the challenge
      sendRaw(s, header(uint32_t{64} << 20));
    } catch (const Error&) {
      // Over the handshake limit: closed at once, as it should be.
    }
    held.push_back(std::move(s));
  }
  for (int i = 0; i < 250 && server.openConnections() > 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(server.openConnections(), 0);  // every one refused and closed
  EXPECT_LT(statusField("VmRSS") - rss_before, 20 * 1024) << "kB grown";
  EXPECT_GE(server.refusedClients(), 500);
  expectServing(server, "secret");
}

TEST(TcpStoreServer, AProofThatNeverComesIsDroppedAtItsDeadline) {
  CapturedLog log;
  TcpStoreLimits limits;
  limits.handshake_timeout = 200ms;
  TcpStoreServer server("secret", "127.0.0.1", 0, limits);
  Socket silent = connectTcp("127.0.0.1", server.port(), soon());
  recvFrame(silent, soon());  // the challenge; no proof follows
  const auto t0 = Clock::now();
  EXPECT_TRUE(closedByServer(silent));
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(server.refusedClients(), 1);
  expectServing(server, "secret");
}

// A token holder's malformed requests close its own connection only: a
// request without a key (once an out_of_range that aborted zlaunch), bytes
// that are no request, a frame over the request limit.
TEST(TcpStoreServer, MalformedAuthenticatedRequestsCloseOnlyThatConnection) {
  CapturedLog log;
  TcpStoreLimits limits;
  limits.max_request_bytes = 4096;
  TcpStoreServer server("secret", "127.0.0.1", 0, limits);
  TcpStore bystander("127.0.0.1", server.port(), "secret", 5s);
  for (auto op : {pb::StoreRequest::SET, pb::StoreRequest::ADD, pb::StoreRequest::GET,
                  pb::StoreRequest::DELETE, pb::StoreRequest::WAIT}) {
    Socket s = authenticatedSocket(server.port(), "secret");
    pb::StoreRequest keyless;
    keyless.set_op(op);
    sendFrame(s, keyless.SerializeAsString(), soon());
    EXPECT_TRUE(closedByServer(s)) << "op " << op;
  }
  for (const std::string& frame : {header(7) + "garbage", header(100000) + "x"}) {
    Socket s = authenticatedSocket(server.port(), "secret");
    sendRaw(s, frame);
    EXPECT_TRUE(closedByServer(s));
  }
  bystander.set("k", "v");
  EXPECT_EQ(bystander.get("k", 1s), "v");
  expectServing(server, "secret");
}

// Random bytes, before and after proving the token: each connection is
// closed or answered, never the server; bounded (2,000 frames, loopback).
TEST(TcpStoreServer, RandomFramesNeverTakeTheServerDown) {
  CapturedLog log;
  TcpStoreLimits limits;
  limits.handshake_timeout = 300ms;
  TcpStoreServer server("secret", "127.0.0.1", 0, limits);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const bool authenticated = i % 2 == 1;
    Socket s = authenticated ? authenticatedSocket(server.port(), "secret")
                             : connectTcp("127.0.0.1", server.port(), soon());
    if (!authenticated) recvFrame(s, soon());  // the challenge
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    const std::string frame = rng() % 2 ? header(static_cast<uint32_t>(junk.size())) + junk : junk;
    ::send(s.fd(), frame.data(), frame.size(), MSG_NOSIGNAL);
  }
  expectServing(server, "secret");
  for (int i = 0; i < 250 && server.openConnections() > 1; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_LE(server.openConnections(), 1);
}

// A token holder that stalls inside a request (its length sent, not all
// its bytes) loses its connection after the store I/O timeout, instead of
// holding it (and its thread) for ever; an idle one keeps it.
TEST(TcpStoreServer, AClientStallingInsideARequestIsDroppedIdleOnesAreKept) {
  CapturedLog log;
  setenv("ZSHARD_STORE_TIMEOUT", "1", 1);
  TcpStoreServer server("secret");
  Socket idle = authenticatedSocket(server.port(), "secret");
  Socket stalled = authenticatedSocket(server.port(), "secret");
  sendRaw(stalled, header(100) + "only ten b");
  const auto t0 = Clock::now();
  EXPECT_TRUE(closedByServer(stalled));
  EXPECT_LT(Clock::now() - t0, 4s);
  pb::StoreRequest set;
  set.set_op(pb::StoreRequest::SET);
  set.add_keys("k");
  set.set_value("v");
  sendFrame(idle, set.SerializeAsString(), soon());  // after 1 s of idleness: still served
  pb::StoreResponse response;
  EXPECT_TRUE(response.ParseFromString(recvFrame(idle, soon())));
  EXPECT_TRUE(response.ok());
  unsetenv("ZSHARD_STORE_TIMEOUT");
}

TEST(TcpStoreServer, ConnectionsOverTheLimitAreClosedAtOnce) {
  CapturedLog log;
  TcpStoreLimits limits;
  limits.max_connections = 3;
  TcpStoreServer server("secret", "127.0.0.1", 0, limits);
  std::vector<std::unique_ptr<TcpStore>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<TcpStore>("127.0.0.1", server.port(), "secret", 5s));
  }
  EXPECT_THROW(TcpStore("127.0.0.1", server.port(), "secret", 1s), Error);
  clients.pop_back();  // one leaves: a place again
  for (int i = 0; i < 100 && server.openConnections() > 2; ++i) std::this_thread::sleep_for(20ms);
  expectServing(server, "secret");
}

// A server that proves the token and then never answers (its process was
// stopped with Ctrl-Z, is in a debugger or swapping): the client's error
// names the store, why it may be stalled and what sets the timeout, after
// the store I/O timeout (ZSHARD_STORE_TIMEOUT, zlaunch --store-timeout).
TEST(TcpStore, AStoreThatStopsAnsweringIsNamedWithWhyAndTheSetting) {
  Socket listener = listenTcp("127.0.0.1", 0);
  const int port = boundPort(listener);
  std::thread stalled([&] {
    Socket c(::accept(listener.fd(), nullptr, nullptr));
    pb::Challenge challenge;
    challenge.set_nonce(randomBytes(32));
    challenge.set_protocol_version(1);
    sendFrame(c, challenge.SerializeAsString(), soon());
    pb::Proof proof;
    proof.ParseFromString(recvFrame(c, soon()));
    pb::Proof reply;
    reply.set_hmac(hmacSha256("secret", "server" + proof.nonce()));
    sendFrame(c, reply.SerializeAsString(), soon());
    recvFrame(c, soon());  // the request, never answered
    std::this_thread::sleep_for(2s);
  });
  setenv("ZSHARD_STORE_TIMEOUT", "1", 1);
  try {
    TcpStore client("127.0.0.1", port, "secret", 5s);
    client.set("k", "v");
    ADD_FAILURE() << "a silent store answered";
  } catch (const TimeoutError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the job store at 127.0.0.1:" + std::to_string(port) +
                        " did not answer within 1 s"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("is stalled"), std::string::npos) << what;
    EXPECT_NE(what.find("--store-timeout"), std::string::npos) << what;
  }
  unsetenv("ZSHARD_STORE_TIMEOUT");
  stalled.join();
}

TEST(ListenAddress, OnlyWhereClientsConnect) {
  EXPECT_EQ(listenAddressFor("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(listenAddressFor("localhost"), "127.0.0.1");
  EXPECT_EQ(listenAddressFor("10.1.2.3"), "10.1.2.3");
  EXPECT_TRUE(isLoopback("127.0.1.1"));
  EXPECT_FALSE(isLoopback("10.1.2.3"));
}

}  // namespace
}  // namespace zshard::rendezvous
