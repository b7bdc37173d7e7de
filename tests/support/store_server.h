#pragma once

// A TcpStore server in a forked child, so the test process keeps no threads
// and can fork ranks safely (see multiprocess.h).
#include <unistd.h>

#include <string>
#include <utility>

#include "runtime/rendezvous/tcp_store.h"
#include "tests/support/multiprocess.h"

namespace zshard::testing {

// Returns the serving child (killed when it goes out of scope) and its port.
inline std::pair<Child, int> forkTcpStoreServer(const std::string& token) {
  int fds[2];
  if (pipe(fds) != 0) return {Child([] { return 1; }), -1};
  Child server([&] {
    rendezvous::TcpStoreServer s(token, "127.0.0.1");
    const std::string line = std::to_string(s.port()) + "\n";
    if (write(fds[1], line.data(), line.size()) < 0) return 1;
    pause();  // until killed
    return 0;
  });
  close(fds[1]);
  const int port = std::stoi(readLine(fds[0]));
  close(fds[0]);
  return {std::move(server), port};
}

}  // namespace zshard::testing
