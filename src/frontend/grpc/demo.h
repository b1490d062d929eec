// --demo (web.h): the page at GET /demo and the token-vending endpoint POST /demo/token it
// uses. Demo mode only: the endpoint hands a disposable token to whoever asks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "frontend/grpc/services.h"

namespace cellar::grpc {

inline constexpr std::string_view kDemoCache = "demo";  // tenant default's; made at start
inline constexpr std::string_view kDemoTopic = "chat";
inline constexpr std::string_view kDemoCounterKey = "counter";
inline constexpr int64_t kDemoTokenSeconds = 600;

struct DemoToken {
  std::string json;  // {"token":..,"expires_at":..,"name":..,"cache":..,"topic":..,"key":..}
};
// A disposable token of tenant default for the demo's key and topic only, named `name`
// (letters, digits, space, '-' and '_', at most 24; it is the publisher_id others see).
StatusOr<DemoToken> MintDemoToken(const ServiceContext& ctx, std::string_view name);

std::string_view DemoPageHtml();

}  // namespace cellar::grpc
