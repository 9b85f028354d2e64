#include "graph/status.h"
#include "graph/status_codes.h"

namespace pyflame_rt {

namespace {
// The one list of codes and their names: Python's exception table is built from it
// (status_code_names() -> pyflame_rt.errors), the CLI and the logs print it.
struct CodeName {
  StatusCode code;
  const char* name;
};
constexpr CodeName kCodeNames[] = {
    {StatusCode::kOk, "OK"},
    {StatusCode::kFail, "Fail"},
    {StatusCode::kInvalidArgument, "InvalidArgument"},
    {StatusCode::kNoSuchFile, "NoSuchFile"},
    {StatusCode::kInvalidProtobuf, "InvalidProtobuf"},
    {StatusCode::kInvalidGraph, "InvalidGraph"},
    {StatusCode::kNotImplemented, "NotImplemented"},
    {StatusCode::kNotFound, "NotFound"},
    {StatusCode::kRuntimeError, "RuntimeError"},
    {StatusCode::kResourceExhausted, "ResourceExhausted"},
    {StatusCode::kUnavailable, "Unavailable"},
    {StatusCode::kDeadlineExceeded, "DeadlineExceeded"},
};
}  // namespace

const char* status_code_name(StatusCode code) {
  for (const auto& c : kCodeNames) {
    if (c.code == code) return c.name;
  }
  return "Unknown";
}

std::vector<std::string> status_code_names() {
  std::vector<std::string> names;
  for (const auto& c : kCodeNames) names.push_back(c.name);
  return names;
}

std::string Status::to_string() const {
  if (ok()) return "OK";
  return std::string(status_code_name(code_)) + ": " + message_;
}

Status Status::with_context(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + message_);
}

}  // namespace pyflame_rt
