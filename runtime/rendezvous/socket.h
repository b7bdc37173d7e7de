#pragma once

#include <chrono>
#include <cstddef>
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

// The address a server binds so that clients connecting to `host` reach
// it, and as little else as possible: 127.0.0.1 for a loopback address or
// "localhost"; every interface (0.0.0.0) for a machine name that resolves to
// a loopback address here (Debian maps its own name to 127.0.1.1) but to
// another address on other machines; else that name's IPv4 address.
std::string listenAddressFor(const std::string& host);

// Whether `host` is a loopback name or address (a one-machine job's).
bool isLoopback(const std::string& host);

inline constexpr size_t kMaxFrameBytes = size_t{64} << 20;

// Length-prefixed frames (4-byte little-endian length, at most
// `max_bytes`, which is also all that is allocated before the bytes
// arrive: memory grows with what the peer actually sends). Throw
// TimeoutError past `deadline` (and, once a frame's length arrived, past
// `body_within` more when given: a peer that stalls inside a frame), and
// CommError when the peer is gone or announces more than `max_bytes`.
void sendFrame(const Socket& s, const std::string& payload, Clock::time_point deadline);
std::string recvFrame(const Socket& s, Clock::time_point deadline,
                      size_t max_bytes = kMaxFrameBytes,
                      std::chrono::milliseconds body_within = std::chrono::milliseconds::max());

}  // namespace zshard::rendezvous
