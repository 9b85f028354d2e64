// BatchTarget: what a batcher or a device actor runs. Usually a session (make_session_target);
// tests put a failing or slow target behind the same actors to exercise the supervisor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/status.h"
#include "graph/tensor.h"

namespace pyflame_rt {

class InferenceSession;

class BatchTarget {
 public:
  virtual ~BatchTarget() = default;
  // Names the model in every error ("model 'resnet50'").
  virtual const std::string& name() const = 0;
  // True when dim 0 of every input may vary, so requests can be concatenated along it.
  virtual bool dynamic_batch() const = 0;
  virtual const std::vector<std::string>& output_names() const = 0;
  // The checks a run does, without running (a bad request is refused before it is queued).
  virtual Status validate(const std::map<std::string, Tensor>& feeds) const = 0;
  // Every output, in output_names() order.
  virtual Expected<std::vector<Tensor>> run(const std::map<std::string, Tensor>& feeds) const = 0;
};

std::shared_ptr<const BatchTarget> make_session_target(std::shared_ptr<const InferenceSession> session,
                                                       std::string name);

}  // namespace pyflame_rt
