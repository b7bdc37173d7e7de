#pragma once

#include <chrono>
#include <string>

namespace zshard::rendezvous {

using Clock = std::chrono::steady_clock;

// An owned socket file descriptor (closed on destruction; movable).
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& o) noexcept : fd_(o.release()) {}
  Socket& operator=(Socket&& o) noexcept;
  ~Socket();
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  // Wakes any thread blocked on this socket (shutdown(2)); keeps the fd.
  void shutdown();

 private:
  int fd_ = -1;
};

// Requests are small and latency-bound: disable Nagle's algorithm.
void setNoDelay(const Socket& s);

// Listens on host:port (port 0: the kernel picks one; see boundPort).
Socket listenTcp(const std::string& host, int port);
int boundPort(const Socket& s);
// "ip:port" of the peer.
std::string peerAddress(const Socket& s);

// Connects, retrying while the server is not up yet, until `deadline`.
// Throws TimeoutError naming host:port.
Socket connectTcp(const std::string& host, int port, Clock::time_point deadline);

// Length-prefixed frames (4-byte little-endian length, at most 64 MiB).
// Throw TimeoutError past `deadline`, CommError when the peer is gone.
void sendFrame(const Socket& s, const std::string& payload, Clock::time_point deadline);
std::string recvFrame(const Socket& s, Clock::time_point deadline);

}  // namespace zshard::rendezvous
