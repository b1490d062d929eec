#include "common/status.h"

namespace cellar {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kSyntax: return "SYNTAX";
    case Code::kWrongType: return "WRONG_TYPE";
    case Code::kNotInteger: return "NOT_INTEGER";
    case Code::kNotFloat: return "NOT_FLOAT";
    case Code::kOverflow: return "OVERFLOW";
    case Code::kOutOfMemory: return "OUT_OF_MEMORY";
    case Code::kTooLarge: return "TOO_LARGE";
    case Code::kUnauthenticated: return "UNAUTHENTICATED";
    case Code::kPermissionDenied: return "PERMISSION_DENIED";
    case Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Code::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case Code::kUnimplemented: return "UNIMPLEMENTED";
    case Code::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  std::string s(CodeName(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace cellar
