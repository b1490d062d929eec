// Admission for topics: what topics ask before a publish or a subscription. The gateway's
// tenancy (gateway/tenancy.h) answers, beside every other limit of a cache and its tenant, so
// one subsystem holds all of them; topics keeps no limits of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace cellar::topics {

// A refusal's message starts with one of these (Topics::LimitOf tells them apart; Momento's
// SDKs pick their error by such words).
inline constexpr std::string_view kMessageSizeText = "Request size limit exceeded for this account";
inline constexpr std::string_view kPublishRateText = "Too many operations";
inline constexpr std::string_view kSubscriptionsText = "Topic subscriptions limit exceeded";

// Any thread. A refusal is kResourceExhausted, counted per cache by the admission.
class Admission {
 public:
  virtual ~Admission() = default;
  // A publish of `value_bytes` to a cache: its message size limit, then its publish rate.
  virtual Status AdmitPublish(uint32_t cache_id, size_t value_bytes) = 0;
  // One more subscription of a cache: its cap, then its tenant's over all its caches. Once
  // admitted it counts until ReleaseSubscription.
  virtual Status AdmitSubscription(uint32_t cache_id) = 0;
  virtual void ReleaseSubscription(uint32_t cache_id) = 0;
};

}  // namespace cellar::topics
