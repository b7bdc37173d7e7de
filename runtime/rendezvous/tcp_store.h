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

// The store server hosted by node 0's controller (or rank 0). Listens on
// host:port (0 = any free port, see port()), serves each client on its own
// thread from one HashStore. A client must prove it knows `token` (HMAC
// challenge in both directions) before any request; one that cannot is
// refused, logged and disconnected. Stops and joins on destruction.
class TcpStoreServer {
 public:
  TcpStoreServer(std::string token, const std::string& host = "0.0.0.0", int port = 0);
  ~TcpStoreServer();
  TcpStoreServer(const TcpStoreServer&) = delete;
  TcpStoreServer& operator=(const TcpStoreServer&) = delete;

  int port() const { return port_; }
  // Clients refused for a wrong token so far.
  int refusedClients() const { return refused_.load(); }

 private:
  void acceptLoop();
  void serve(Socket client);
  bool authenticate(const Socket& client);
  std::string handle(const std::string& request);

  std::string token_;
  Socket listener_;
  int port_ = 0;
  HashStore table_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> refused_{0};
  std::mutex clients_mutex_;
  std::list<std::thread> client_threads_;
  std::list<int> client_fds_;
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
};

}  // namespace zshard::rendezvous
