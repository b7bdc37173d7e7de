#include "runtime/rendezvous/tcp_store.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "proto/control.pb.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/core/timeouts.h"
#include "runtime/rendezvous/hmac.h"

namespace zshard::rendezvous {

namespace {

constexpr uint32_t kProtocolVersion = 1;
constexpr size_t kNonceBytes = 32;
// Server-side waits are cut in slices so that shutdown is prompt.
constexpr Millis kWaitSlice = std::chrono::milliseconds(200);

Clock::time_point after(Millis d) {
  return Clock::now() + d;
}

std::string proofFor(const std::string& token, const char* role, const std::string& nonce) {
  return hmacSha256(token, std::string(role) + nonce);
}

template <typename Message>
Message parseFrame(const std::string& bytes, const char* what) {
  Message m;
  if (!m.ParseFromString(bytes)) throw CommError(std::string("malformed ") + what + " frame");
  return m;
}

}  // namespace

// ---- server ---------------------------------------------------------------

namespace {

// A proof frame is a nonce and an HMAC: this is plenty.
constexpr size_t kMaxHandshakeFrame = 512;
// The longest a GET/WAIT may ask the server to wait (a day).
constexpr int64_t kMaxWaitMs = 24LL * 3600 * 1000;

bool outOfDescriptors(int e) {
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

}  // namespace

TcpStoreServer::TcpStoreServer(std::string token, const std::string& host, int port,
                               TcpStoreLimits limits)
    : token_(std::move(token)),
      limits_(limits),
      listener_(listenTcp(host, port)),
      port_(boundPort(listener_)) {
  if (token_.empty()) throw Error("TcpStoreServer: expected a job token, got an empty one");
  acceptor_ = std::thread([this] { acceptLoop(); });
}

TcpStoreServer::~TcpStoreServer() {
  stopping_ = true;
  listener_.shutdown();
  acceptor_.join();
  std::list<std::unique_ptr<Connection>> all;
  {
    std::lock_guard<std::mutex> lock(connections_mutex_);
    all.swap(connections_);
  }
  for (auto& c : all) c->socket.shutdown();  // each fd stays open until its Connection goes
  for (auto& c : all) c->thread.join();
  reportRefusals(true);
}

int TcpStoreServer::openConnections() {
  reapEnded();
  std::lock_guard<std::mutex> lock(connections_mutex_);
  return static_cast<int>(connections_.size());
}

// Accepts until shutdown, waking every half second to join ended
// connections and report refusals; running out of descriptors backs off
// instead of spinning.
void TcpStoreServer::acceptLoop() {
  while (!stopping_) {
    pollfd p{listener_.fd(), POLLIN, 0};
    const int ready = ::poll(&p, 1, 500);
    reapEnded();
    reportRefusals(false);
    if (ready <= 0 || stopping_) continue;
    const int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      admit(fd);
    } else if (outOfDescriptors(errno)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

void TcpStoreServer::admit(int fd) {
  auto c = std::make_unique<Connection>();
  c->socket = Socket(fd);
  c->peer = peerAddress(c->socket);
  std::lock_guard<std::mutex> lock(connections_mutex_);
  if (static_cast<int>(connections_.size()) >= limits_.max_connections ||
      handshakes_.load() >= limits_.max_handshakes) {
    noteRefused(c->peer, "too many connections at once");
    return;  // closed as `c` goes
  }
  ++handshakes_;
  Connection* raw = c.get();
  setNoDelay(raw->socket);
  raw->thread = std::thread([this, raw] {
    serve(*raw);
    raw->ended = true;
  });
  connections_.push_back(std::move(c));
}

void TcpStoreServer::reapEnded() {
  std::list<std::unique_ptr<Connection>> ended;
  {
    std::lock_guard<std::mutex> lock(connections_mutex_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if ((*it)->ended) ended.splice(ended.end(), connections_, it);
      it = next;
    }
  }
  for (auto& c : ended) c->thread.join();
}

bool TcpStoreServer::authenticate(const Connection& c) {
  const Socket& client = c.socket;
  const auto deadline = after(limits_.handshake_timeout);
  try {
    pb::Challenge challenge;
    challenge.set_nonce(randomBytes(kNonceBytes));
    challenge.set_protocol_version(kProtocolVersion);
    sendFrame(client, challenge.SerializeAsString(), deadline);
    const auto proof =
        parseFrame<pb::Proof>(recvFrame(client, deadline, kMaxHandshakeFrame), "proof");
    if (!constantTimeEqual(proof.hmac(), proofFor(token_, "client", challenge.nonce())) ||
        proof.nonce().size() != kNonceBytes) {
      noteRefused(c.peer, "it does not know this job's token (another job or user?)");
      return false;
    }
    pb::Proof reply;
    reply.set_hmac(proofFor(token_, "server", proof.nonce()));
    sendFrame(client, reply.SerializeAsString(), deadline);
    return true;
  } catch (const Error& e) {
    noteRefused(c.peer, std::string("no proof of the job's token (") + e.what() + ")");
    return false;
  }
}

void TcpStoreServer::noteRefused(const std::string& peer, const std::string& why) {
  ++refused_;
  std::lock_guard<std::mutex> lock(report_mutex_);
  ++unreported_;
  last_refusal_ = peer + ": " + why;
  if (Clock::now() - last_report_ < limits_.refusal_report_interval) return;
  // The first refusal of an interval is reported at once, the rest with the next report.
  log(LogLevel::kWarning, "store server: refused client " + last_refusal_ +
                              "; further refusals are counted and reported every " +
                              std::to_string(limits_.refusal_report_interval.count() / 1000) +
                              " s");
  unreported_ = 0;
  last_report_ = Clock::now();
}

void TcpStoreServer::reportRefusals(bool force) {
  std::lock_guard<std::mutex> lock(report_mutex_);
  if (unreported_ == 0 ||
      (!force && Clock::now() - last_report_ < limits_.refusal_report_interval)) {
    return;
  }
  log(LogLevel::kWarning, "store server: refused " + std::to_string(unreported_) +
                              " more client(s) since the last report (the latest " + last_refusal_ +
                              ")");
  unreported_ = 0;
  last_report_ = Clock::now();
}

// A malformed frame or request, or a client gone, ends this connection
// only; the server goes on.
void TcpStoreServer::serve(Connection& c) {
  const bool authenticated = authenticate(c);
  --handshakes_;
  if (!authenticated) return;
  try {
    while (!stopping_) {
      // Idle between requests as long as it likes; inside one, no longer
      // than the store I/O timeout.
      const std::string request = recvFrame(c.socket, Clock::time_point::max(),
                                            limits_.max_request_bytes, storeIoTimeout());
      sendFrame(c.socket, handle(request), after(storeIoTimeout()));
    }
  } catch (const std::exception& e) {
    if (!stopping_) {
      log(LogLevel::kDebug, "store server: closed the connection of " + c.peer + ": " + e.what());
    }
  }
}

std::string TcpStoreServer::handle(const std::string& bytes) {
  const auto req = parseFrame<pb::StoreRequest>(bytes, "store request");
  pb::StoreResponse resp;
  resp.set_ok(true);
  const std::vector<std::string> keys(req.keys().begin(), req.keys().end());
  if (keys.empty()) throw CommError("malformed store request: no key");
  switch (req.op()) {
    case pb::StoreRequest::SET: table_.set(keys.at(0), req.value()); break;
    case pb::StoreRequest::ADD: resp.set_counter(table_.add(keys.at(0), req.delta())); break;
    case pb::StoreRequest::CHECK: resp.set_ok(table_.check(keys)); break;
    case pb::StoreRequest::DELETE: resp.set_ok(table_.remove(keys.at(0))); break;
    case pb::StoreRequest::GET:
    case pb::StoreRequest::WAIT: {
      const auto deadline = after(Millis(std::clamp<int64_t>(req.timeout_ms(), 0, kMaxWaitMs)));
      while (!table_.check(keys)) {
        if (stopping_ || Clock::now() >= deadline) {
          resp.set_ok(false);
          resp.set_error(stopping_ ? "store server shutting down" : "timed out");
          return resp.SerializeAsString();
        }
        try {
          table_.wait(keys, std::min(kWaitSlice,
                                     std::chrono::duration_cast<Millis>(deadline - Clock::now()) +
                                         Millis(1)));
        } catch (const TimeoutError&) {
        }
      }
      if (req.op() == pb::StoreRequest::GET) resp.set_value(table_.get(keys.at(0), Millis(0)));
      break;
    }
    default: resp.set_ok(false), resp.set_error("unknown operation");
  }
  return resp.SerializeAsString();
}

// ---- client ---------------------------------------------------------------

TcpStore::TcpStore(const std::string& host, int port, const std::string& token, Millis timeout)
    : where_(host + ":" + std::to_string(port)), io_timeout_(storeIoTimeout()) {
  socket_ = connectTcp(host, port, after(timeout));
  const auto challenge =
      parseFrame<pb::Challenge>(recvFrame(socket_, after(io_timeout_)), "challenge");
  if (challenge.protocol_version() != kProtocolVersion) {
    throw CommError("store at " + where_ + ": " +
                    expectedGot("protocol version " + std::to_string(kProtocolVersion),
                                std::to_string(challenge.protocol_version())));
  }
  pb::Proof proof;
  proof.set_hmac(proofFor(token, "client", challenge.nonce()));
  proof.set_nonce(randomBytes(kNonceBytes));
  sendFrame(socket_, proof.SerializeAsString(), after(io_timeout_));
  pb::Proof reply;
  try {
    reply = parseFrame<pb::Proof>(recvFrame(socket_, after(io_timeout_)), "proof");
  } catch (const CommError&) {
    throw AuthError("store at " + where_ +
                    " refused this process: wrong job token "
                    "(ZSHARD_JOB_TOKEN must be the one zlaunch gave this job)");
  }
  if (!constantTimeEqual(reply.hmac(), proofFor(token, "server", proof.nonce()))) {
    throw AuthError("store at " + where_ +
                    " could not prove it knows the job token; "
                    "refusing to use it (another job on the same port?)");
  }
}

// A request, answered within what it asked to wait plus the store I/O
// timeout; a server that does not answer is named, with why it may be
// stalled and what sets the timeout.
std::string TcpStore::call(const std::string& request, Millis timeout) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto deadline = after(timeout + io_timeout_);
  try {
    sendFrame(socket_, request, deadline);
    return recvFrame(socket_, deadline);
  } catch (const TimeoutError&) {
    throw TimeoutError("the job store at " + where_ + " did not answer within " +
                       std::to_string((timeout + io_timeout_).count() / 1000) +
                       " s: the process serving it (node 0's zlaunch, or rank 0) is stalled "
                       "(stopped with Ctrl-Z, in a debugger, swapping) or its machine is "
                       "unreachable; zlaunch --store-timeout S (ZSHARD_STORE_TIMEOUT) waits "
                       "longer");
  }
}

namespace {

pb::StoreRequest request(pb::StoreRequest::Op op, const std::vector<std::string>& keys) {
  pb::StoreRequest r;
  r.set_op(op);
  for (const std::string& k : keys) r.add_keys(k);
  return r;
}

pb::StoreResponse response(const std::string& bytes) {
  return parseFrame<pb::StoreResponse>(bytes, "store response");
}

}  // namespace

void TcpStore::set(const std::string& key, const std::string& value) {
  auto r = request(pb::StoreRequest::SET, {key});
  r.set_value(value);
  call(r.SerializeAsString(), Millis(0));
}

std::string TcpStore::get(const std::string& key, Millis timeout) {
  auto r = request(pb::StoreRequest::GET, {key});
  r.set_timeout_ms(timeout.count());
  const auto resp = response(call(r.SerializeAsString(), timeout));
  if (!resp.ok()) {
    throw TimeoutError("store at " + where_ + ": key not set within " +
                       std::to_string(timeout.count()) + " ms (" + resp.error() + "): " + key);
  }
  return resp.value();
}

int64_t TcpStore::add(const std::string& key, int64_t delta) {
  auto r = request(pb::StoreRequest::ADD, {key});
  r.set_delta(delta);
  return response(call(r.SerializeAsString(), Millis(0))).counter();
}

bool TcpStore::check(const std::vector<std::string>& keys) {
  return response(call(request(pb::StoreRequest::CHECK, keys).SerializeAsString(), Millis(0))).ok();
}

void TcpStore::wait(const std::vector<std::string>& keys, Millis timeout) {
  auto r = request(pb::StoreRequest::WAIT, keys);
  r.set_timeout_ms(timeout.count());
  const auto resp = response(call(r.SerializeAsString(), timeout));
  if (!resp.ok()) {
    throw TimeoutError("store at " + where_ + ": keys not set within " +
                       std::to_string(timeout.count()) + " ms (" + resp.error() +
                       "): " + joinKeys(keys));
  }
}

bool TcpStore::remove(const std::string& key) {
  return response(call(request(pb::StoreRequest::DELETE, {key}).SerializeAsString(), Millis(0)))
      .ok();
}

}  // namespace zshard::rendezvous
