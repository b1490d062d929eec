#include "topics/topics.h"

#include <string>

#include "common/check.h"

namespace cellar::topics {

Topics::Limit Topics::LimitOf(const Status& st) {
  if (st.code() != Code::kResourceExhausted) return Limit::kNone;
  const std::string_view m = st.message();
  if (m.starts_with(kMessageSizeText)) return Limit::kMessageSize;
  if (m.starts_with(kPublishRateText)) return Limit::kPublishRate;
  if (m.starts_with(kSubscriptionsText)) return Limit::kSubscriptions;
  return Limit::kNone;
}

Status Topics::CheckName(std::string_view name, bool pattern) const {
  if (pattern && name.size() > kMaxPatternBytes) {
    return Status(Code::kInvalidArgument,
                  "the pattern is " + std::to_string(name.size()) + " bytes, over the limit of " +
                      std::to_string(kMaxPatternBytes) +
                      " (a pattern is matched against every publish to the cache)");
  }
  if (options_.max_name_bytes == 0 || name.size() <= options_.max_name_bytes) return Status::Ok();
  return Status(Code::kInvalidArgument,
                std::string(pattern ? "the pattern" : "the topic name") + " is " +
                    std::to_string(name.size()) + " bytes, over the limit of " +
                    std::to_string(options_.max_name_bytes) + " (--topic-max-name-bytes)");
}

Status Topics::AdmitPublish(uint32_t cache_id, std::string_view topic, size_t value_bytes) {
  if (Status st = CheckName(topic, false); !st.ok()) return st;
  return admission_ == nullptr ? Status::Ok() : admission_->AdmitPublish(cache_id, value_bytes);
}

Status Topics::AdmitSubscription(uint32_t cache_id) {
  if (admission_ != nullptr) {
    if (Status st = admission_->AdmitSubscription(cache_id); !st.ok()) return st;
  }
  live_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

void Topics::ReleaseSubscription(uint32_t cache_id) {
  if (admission_ != nullptr) admission_->ReleaseSubscription(cache_id);
  live_.fetch_sub(1, std::memory_order_relaxed);
}

int64_t Topics::LiveSubscriptions() const { return live_.load(std::memory_order_relaxed); }


void Topics::NoteSlowSubscriber() { slow_cutoffs_.fetch_add(1, std::memory_order_relaxed); }

EncodingId Topics::RegisterEncoding(Encoder encoder) {
  if (!CELLAR_BUG_CHECK(encoders_.size() < kMaxEncodings, "too many topic encodings")) return 0;
  encoders_.push_back(encoder);
  return static_cast<EncodingId>(encoders_.size() - 1);
}

}  // namespace cellar::topics
