// Status and StatusOr: how errors travel on the data path (no exceptions there).
// Each front-end owns one table that turns a Code into its wire form
// (RESP error text, gRPC status, HTTP code); handlers never build error strings ad hoc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cellar {

enum class Code : uint8_t {
  kOk = 0,
  kNotFound,           // a cache (not a key: a missing key is a normal result)
  kAlreadyExists,      // a cache that exists
  kInvalidArgument,    // a request the API refuses (message says why)
  kSyntax,             // malformed options in a command
  kWrongType,          // an operation on a key holding another type
  kNotInteger,         // value is not a base-10 int64, or the operation overflowed
  kNotFloat,           // value is not a finite double
  kOverflow,           // increment or decrement would overflow
  kOutOfMemory,        // memory limit reached and nothing can be evicted
  kTooLarge,           // item or request above the size limit
  kUnauthenticated,    // no or bad credentials
  kPermissionDenied,   // credentials valid, action not allowed
  kFailedPrecondition,
  kResourceExhausted,
  kUnavailable,        // shutting down, not reachable
  kDeadlineExceeded,   // the caller's deadline passed before the work ran
  kUnimplemented,      // a method this server does not offer
  kInternal,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  explicit Status(Code code, std::string message = {}) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {}     // NOLINT: implicit by design
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cellar
