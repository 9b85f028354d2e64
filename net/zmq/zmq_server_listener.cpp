#include "net/zmq/zmq_server_listener.h"

#include "net/zmq/zmq_listener.h"

namespace pyflame_rt::net {
namespace {

class ZmqServerListener final : public Listener {
 public:
  ZmqServerListener(std::shared_ptr<ModelRepository> repo, std::shared_ptr<SequenceTable> seq,
                    std::unique_ptr<ZmqListener> listener, std::string sub)
      : repo_(std::move(repo)), seq_(std::move(seq)), listener_(std::move(listener)), sub_(std::move(sub)) {}
  ~ZmqServerListener() override { stop(); }
  std::string name() const override { return "zmq"; }
  std::string address() const override {
    std::string a = "pull " + listener_->pull_endpoint() + " pub " + listener_->pub_endpoint();
    return sub_.empty() ? a : a + " sub " + sub_;
  }
  void stop() override {
    listener_->stop();
    seq_->stop();
  }

 private:
  std::shared_ptr<ModelRepository> repo_;
  std::shared_ptr<SequenceTable> seq_;
  std::unique_ptr<ZmqListener> listener_;
  std::string sub_;
};

}  // namespace

Expected<std::unique_ptr<Listener>> start_zmq_listener(std::shared_ptr<ModelRepository> repository,
                                                       std::shared_ptr<SequenceTable> sequences,
                                                       const std::string& pull_endpoint,
                                                       const std::string& pub_endpoint,
                                                       const std::string& sub_endpoint) {
  ZmqOptions o;
  o.pull_endpoint = pull_endpoint;
  o.pub_endpoint = pub_endpoint;
  o.sub_endpoint = sub_endpoint;
  ASSIGN_OR_RETURN(auto listener, ZmqListener::start(*repository, *sequences, o));
  return std::unique_ptr<Listener>(
      new ZmqServerListener(std::move(repository), std::move(sequences), std::move(listener), sub_endpoint));
}

}  // namespace pyflame_rt::net
