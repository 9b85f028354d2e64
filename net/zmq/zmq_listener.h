// ZmqListener: sensor ingestion over ZeroMQ (wire format: zmq_wire.h, docs/serving_grpc_zmq.md).
//
//   ZmqOptions o;
//   o.pull_endpoint = "tcp://127.0.0.1:5555";   // bound; producers PUSH to it
//   o.pub_endpoint = "tcp://127.0.0.1:5556";    // bound; consumers SUB to it
//   auto zmq = ZmqListener::start(repository, sequences, o);
//
// One thread receives and parses (it never runs a model): a stateless message goes to the
// repository (dynamic batching), a message with a "stream" to that stream's sequence, where
// messages run one at a time in seq order. Per stream the listener checks seq: a jump forward
// is a gap (counted, reported as "gap" in the answer, then processed), a seq at or below one
// already accepted is out of order (counted, answered on topic "error" with code ABORTED, not
// fed: the stream's state has moved on). A malformed message is answered on topic "error" and
// counted; the socket keeps serving. Answers are published from whichever thread finishes
// them, under one lock (a ZeroMQ socket is not thread-safe).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/model_repository.h"
#include "net/sequence/sequence_table.h"

namespace pyflame_rt::net {

struct ZmqOptions {
  std::string pull_endpoint;            // bound PULL socket; "" = none ("tcp://127.0.0.1:*": any port)
  std::string sub_endpoint;             // connected SUB socket; "" = none. Frame 0 is the topic
  std::vector<std::string> sub_topics;  // SUB subscriptions (model names); empty = all
  std::string pub_endpoint;             // bound PUB socket for answers and errors (required)
  int max_in_flight = 1024;             // accepted, not yet answered; beyond: RESOURCE_EXHAUSTED
  int receive_hwm = 1000;               // ZeroMQ high-water marks (messages)
  int send_hwm = 1000;

  Status validate() const;
};

struct ZmqStats {
  uint64_t received = 0;      // messages read
  uint64_t malformed = 0;     // refused before they reached a model
  uint64_t published = 0;     // answers
  uint64_t errors = 0;        // messages on topic "error" (malformed ones included)
  uint64_t gap_frames = 0;    // stream frames that never arrived (sum of seq jumps)
  uint64_t out_of_order = 0;  // stream frames that came late or twice (dropped)
  uint64_t rejected_busy = 0; // refused past max_in_flight
};

class ZmqListener {
 public:
  static Expected<std::unique_ptr<ZmqListener>> start(ModelRepository& repository, SequenceTable& sequences,
                                                      ZmqOptions options);
  ~ZmqListener();
  ZmqListener(const ZmqListener&) = delete;
  ZmqListener& operator=(const ZmqListener&) = delete;

  // The endpoints as bound (a "*" port replaced by the real one).
  const std::string& pull_endpoint() const { return pull_bound_; }
  const std::string& pub_endpoint() const { return pub_bound_; }
  ZmqStats stats() const;
  // Stops receiving; answers still in flight are published if they arrive within a moment.
  void stop();

  struct Impl;

 private:
  explicit ZmqListener(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string pull_bound_, pub_bound_;
};

}  // namespace pyflame_rt::net
