#include "net/pipeline_target.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

namespace pyflame_rt::net {
namespace {

class PipelineTarget : public BatchTarget {
 public:
  PipelineTarget(std::string name, std::shared_ptr<Pipeline> pipeline, std::vector<TensorInfo> inputs,
                 std::vector<TensorInfo> outputs, std::chrono::milliseconds timeout)
      : name_(std::move(name)), pipeline_(std::move(pipeline)), inputs_(std::move(inputs)),
        outputs_(std::move(outputs)), timeout_(timeout) {
    for (const auto& o : outputs_) output_names_.push_back(o.name);
  }

  const std::string& name() const override { return name_; }
  bool dynamic_batch() const override { return false; }  // one request, one frame
  const std::vector<std::string>& output_names() const override { return output_names_; }

  Status validate(const std::map<std::string, Tensor>& feeds) const override {
    for (const auto& [n, t] : feeds) {
      bool known = false;
      for (const auto& in : inputs_) known = known || in.name == n;
      if (!known) return invalid_argument("unknown input name '", n, "'");
    }
    for (const auto& in : inputs_) {
      auto it = feeds.find(in.name);
      if (it == feeds.end()) return invalid_argument("missing input '", in.name, "'");
      RETURN_IF_ERROR(check_tensor_against(in.dtype, in.shape, it->second, "input '" + in.name + "'"));
    }
    return Status::OK();
  }

  Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const override {
    uint64_t stream = next_stream_.fetch_add(1);
    ASSIGN_OR_RETURN(uint64_t seq, pipeline_->push(feeds, stream, timeout_));
    (void)seq;
    ASSIGN_OR_RETURN(PipelineResult result, wait_for(stream));
    if (!result.dropped_at.empty()) {
      return make_status(StatusCode::kResourceExhausted, "pipeline '", name_, "': the frame was dropped at stage '",
                         result.dropped_at, "' (its input was full)");
    }
    RETURN_IF_ERROR(result.status);
    std::vector<Tensor> out;
    for (const auto& name : output_names_) {
      auto it = result.frame.find(name);
      if (it == result.frame.end()) {
        return make_status(StatusCode::kRuntimeError, "pipeline '", name_, "': its final frame has no entry '", name,
                           "'");
      }
      out.push_back(it->second);
    }
    return out;
  }

 private:
  // Results come out of one pull() for every caller: whoever pulls keeps the others' results
  // for them, so overlapping runs each get their own frame.
  Expected<PipelineResult> wait_for(uint64_t stream) const {
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      auto it = results_.find(stream);
      if (it != results_.end()) {
        PipelineResult r = std::move(it->second);
        results_.erase(it);
        return r;
      }
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        return make_status(StatusCode::kDeadlineExceeded, "pipeline '", name_, "': no result within ",
                           timeout_.count(), " ms");
      }
      if (pulling_) {
        cv_.wait_until(lock, deadline);
        continue;
      }
      pulling_ = true;
      lock.unlock();
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) + std::chrono::milliseconds(1);
      Expected<PipelineResult> r = pipeline_->pull(left);
      lock.lock();
      pulling_ = false;
      if (r.ok()) results_[r->stream] = std::move(r).value();
      cv_.notify_all();
      if (!r.ok() && r.status().code() != StatusCode::kDeadlineExceeded) return r.status();
    }
  }

  std::string name_;
  std::shared_ptr<Pipeline> pipeline_;
  std::vector<TensorInfo> inputs_, outputs_;
  std::vector<std::string> output_names_;
  std::chrono::milliseconds timeout_;
  mutable std::atomic<uint64_t> next_stream_{1};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable bool pulling_ = false;
  mutable std::map<uint64_t, PipelineResult> results_;
};

}  // namespace

std::shared_ptr<const BatchTarget> make_pipeline_target(std::string name, std::shared_ptr<Pipeline> pipeline,
                                                        std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs,
                                                        std::chrono::milliseconds timeout) {
  return std::make_shared<PipelineTarget>(std::move(name), std::move(pipeline), std::move(inputs), std::move(outputs),
                                          timeout);
}

}  // namespace pyflame_rt::net
