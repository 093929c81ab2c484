// selffeed::Status and selffeed::Result<T>: how errors cross module boundaries.
//
// Every fallible call that a user, the disk or the network can make fail returns a
// Status (or a Result<T> carrying either a value or a non-OK Status). Exceptions never
// cross a public API; broken invariants abort through SELFFEED_CHECK.
//
//   Result<std::unique_ptr<Store>> store = Store::open({.path = dir});
//   if (!store.ok()) return store.status();
//   SELFFEED_RETURN_IF_ERROR((*store)->put_conversation(c));
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace selffeed {

// A subset of the canonical (Abseil/gRPC) codes.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kResourceExhausted,
  kUnavailable,
  kDeadlineExceeded,
  kCancelled,
  kDataLoss,
  kInternal,
};

// Stable lower-case name of a code ("invalid_argument"); used in logs and error frames.
std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>", or "ok".
  std::string to_string() const;

  // Returns a copy whose message is "<context>: <message>".
  Status with_context(std::string_view context) const;

  // Makes dropping an error explicit and greppable.
  void ignore_error() const {}

  friend bool operator==(const Status&, const Status&) = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status invalid_argument_error(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status not_found_error(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status already_exists_error(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status failed_precondition_error(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status resource_exhausted_error(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status unavailable_error(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status deadline_exceeded_error(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status cancelled_error(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status data_loss_error(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

namespace internal {
[[noreturn]] void check_failed(const char* file, int line, const char* condition, std::string_view detail);
}  // namespace internal

// Holds either a value or a non-OK Status. Accessing the value of an error is a bug.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) internal::check_failed(__FILE__, __LINE__, "!status.ok()", "Result built from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { check_value(); return *value_; }
  const T& value() const& { check_value(); return *value_; }
  T&& value() && { check_value(); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void check_value() const {
    if (!value_) internal::check_failed(__FILE__, __LINE__, "ok()", status_.to_string());
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace selffeed

// Aborts with file and line when `cond` is false. For broken invariants only, never for
// anything a user, the disk or the network can cause.
#define SELFFEED_CHECK(cond)                                                    \
  do {                                                                          \
    if (!(cond)) ::selffeed::internal::check_failed(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define SELFFEED_CONCAT_INNER_(a, b) a##b
#define SELFFEED_CONCAT_(a, b) SELFFEED_CONCAT_INNER_(a, b)

#define SELFFEED_RETURN_IF_ERROR(expr)                      \
  do {                                                      \
    ::selffeed::Status selffeed_status_ = (expr);           \
    if (!selffeed_status_.ok()) return selffeed_status_;    \
  } while (0)

// SELFFEED_ASSIGN_OR_RETURN(auto x, f()); declares x from a Result or returns its error.
#define SELFFEED_ASSIGN_OR_RETURN(lhs, expr) \
  SELFFEED_ASSIGN_OR_RETURN_IMPL_(SELFFEED_CONCAT_(selffeed_result_, __LINE__), lhs, expr)
#define SELFFEED_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                                    \
  if (!result.ok()) return result.status();                \
  lhs = std::move(result).value()
