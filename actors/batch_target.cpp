#include "actors/batch_target.h"

#include "session/inference_session.h"

namespace pyflame_rt {
namespace {

class SessionTarget : public BatchTarget {
 public:
  SessionTarget(std::shared_ptr<const InferenceSession> session, std::string name)
      : session_(std::move(session)), name_(std::move(name)) {
    for (const auto& o : session_->outputs()) output_names_.push_back(o.name);
    dynamic_batch_ = !session_->inputs().empty();
    for (const auto& in : session_->inputs()) {
      bool varies = in.shape.rank_known && in.shape.rank() >= 1 && !in.shape.dims[0].known();
      dynamic_batch_ = dynamic_batch_ && varies;
    }
  }
  const std::string& name() const override { return name_; }
  bool dynamic_batch() const override { return dynamic_batch_; }
  const std::vector<std::string>& output_names() const override { return output_names_; }
  Status validate(const std::map<std::string, Tensor>& feeds) const override {
    return session_->validate_feeds(feeds);
  }
  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const override {
    return session_->run({}, feeds);
  }

 private:
  std::shared_ptr<const InferenceSession> session_;
  std::string name_;
  std::vector<std::string> output_names_;
  bool dynamic_batch_ = false;
};

}  // namespace

std::shared_ptr<const BatchTarget> make_session_target(std::shared_ptr<const InferenceSession> session,
                                                       std::string name) {
  return std::make_shared<SessionTarget>(std::move(session), std::move(name));
}

}  // namespace pyflame_rt
