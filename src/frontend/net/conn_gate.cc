#include "frontend/net/conn_gate.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>

#include "common/logging.h"

namespace cellar::net {

namespace {

ConnectionOptions g_options;
std::atomic<int64_t> g_process_open{0};
// Until Configure runs (unit tests): no process budget.
std::atomic<int64_t> g_process_budget{INT64_MAX};

int64_t OpenDescriptors() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  int64_t n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return std::max<int64_t>(0, n - 3);  // ".", ".." and the DIR's own descriptor
}

}  // namespace

std::string_view PortName(Port port) {
  switch (port) {
    case Port::kResp: return "resp";
    case Port::kApi: return "api";
    case Port::kCount: break;
  }
  return "unknown";
}

std::string_view TimeoutName(TimeoutKind kind) {
  switch (kind) {
    case TimeoutKind::kPreAuth: return "preauth";
    case TimeoutKind::kIdle: return "idle";
    case TimeoutKind::kWrite: return "write";
    case TimeoutKind::kCount: break;
  }
  return "none";
}

TimeoutKind PastTimeout(const ConnectionOptions& o, const SweepView& v) {
  if (!v.authed) {
    const bool past = o.preauth_timeout_ms != 0 && v.age_ms >= o.preauth_timeout_ms;
    return past ? TimeoutKind::kPreAuth : TimeoutKind::kCount;
  }
  // Replies that wait that long for a peer that does not read: what they hold goes back.
  if (o.write_timeout_ms != 0 && v.stalled_ms >= o.write_timeout_ms) return TimeoutKind::kWrite;
  if (o.idle_timeout_ms != 0 && v.idle_ok && v.quiet_ms >= o.idle_timeout_ms) {
    return TimeoutKind::kIdle;
  }
  return TimeoutKind::kCount;
}

ConnectionGate::Slot& ConnectionGate::Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    Release();
    gate_ = o.gate_;
    o.gate_ = nullptr;
  }
  return *this;
}

void ConnectionGate::Slot::Release() {
  if (gate_ == nullptr) return;
  gate_->open_.fetch_sub(1, std::memory_order_relaxed);
  g_process_open.fetch_sub(1, std::memory_order_relaxed);
  gate_ = nullptr;
}

ConnectionGate& ConnectionGate::Of(Port port) {
  static ConnectionGate gates[static_cast<size_t>(Port::kCount)];
  return gates[static_cast<size_t>(port)];
}

const ConnectionOptions& ConnectionGate::options() { return g_options; }
int64_t ConnectionGate::ProcessOpen() { return g_process_open.load(std::memory_order_relaxed); }
int64_t ConnectionGate::ProcessBudget() {
  return g_process_budget.load(std::memory_order_relaxed);
}

int64_t ConnectionGate::Configure(const ConnectionOptions& options) {
  g_options = options;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return INT64_MAX;
  const int64_t in_use = OpenDescriptors();
  // As Redis does for maxclients: ask for what the caps need (both ports full, the reserve
  // and what is open now), up to the hard limit.
  const uint64_t caps = options.max_connections == 0
                            ? lim.rlim_max
                            : 2ull * options.max_connections + options.fd_reserve +
                                  static_cast<uint64_t>(in_use);
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < caps) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max == RLIM_INFINITY ? caps : std::min<rlim_t>(caps, lim.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  const int64_t budget =
      lim.rlim_cur == RLIM_INFINITY
          ? INT64_MAX
          : std::max<int64_t>(0, static_cast<int64_t>(lim.rlim_cur) - in_use - options.fd_reserve);
  g_process_budget.store(budget, std::memory_order_relaxed);
  LOG_INFO("msg=\"connection limits\" max_connections_per_port={} fd_limit={} fds_in_use={} "
           "fd_reserve={} client_connection_budget={}",
           options.max_connections, lim.rlim_cur == RLIM_INFINITY ? -1 : int64_t(lim.rlim_cur),
           in_use, options.fd_reserve, budget);
  return budget;
}

ConnectionGate::Slot ConnectionGate::TryAcquire() {
  const uint32_t cap = g_options.max_connections;
  const int64_t port_open = open_.fetch_add(1, std::memory_order_relaxed) + 1;
  const int64_t process_open = g_process_open.fetch_add(1, std::memory_order_relaxed) + 1;
  Slot slot(this);
  if ((cap != 0 && port_open > cap) ||
      process_open > g_process_budget.load(std::memory_order_relaxed)) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return Slot();  // `slot` gives both counts back
  }
  return slot;
}

}  // namespace cellar::net
