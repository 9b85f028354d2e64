// A client of a served stage (pyflame_rt.RemoteStage); pipelines take it as a stage.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <memory>

#include "actors/remote_stage.h"

namespace pyflame_rt::py_binding {

namespace py = pybind11;

class PyRemoteStage {
 public:
  PyRemoteStage(const std::string& host, uint16_t port, double timeout_ms);
  py::dict call(const py::object& frame) const;
  const std::string& name() const { return remote_->name(); }
  const std::string& address() const { return remote_->address(); }
  const std::vector<std::string>& inputs() const { return remote_->inputs(); }
  const std::vector<std::string>& outputs() const { return remote_->outputs(); }
  std::shared_ptr<RemoteStage> shared() const { return remote_; }

 private:
  std::shared_ptr<RemoteStage> remote_;
};

}  // namespace pyflame_rt::py_binding
