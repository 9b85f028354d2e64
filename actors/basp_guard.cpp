#include "actors/basp_guard.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

namespace pyflame_rt {

Status check_basp_header(const unsigned char* h, size_t size, uint32_t max_payload, uint32_t* payload) {
  if (size != kBaspHeaderSize) return invalid_argument("BASP header: expected ", kBaspHeaderSize, " bytes, got ", size);
  // Layout (caf/io/basp/header.hpp, 0.17): operation, 2 padding bytes, flags, payload_len
  // (u32), operation_data (u64), source and destination actor ids (u64), big-endian.
  constexpr unsigned char kLastOperation = 0x06;  // heartbeat
  if (h[0] > kLastOperation) return invalid_argument("BASP header: unknown operation ", int{h[0]});
  uint32_t len = (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | uint32_t{h[7]};
  if (len > max_payload) {
    return make_status(StatusCode::kResourceExhausted, "BASP header announces a ", len, "-byte payload, the limit is ",
                       max_payload);
  }
  *payload = len;
  return Status::OK();
}

struct BaspGuard::Impl {
  // Every wait of a connection's thread lasts at most kPollMs before it looks at `stopping`:
  // stop() returns within about that, whatever the peers do (silent, half-open, not reading).
  static constexpr int kPollMs = 200;
  static constexpr int kConnectMs = 5000;  // CAF's loopback port, which accepts at once when alive
  BaspGuardLimits limits;
  uint16_t upstream_port = 0;
  uint16_t port = 0;
  int listen_fd = -1;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> refused{0};
  std::thread acceptor;
  std::mutex mu;
  std::condition_variable idle;
  std::set<int> open_fds;  // client and upstream sockets of live connections
  int active = 0;

  // Sends all of p[0, n), waiting for room at most one poll period at a time: a peer that stops
  // reading (its window full) holds the connection only until stop(), never the shutdown.
  bool write_all(int fd, const char* p, size_t n) const {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (stopping) return false;
        pollfd out{fd, POLLOUT, 0};
        ::poll(&out, 1, kPollMs);
        continue;
      }
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  // CAF's loopback port; -1 when it does not answer within kConnectMs (or stop() began).
  int connect_upstream() const {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(upstream_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      bool connected = false;
      if (errno == EINPROGRESS) {
        for (int waited = 0; !stopping && waited < kConnectMs; waited += kPollMs) {
          pollfd out{fd, POLLOUT, 0};
          if (::poll(&out, 1, kPollMs) > 0) {
            int err = 0;
            socklen_t len = sizeof err;
            connected = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
            break;
          }
        }
      }
      if (!connected) {
        ::close(fd);
        return -1;
      }
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }

  // Pumps one connection until either side closes, a header is refused, or stop().
  void pump(int client, int up) {
    unsigned char header[kBaspHeaderSize];
    size_t have = 0;           // header bytes collected
    uint64_t payload_left = 0;  // payload bytes still to forward unchecked
    char buf[64 * 1024];
    pollfd fds[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
    while (!stopping) {
      int r = ::poll(fds, 2, kPollMs);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return;
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::recv(up, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0 || !write_all(client, buf, static_cast<size_t>(n))) return;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t n = ::recv(client, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return;
        const char* p = buf;
        size_t left = static_cast<size_t>(n);
        while (left > 0) {
          if (payload_left > 0) {
            size_t k = static_cast<size_t>(std::min<uint64_t>(payload_left, left));
            if (!write_all(up, p, k)) return;
            p += k;
            left -= k;
            payload_left -= k;
            continue;
          }
          size_t k = std::min(kBaspHeaderSize - have, left);
          std::memcpy(header + have, p, k);
          have += k;
          p += k;
          left -= k;
          if (have < kBaspHeaderSize) break;
          uint32_t len = 0;
          if (!check_basp_header(header, have, limits.max_payload_bytes, &len).ok()) {
            ++refused;
            return;
          }
          if (!write_all(up, reinterpret_cast<const char*>(header), have)) return;
          have = 0;
          payload_left = len;
        }
      }
    }
  }

  // `client` is in open_fds already (the acceptor put it there, so stop() sees it at once).
  void serve(int client) {
    int up = connect_upstream();
    if (up >= 0) {
      std::lock_guard<std::mutex> lock(mu);
      open_fds.insert(up);
    }
    if (up >= 0) pump(client, up);
    std::lock_guard<std::mutex> lock(mu);
    open_fds.erase(client);
    ::close(client);
    if (up >= 0) {
      open_fds.erase(up);
      ::close(up);
    }
    --active;
    idle.notify_all();
  }
};

namespace {

Expected<int> listen_on(const std::string& host, uint16_t port, uint16_t* bound) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  std::string service = std::to_string(port);
  if (int e = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res); e != 0) {
    return make_status(StatusCode::kUnavailable, "cannot resolve '", host, "': ", gai_strerror(e));
  }
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
    int err = errno;
    ::freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    return make_status(StatusCode::kUnavailable, "cannot listen on ", host, ":", port, ": ", std::strerror(err));
  }
  ::freeaddrinfo(res);
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *bound = ntohs(a.sin_port);
  return fd;
}

}  // namespace

Expected<std::unique_ptr<BaspGuard>> BaspGuard::start(const std::string& host, uint16_t port, uint16_t upstream_port,
                                                      BaspGuardLimits limits) {
  auto impl = std::make_shared<Impl>();
  impl->limits = limits;
  impl->upstream_port = upstream_port;
  ASSIGN_OR_RETURN(impl->listen_fd, listen_on(host, port, &impl->port));
  Impl* raw = impl.get();
  std::weak_ptr<Impl> weak = impl;
  impl->acceptor = std::thread([raw, weak] {
    pollfd pfd{raw->listen_fd, POLLIN, 0};
    while (!raw->stopping) {
      if (::poll(&pfd, 1, 200) <= 0) continue;
      int client = ::accept4(raw->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::shared_ptr<Impl> self = weak.lock();
      std::unique_lock<std::mutex> lock(raw->mu);
      if (!self || raw->stopping || raw->active >= raw->limits.max_connections) {
        ++raw->refused;
        ::close(client);
        continue;
      }
      ++raw->active;
      raw->open_fds.insert(client);
      lock.unlock();
      int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::thread([self, client] { self->serve(client); }).detach();
    }
  });
  return std::unique_ptr<BaspGuard>(new BaspGuard(std::move(impl)));
}

BaspGuard::BaspGuard(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
BaspGuard::~BaspGuard() { stop(); }
uint16_t BaspGuard::port() const { return impl_->port; }
uint64_t BaspGuard::connections_refused() const { return impl_->refused; }
int BaspGuard::open_connections() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->active;
}

void BaspGuard::stop() {
  if (impl_->stopping.exchange(true)) return;
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  ::close(impl_->listen_fd);
  std::unique_lock<std::mutex> lock(impl_->mu);
  for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
  // Each connection notices within one poll period (kPollMs) and closes its sockets.
  impl_->idle.wait(lock, [&] { return impl_->active == 0; });
}

}  // namespace pyflame_rt
