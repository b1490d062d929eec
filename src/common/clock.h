// Time sources. The engine takes a Clock so tests can move time by hand.
#pragma once

#include <chrono>
#include <cstdint>

namespace cellar {

// Milliseconds since the Unix epoch (TTLs and EXPIREAT are wall-clock in Redis's model).
using UnixMillis = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixMillis NowMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixMillis NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock* Get() {
    static SystemClock clock;
    return &clock;
  }
};

// A clock that moves only when told; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(UnixMillis now = 1'700'000'000'000) : now_(now) {}
  UnixMillis NowMillis() const override { return now_; }
  void Advance(int64_t ms) { now_ += ms; }
  void Set(UnixMillis now) { now_ = now; }

 private:
  UnixMillis now_;
};

inline uint64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Steady-clock milliseconds: deadlines (gRPC's grpc-timeout) are measured on this clock.
inline int64_t SteadyMillis() { return static_cast<int64_t>(MonotonicNanos() / 1'000'000); }

}  // namespace cellar
