#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/rendezvous/hash_store.h"
#include "runtime/rendezvous/socket.h"
#include "runtime/rendezvous/store.h"

namespace zshard::rendezvous {

// What one store server takes on at most, so that nobody without the
// token can exhaust it: connections (each served on a thread of its own,
// joined when it ends), connections still proving the token, the time a
// proof may take, an authenticated request's size.
struct TcpStoreLimits {
  int max_connections = 1024;
  int max_handshakes = 64;
  Millis handshake_timeout = std::chrono::seconds(5);
  size_t max_request_bytes = kMaxFrameBytes;
  // Refused clients are counted; one line reports them per interval.
  Millis refusal_report_interval = std::chrono::seconds(10);
};

// The store server hosted by node 0's controller (or rank 0). Listens on
// host:port (0 = any free port, see port(); host: see listenAddressFor),
// serves each client on its own thread from one HashStore. A client must
// prove it knows `token` (HMAC challenge in both directions) before any
// request, within `limits.handshake_timeout` and in a frame of at most a
// few hundred bytes; one that cannot is refused and disconnected (counted,
// reported once per interval). A connection beyond the limits is closed
// at once. A malformed request, authenticated or not, closes that
// connection only; the server stops only when destroyed (joins every
// thread).
class TcpStoreServer {
 public:
  TcpStoreServer(std::string token, const std::string& host = "127.0.0.1", int port = 0,
                 TcpStoreLimits limits = {});
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  int port() const { return port_; }
  // Clients refused so far (a wrong or missing token, or over the limits).
  int refusedClients() const { return refused_.load(); }
  // Connections open now (each with its thread).
  int openConnections();

 private:
  struct Connection {
    Socket socket;
    std::string peer;  // "ip:port", taken at accept (a closed peer has none)
    std::thread thread;
    std::atomic<bool> ended{false};
  };
  void acceptLoop();
  void admit(int fd);
  void reapEnded();
  void serve(Connection& c);
  bool authenticate(const Connection& c);
  void noteRefused(const std::string& peer, const std::string& why);
  void reportRefusals(bool force);
  std::string handle(const std::string& request);

  std::string token_;
  TcpStoreLimits limits_;
  Socket listener_;
  int port_ = 0;
  HashStore table_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> refused_{0};
  std::atomic<int> handshakes_{0};
  std::mutex connections_mutex_;
  std::list<std::unique_ptr<Connection>> connections_;
  std::mutex report_mutex_;
  Clock::time_point last_report_{};
  int unreported_ = 0;
  std::string last_refusal_;
  std::thread acceptor_;
};

// A Store client of a TcpStoreServer. Connects (retrying until `timeout`)
// and authenticates with `token` in the constructor; throws AuthError when
// the server does not accept the token or cannot prove it knows it.
// Thread-safe: requests are serialised over one connection.
class TcpStore : public Store {
 public:
  TcpStore(const std::string& host, int port, const std::string& token,
           Millis timeout = kDefaultStoreTimeout);

  void set(const std::string& key, const std::string& value) override;
  std::string get(const std::string& key, Millis timeout = kDefaultStoreTimeout) override;
  int64_t add(const std::string& key, int64_t delta) override;
  bool check(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, Millis timeout = kDefaultStoreTimeout) override;
  bool remove(const std::string& key) override;

 private:
  std::string call(const std::string& request, Millis timeout);

  std::mutex mutex_;
  Socket socket_;
  std::string where_;
  Millis io_timeout_;  // storeIoTimeout() (core/timeouts.h)
};

}  // namespace zshard::rendezvous
