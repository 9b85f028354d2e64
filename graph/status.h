// Status and Expected<T>: how every core function reports failure.
//
// Core code never throws across module boundaries; it returns a Status (or an Expected<T>
// holding either a value or a Status). The Python binding turns each StatusCode into its own
// exception type, so the code names the *kind* of failure and the message names the thing,
// the expected and the received value.
#pragma once

#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace pyflame_rt {

enum class StatusCode {
  kOk = 0,
  kFail,             // generic failure
  kInvalidArgument,  // bad input from the caller: feed, option, shape, dtype
  kNoSuchFile,       // a path that does not exist or cannot be read
  kInvalidProtobuf,  // a model file that does not parse
  kInvalidGraph,     // a model that parses but is not a valid graph (cycle, dangling edge)
  kNotImplemented,   // an op, attribute or dtype we do not support (yet)
  kNotFound,         // an unknown name: output, input, node
  kRuntimeError,     // a kernel failed while running
  kResourceExhausted,
  kUnavailable,
  kDeadlineExceeded,
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

  // Prefixes context ("Conv 'conv1': ") to the message, keeping the code.
  Status with_context(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Builds a message from stream-able parts: errorf(StatusCode::kInvalidArgument, "input '", n, "'").
template <typename... Args>
Status make_status(StatusCode code, Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return Status(code, os.str());
}
template <typename... Args>
Status invalid_argument(Args&&... args) {
  return make_status(StatusCode::kInvalidArgument, std::forward<Args>(args)...);
}
template <typename... Args>
Status not_implemented(Args&&... args) {
  return make_status(StatusCode::kNotImplemented, std::forward<Args>(args)...);
}
template <typename... Args>
Status invalid_graph(Args&&... args) {
  return make_status(StatusCode::kInvalidGraph, std::forward<Args>(args)...);
}
template <typename... Args>
Status runtime_error(Args&&... args) {
  return make_status(StatusCode::kRuntimeError, std::forward<Args>(args)...);
}

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace pyflame_rt

#define PFRT_CONCAT_INNER(a, b) a##b
#define PFRT_CONCAT(a, b) PFRT_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                               \
  do {                                                      \
    ::pyflame_rt::Status _pfrt_status = (expr);             \
    if (!_pfrt_status.ok()) return _pfrt_status;            \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

// ASSIGN_OR_RETURN(auto x, compute()); declares x from an Expected, or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(PFRT_CONCAT(_pfrt_expected_, __LINE__), lhs, expr)
