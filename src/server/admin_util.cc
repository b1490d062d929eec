#include "server/admin_util.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/json.h"

namespace cellar::server {

HttpResponse JsonResponse(int status, std::string body) {
  return {status, "application/json", std::move(body)};
}

HttpResponse ErrorResponse(int status, std::string_view msg) {
  return JsonResponse(status, "{\"error\":\"" + JsonEscape(msg) + "\"}");
}

int HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case Code::kOk:
      return 200;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kResourceExhausted:
      return 429;
    case Code::kUnavailable:
      return 503;
    case Code::kDeadlineExceeded:  // the metadata store did not answer in time
      return 504;
    default:
      return 500;
  }
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string raw(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    std::replace(raw.begin(), raw.end(), '+', ' ');  // the query-string rule, before decoding
    std::string out;
    if (!PercentDecode(raw, &out)) return raw;  // a malformed escape stays as sent
    return out;
  }
  return std::nullopt;
}

std::string_view RawPath(const HttpRequest& req) {
  std::string_view t = req.target;
  return t.substr(0, t.find('?'));
}

std::optional<std::string> PathSegment(const HttpRequest& req, std::string_view prefix,
                                       std::string_view suffix) {
  std::string_view raw = RawPath(req);
  if (raw.size() <= prefix.size() + suffix.size() || raw.substr(0, prefix.size()) != prefix ||
      raw.substr(raw.size() - suffix.size()) != suffix) {
    return std::nullopt;
  }
  std::string_view segment = raw.substr(prefix.size(), raw.size() - prefix.size() - suffix.size());
  if (!suffix.empty() && segment.find('/') != std::string_view::npos) return std::nullopt;
  std::string out;
  if (!PercentDecode(segment, &out) || out.empty()) return std::nullopt;
  return out;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ParseFlatJsonObject(
    std::string_view text) {
  std::optional<Json> doc = ParseJson(text);
  if (!doc) {
    return Status(Code::kInvalidArgument, "bad JSON body: not one valid JSON value in UTF-8");
  }
  if (doc->type != Json::Type::kObject) {
    return Status(Code::kInvalidArgument, "bad JSON body: expected a JSON object");
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : doc->members) {
    switch (value.type) {
      case Json::Type::kString:
      case Json::Type::kNumber:
        out.emplace_back(name, value.text);
        break;
      case Json::Type::kBool:
        out.emplace_back(name, value.boolean ? "true" : "false");
        break;
      case Json::Type::kNull:
        out.emplace_back(name, "null");
        break;
      case Json::Type::kArray:
      case Json::Type::kObject:
        return Status(Code::kInvalidArgument, "bad JSON body: member '" + name +
                                                  "': expected a number or a string, not a "
                                                  "nested value");
    }
  }
  return out;
}

}  // namespace cellar::server
