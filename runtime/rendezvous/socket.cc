#include "runtime/rendezvous/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "runtime/core/error.h"

namespace zshard::rendezvous {

namespace {

// What recvFrame reserves at a time: memory follows the bytes received.
constexpr size_t kRecvChunk = 64 << 10;

std::string errnoText() {
  return std::strerror(errno);
}

sockaddr_in resolve(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    throw CommError("cannot resolve host \"" + host + "\": " + gai_strerror(rc));
  }
  sockaddr_in addr = *reinterpret_cast<sockaddr_in*>(result->ai_addr);
  freeaddrinfo(result);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

int millisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for `events` on the socket; false on timeout.
bool waitFor(const Socket& s, short events, Clock::time_point deadline) {
  pollfd p{s.fd(), events, 0};
  while (true) {
    const int rc = ::poll(&p, 1, millisLeft(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) throw CommError("poll failed: " + errnoText());
  }
}

void sendAll(const Socket& s, const char* data, size_t size, Clock::time_point deadline) {
  while (size > 0) {
    if (!waitFor(s, POLLOUT, deadline)) throw TimeoutError("socket send timed out");
    const ssize_t n = ::send(s.fd(), data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw CommError("connection lost while sending: " + errnoText());
    data += n;
    size -= static_cast<size_t>(n);
  }
}

void recvAll(const Socket& s, char* data, size_t size, Clock::time_point deadline) {
  while (size > 0) {
    if (!waitFor(s, POLLIN, deadline)) throw TimeoutError("socket receive timed out");
    const ssize_t n = ::recv(s.fd(), data, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) throw CommError("connection closed by peer");
    if (n < 0) throw CommError("connection lost while receiving: " + errnoText());
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

int Socket::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void setNoDelay(const Socket& s) {
  const int one = 1;
  ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void Socket::shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

Socket listenTcp(const std::string& host, int port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) throw CommError("socket() failed: " + errnoText());
  const int one = 1;
  ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = resolve(host, port);
  if (::bind(s.fd(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw CommError("cannot bind " + host + ":" + std::to_string(port) + ": " + errnoText());
  }
  if (::listen(s.fd(), 1024) != 0) throw CommError("listen() failed: " + errnoText());
  return s;
}

int boundPort(const Socket& s) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

std::string peerAddress(const Socket& s) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(s.fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char ip[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(addr.sin_port));
}

Socket connectTcp(const std::string& host, int port, Clock::time_point deadline) {
  const sockaddr_in addr = resolve(host, port);
  std::string last_error;
  do {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
      setNoDelay(s);
      return s;
    }
    last_error = errnoText();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (Clock::now() < deadline);
  throw TimeoutError("cannot connect to " + host + ":" + std::to_string(port) + " (" + last_error +
                     "); is the store server (node 0's zlaunch or rank 0) running?");
}

void sendFrame(const Socket& s, const std::string& payload, Clock::time_point deadline) {
  if (payload.size() > kMaxFrameBytes)
    throw CommError("frame too large: " + std::to_string(payload.size()));
  const uint32_t n = static_cast<uint32_t>(payload.size());
  std::string frame = {char(n & 255), char((n >> 8) & 255), char((n >> 16) & 255), char(n >> 24)};
  frame += payload;  // one send: no Nagle/delayed-ACK stall between header and body
  sendAll(s, frame.data(), frame.size(), deadline);
}

std::string recvFrame(const Socket& s, Clock::time_point deadline, size_t max_bytes,
                      std::chrono::milliseconds body_within) {
  unsigned char header[4];
  recvAll(s, reinterpret_cast<char*>(header), 4, deadline);
  if (body_within != std::chrono::milliseconds::max()) {
    deadline = std::min(deadline, Clock::now() + body_within);
  }
  const uint32_t n = header[0] | (header[1] << 8) | (header[2] << 16) | (uint32_t(header[3]) << 24);
  if (n > max_bytes) {
    throw CommError("peer announced a frame of " + std::to_string(n) + " bytes (at most " +
                    std::to_string(max_bytes) + " here)");
  }
  std::string payload;
  while (payload.size() < n) {
    const size_t at = payload.size();
    payload.resize(std::min<size_t>(n, at + kRecvChunk));
    recvAll(s, payload.data() + at, payload.size() - at, deadline);
  }
  return payload;
}

bool isLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::string listenAddressFor(const std::string& host) {
  if (isLoopback(host)) return "127.0.0.1";
  const sockaddr_in addr = resolve(host, 0);
  if ((ntohl(addr.sin_addr.s_addr) >> 24) == 127) return "0.0.0.0";
  char ip[INET_ADDRSTRLEN] = "0.0.0.0";
  ::inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return ip;
}

}  // namespace zshard::rendezvous
