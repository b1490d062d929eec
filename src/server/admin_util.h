// Helpers shared by the admin API's route files: JSON answers, the status -> HTTP code table,
// query parameters, and a reader for the small flat JSON objects the API accepts as bodies.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"  // JsonEscape
#include "common/status.h"
#include "server/admin_http.h"

namespace cellar::server {

HttpResponse JsonResponse(int status, std::string body);
// {"error":"msg"}
HttpResponse ErrorResponse(int status, std::string_view msg);
// The one table from Status codes to HTTP statuses for the admin API.
int HttpStatusOf(const Status& st);

// The value of `name` in a URL query (percent-decoded, '+' as space); nullopt if absent.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

// The request's path as sent (still percent-encoded), so a route can tell a literal "/limits"
// suffix from a cache name that contains "%2Flimits".
std::string_view RawPath(const HttpRequest& req);

// If the raw path is `prefix` + one encoded segment + `suffix` (suffix may be empty), the decoded
// segment; else nullopt. The segment must be non-empty and, with a suffix, contain no raw '/'.
std::optional<std::string> PathSegment(const HttpRequest& req, std::string_view prefix,
                                       std::string_view suffix);

// A flat JSON object's members in document order: strings unescaped, numbers as written, true
// and false as words, null as "null". Nested objects and arrays are refused. INVALID_ARGUMENT
// says where the text went wrong.
StatusOr<std::vector<std::pair<std::string, std::string>>> ParseFlatJsonObject(
    std::string_view text);

}  // namespace cellar::server
