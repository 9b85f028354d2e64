// BaspGuard: the TCP front of a served stage. CAF's middleman trusts the BASP header it reads:
// a 32-byte header announcing a 4 GiB payload makes it reserve 4 GiB before reading a byte,
// and a few such packets take the process down. The stage's actor is therefore published on
// loopback only, and the guard listens on the public address: it forwards bytes both ways
// and checks every header a client sends (known operation, payload within a limit) before
// the payload is forwarded; a bad header closes that connection, nobody else's.
//
//   ASSIGN_OR_RETURN(auto guard, BaspGuard::start("0.0.0.0", 4242, caf_port, {}));
//   guard->port();  // what clients connect to
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "graph/status.h"

namespace pyflame_rt {

constexpr size_t kBaspHeaderSize = 32;

struct BaspGuardLimits {
  uint32_t max_payload_bytes = 256u << 20;  // one frame's tensors; larger messages are refused
  int max_connections = 64;                 // more are closed at once (each costs a thread)
};

// Checks one serialized BASP header (network byte order): a known operation and a payload no
// larger than `max_payload`. On success *payload is its payload length.
Status check_basp_header(const unsigned char* header, size_t size, uint32_t max_payload, uint32_t* payload);

class BaspGuard {
 public:
  static Expected<std::unique_ptr<BaspGuard>> start(const std::string& host, uint16_t port, uint16_t upstream_port,
                                                    BaspGuardLimits limits = {});
  ~BaspGuard();  // stop()
  BaspGuard(const BaspGuard&) = delete;
  BaspGuard& operator=(const BaspGuard&) = delete;

  uint16_t port() const;
  uint64_t connections_refused() const;  // closed for a bad header or over max_connections
  int open_connections() const;          // being forwarded now
  // Closes the listening socket and every connection; joins the threads. Idempotent. Bounded:
  // every wait of a connection's thread (a silent peer, a half-written header, a peer that does
  // not read) looks at the stop flag at least every 200 ms.
  void stop();

  struct Impl;

 private:
  explicit BaspGuard(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace pyflame_rt
