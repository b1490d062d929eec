#include "cli/cli_common.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace cellar::cli {

std::string Trim(std::string s) {
  const char* space = " \t\r\n";
  s.erase(s.find_last_not_of(space) + 1);
  s.erase(0, s.find_first_not_of(space));
  return s;
}

std::string KeyHint(bool have_key) {
  if (have_key) {
    return "cellar: hint: the admin key given (--key, CELLAR_ADMIN_KEY or DATA_DIR/admin.key) was "
           "not accepted";
  }
  return "cellar: hint: no admin key found; pass --key or set CELLAR_ADMIN_KEY, or point "
         "--data-dir at the server's data directory (it holds admin.key)";
}

void FailHttp(const AdminResponse& res) {
  std::string message;
  if (std::optional<Json> doc = ParseJson(res.body)) {
    if (const Json* e = doc->Find("error"); e && e->type == Json::Type::kString) message = e->text;
  }
  if (message.empty()) {
    message = Trim(res.body);
    if (message.size() > 200) message = message.substr(0, 200) + "...";
    if (message.empty()) message = "request failed";
  }
  std::string hint;
  if (res.status == 401 || res.status == 403) {
    hint = "\n";
    hint += KeyHint(/*have_key=*/res.status == 403);
  }
  throw CliError(fmt::format("{} (HTTP {}){}", message, res.status, hint));
}

AdminResponse CheckedRequest(AdminClient& client, const std::string& method,
                             const std::string& target, const std::string& body,
                             const std::string& content_type) {
  AdminResponse res = client.Request(method, target, body, content_type);
  if (res.status < 200 || res.status >= 300) FailHttp(res);
  return res;
}

Json ParseBody(const AdminResponse& res) {
  std::optional<Json> doc = ParseJson(res.body);
  if (!doc || doc->type != Json::Type::kObject) {
    throw CliError("the admin API sent an answer that is not a JSON object");
  }
  return *doc;
}

// Prints rows under a header with each column as wide as its widest cell; columns named in
// `right` (by index) are right-aligned (numbers).
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& right) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      const bool last = i + 1 == cells.size();
      const bool r = i < right.size() && right[i];
      if (i > 0) out += "  ";
      if (r) {
        out += fmt::format("{:>{}}", cells[i], width[i]);
      } else if (last) {
        out += cells[i];  // no trailing blanks
      } else {
        out += fmt::format("{:<{}}", cells[i], width[i]);
      }
    }
    fmt::print("{}\n", out);
  };
  line(header);
  for (const auto& r : rows) line(r);
}

std::string Text(const Json* v) {
  if (v == nullptr) return "-";
  if (v->type == Json::Type::kString || v->type == Json::Type::kNumber) return v->text;
  if (v->type == Json::Type::kBool) return v->boolean ? "true" : "false";
  return "-";
}

uint64_t Uint(const Json* v) {
  if (v == nullptr) return 0;
  return v->AsUint().value_or(0);
}

}  // namespace cellar::cli
