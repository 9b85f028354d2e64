#include "net/zmq/zmq_listener.h"

#include <chrono>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "net/zmq/zmq_wire.h"

namespace pyflame_rt::net {
namespace {

using Clock = std::chrono::steady_clock;

// The PUB socket and the counters, shared with completion callbacks: an answer that arrives
// after stop() finds `closed` and is dropped instead of touching a closed socket.
struct Publisher {
  std::shared_ptr<zmq::context_t> context;
  std::mutex mu;
  std::unique_ptr<zmq::socket_t> socket;
  bool closed = false;
  std::atomic<uint64_t> published{0}, errors{0};
  std::atomic<int> in_flight{0};

  void send(const std::vector<std::string>& frames, bool is_error) {
    std::lock_guard<std::mutex> lock(mu);
    if (closed) return;
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      // A PUB socket drops at its high-water mark rather than block: a slow subscriber never
      // stalls the model threads.
      socket->send(zmq::buffer(frames[i]), flags | zmq::send_flags::dontwait);
    }
    (is_error ? errors : published).fetch_add(1, std::memory_order_relaxed);
  }
};

// Where one stream's seq stands.
struct StreamOrder {
  int64_t next = 0;
  Clock::time_point last_seen;
};

std::string last_endpoint(zmq::socket_t& s) { return s.get(zmq::sockopt::last_endpoint); }

}  // namespace

struct ZmqListener::Impl {
  ModelRepository& repository;
  SequenceTable& sequences;
  ZmqOptions options;
  std::shared_ptr<zmq::context_t> context = std::make_shared<zmq::context_t>(1);
  std::unique_ptr<zmq::socket_t> pull, sub;
  std::shared_ptr<Publisher> publisher = std::make_shared<Publisher>();
  std::thread thread;
  std::atomic<bool> stopping{false};
  // Touched by the receive thread only (stats() reads the atomics).
  std::map<std::string, StreamOrder> streams;
  Clock::time_point last_prune = Clock::now();
  std::atomic<uint64_t> received{0}, malformed{0}, gap_frames{0}, out_of_order{0}, rejected_busy{0};

  Impl(ModelRepository& r, SequenceTable& s, ZmqOptions o) : repository(r), sequences(s), options(std::move(o)) {}

  void publish_error(const ZmqErrorContext& ctx, const Status& st, const char* code = nullptr) {
    publisher->send(encode_zmq_error(ctx, st, code), true);
  }

  void handle(std::vector<zmq::message_t>& msgs, bool has_topic) {
    received.fetch_add(1, std::memory_order_relaxed);
    std::vector<FrameView> frames;
    for (size_t i = has_topic ? 1 : 0; i < msgs.size(); ++i) {
      frames.push_back({static_cast<const char*>(msgs[i].data()), msgs[i].size()});
    }
    ZmqErrorContext ctx;
    auto parsed = parse_zmq_request(frames, &ctx);
    if (!parsed.ok()) {
      malformed.fetch_add(1, std::memory_order_relaxed);
      repository.metrics().record_server_failure("zmq_malformed");
      publish_error(ctx, parsed.status());
      return;
    }
    ZmqRequest req = std::move(*parsed);
    int64_t gap = 0;
    if (!req.stream.empty()) {
      const std::string key = req.request.model_name + "\n" + req.stream;
      auto it = streams.find(key);
      if (it == streams.end() || req.request.sequence->start) {
        it = streams.insert_or_assign(key, StreamOrder{}).first;
      } else if (req.seq < it->second.next) {
        out_of_order.fetch_add(1, std::memory_order_relaxed);
        repository.metrics().record_server_failure("zmq_out_of_order");
        publish_error(ctx, make_status(StatusCode::kInvalidArgument, "stream '", req.stream, "' of model '",
                                       req.request.model_name, "': seq ", req.seq, " arrived after seq ",
                                       it->second.next - 1, "; dropped (the stream's state has moved on)"),
                      "ABORTED");
        return;
      } else if (req.seq > it->second.next) {
        gap = req.seq - it->second.next;
        gap_frames.fetch_add(static_cast<uint64_t>(gap), std::memory_order_relaxed);
        repository.metrics().count_event("zmq_gap_frames", static_cast<uint64_t>(gap));
      }
      it->second.next = req.seq + 1;
      it->second.last_seen = Clock::now();
      if (req.request.sequence->end) streams.erase(it);
      prune_streams();
    }
    if (publisher->in_flight.fetch_add(1) >= options.max_in_flight) {
      publisher->in_flight.fetch_sub(1);
      rejected_busy.fetch_add(1, std::memory_order_relaxed);
      repository.metrics().record_server_failure("zmq_busy");
      publish_error(ctx, make_status(StatusCode::kResourceExhausted, "ZeroMQ: ", options.max_in_flight,
                                     " requests in flight (max_in_flight); message dropped"));
      return;
    }
    std::shared_ptr<Publisher> pub = publisher;
    auto done = [pub, ctx, stream = req.stream, seq = req.seq, gap](Expected<InferResponse> result) {
      if (result.ok()) {
        pub->send(encode_zmq_response(*result, stream, seq, gap), false);
      } else {
        pub->send(encode_zmq_error(ctx, result.status()), true);
      }
      pub->in_flight.fetch_sub(1);
    };
    if (req.request.sequence) {
      sequences.infer(std::move(req.request), std::move(done));
    } else {
      repository.infer(std::move(req.request), std::move(done));
    }
  }

  // Forgets the seq of streams silent for longer than their sequences live, so a stream id
  // reused much later starts afresh instead of looking out of order.
  void prune_streams() {
    const auto now = Clock::now();
    const auto idle = sequences.options().idle_timeout;
    if (now - last_prune < idle) return;
    last_prune = now;
    for (auto it = streams.begin(); it != streams.end();) {
      it = now - it->second.last_seen > 2 * idle ? streams.erase(it) : std::next(it);
    }
  }

  void loop() {
    std::vector<zmq::pollitem_t> items;
    std::vector<std::pair<zmq::socket_t*, bool>> sockets;  // socket, frames start with a topic
    if (pull) {
      items.push_back({pull->handle(), 0, ZMQ_POLLIN, 0});
      sockets.emplace_back(pull.get(), false);
    }
    if (sub) {
      items.push_back({sub->handle(), 0, ZMQ_POLLIN, 0});
      sockets.emplace_back(sub.get(), true);
    }
    while (!stopping.load()) {
      // A bounded wait, so stop() is seen within 50 ms.
      zmq::poll(items, std::chrono::milliseconds(50));
      for (size_t i = 0; i < items.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        for (int burst = 0; burst < 256 && !stopping.load(); ++burst) {
          std::vector<zmq::message_t> msgs;
          auto n = zmq::recv_multipart(*sockets[i].first, std::back_inserter(msgs), zmq::recv_flags::dontwait);
          if (!n) break;
          handle(msgs, sockets[i].second);
        }
      }
    }
  }
};

Status ZmqOptions::validate() const {
  if (pub_endpoint.empty()) return invalid_argument("ZeroMQ: a PUB endpoint for the answers is required (--zmq-pub)");
  if (pull_endpoint.empty() && sub_endpoint.empty()) {
    return invalid_argument("ZeroMQ: a PULL (--zmq-pull) or SUB endpoint to read requests from is required");
  }
  if (max_in_flight < 1) return invalid_argument("ZeroMQ max_in_flight: expected >= 1, got ", max_in_flight);
  return Status::OK();
}

ZmqListener::ZmqListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Expected<std::unique_ptr<ZmqListener>> ZmqListener::start(ModelRepository& repository, SequenceTable& sequences,
                                                          ZmqOptions options) {
  RETURN_IF_ERROR(options.validate());
  auto impl = std::make_unique<Impl>(repository, sequences, options);
  std::string pull_bound, pub_bound;
  // cppzmq reports socket errors as zmq::error_t; they stop here, as a Status.
  try {
    auto& ctx = *impl->context;
    impl->publisher->context = impl->context;
    impl->publisher->socket = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pub);
    impl->publisher->socket->set(zmq::sockopt::sndhwm, options.send_hwm);
    impl->publisher->socket->set(zmq::sockopt::linger, 200);
    impl->publisher->socket->bind(options.pub_endpoint);
    pub_bound = last_endpoint(*impl->publisher->socket);
    if (!options.pull_endpoint.empty()) {
      impl->pull = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pull);
      impl->pull->set(zmq::sockopt::rcvhwm, options.receive_hwm);
      impl->pull->set(zmq::sockopt::linger, 0);
      impl->pull->bind(options.pull_endpoint);
      pull_bound = last_endpoint(*impl->pull);
    }
    if (!options.sub_endpoint.empty()) {
      impl->sub = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::sub);
      impl->sub->set(zmq::sockopt::rcvhwm, options.receive_hwm);
      impl->sub->set(zmq::sockopt::linger, 0);
      if (options.sub_topics.empty()) impl->sub->set(zmq::sockopt::subscribe, "");
      for (const auto& topic : options.sub_topics) impl->sub->set(zmq::sockopt::subscribe, topic);
      impl->sub->connect(options.sub_endpoint);
    }
  } catch (const zmq::error_t& e) {
    return make_status(StatusCode::kUnavailable, "ZeroMQ: cannot open pull '", options.pull_endpoint, "' / sub '",
                       options.sub_endpoint, "' / pub '", options.pub_endpoint, "': ", e.what());
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->loop(); });
  std::unique_ptr<ZmqListener> listener(new ZmqListener(std::move(impl)));
  listener->pull_bound_ = pull_bound;
  listener->pub_bound_ = pub_bound;
  return listener;
}

ZmqListener::~ZmqListener() { stop(); }

void ZmqListener::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->pull.reset();
  impl_->sub.reset();
  // Answers for accepted messages still go out if they come soon (bounded wait).
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (impl_->publisher->in_flight.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::lock_guard<std::mutex> lock(impl_->publisher->mu);
  impl_->publisher->closed = true;
  impl_->publisher->socket.reset();
}

ZmqStats ZmqListener::stats() const {
  ZmqStats s;
  s.received = impl_->received.load();
  s.malformed = impl_->malformed.load();
  s.published = impl_->publisher->published.load();
  s.errors = impl_->publisher->errors.load();
  s.gap_frames = impl_->gap_frames.load();
  s.out_of_order = impl_->out_of_order.load();
  s.rejected_busy = impl_->rejected_busy.load();
  return s;
}

}  // namespace pyflame_rt::net
