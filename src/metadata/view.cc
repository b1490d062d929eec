#include "metadata/view.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "common/logging.h"

namespace cellar::metadata {

namespace {
constexpr auto kApplyWait = std::chrono::seconds(5);
constexpr int kMaxAttempts = 16;

// A pause of 1..cap_ms milliseconds, different per thread.
int Jitter(int cap_ms) {
  thread_local std::minstd_rand rng(
      static_cast<uint32_t>(std::hash<std::thread::id>()(std::this_thread::get_id())));
  return 1 + static_cast<int>(rng() % static_cast<uint32_t>(cap_ms));
}
}  // namespace

void Txn::Fence(const std::map<std::string, Entry, std::less<>>& entries, std::string key) {
  auto it = entries.find(key);
  compares.push_back(Compare{std::move(key), it == entries.end() ? 0 : it->second.mod_revision});
}

View::View(Store& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}

View::~View() {
  StopRefreshing();
  if (watching_) store_.Unwatch(watch_id_);
}

void View::StopRefreshing() {
  std::vector<std::function<void()>> dropped;
  std::multimap<int64_t, std::function<void()>> unseen;
  {
    std::lock_guard lock(refresh_mu_);
    refresh_stop_ = true;
    dropped.swap(refresh_waiting_);
  }
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    unseen.swap(when_visible_);
  }
  refresh_cv_.notify_all();
  if (refresh_thread_.joinable()) refresh_thread_.join();
}

void View::RefreshAsync(std::function<void()> done) {
  {
    std::lock_guard lock(refresh_mu_);
    if (refresh_stop_) return;
    refresh_waiting_.push_back(std::move(done));
    if (!refresh_thread_.joinable()) refresh_thread_ = std::thread([this] { RefreshLoop(); });
  }
  refresh_cv_.notify_one();
}

void View::RefreshLoop() {
  std::unique_lock lock(refresh_mu_);
  auto next_start = std::chrono::steady_clock::now();
  for (;;) {
    refresh_cv_.wait(lock, [&] { return refresh_stop_ || !refresh_waiting_.empty(); });
    if (refresh_stop_) return;
    // Spaced: a burst of misses shares one read, and misses that never stop (a name that
    // does not exist) cost at most one read per spacing.
    if (refresh_cv_.wait_until(lock, next_start, [&] { return refresh_stop_; })) return;
    std::vector<std::function<void()>> waiting;
    waiting.swap(refresh_waiting_);
    lock.unlock();
    next_start = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRefreshSpacingMs);
    if (Status st = Refresh(); !st.ok()) {
      LOG_WARN("msg=\"refresh from the metadata store failed\" prefix=\"{}\" error=\"{}\"",
               prefix_, st.message());
    }
    for (auto& fn : waiting) fn();
    waiting.clear();  // their captures go here, before the lock is taken again
    lock.lock();
  }
}

Status View::Start(ApplyFn apply, std::function<void()> changed) {
  apply_ = std::move(apply);
  changed_ = std::move(changed);
  watch_id_ = store_.Watch(prefix_, [this](const Update& u) { OnUpdate(u); });
  watching_ = true;
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, kApplyWait, [this] { return visible_ >= 0; })) {
    return Status(Code::kUnavailable, "no answer from the metadata store (" + store_.Describe() +
                                          ") within 5 s");
  }
  return Status::Ok();
}

int64_t View::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

void View::OnUpdate(const Update& u) {
  int64_t applied = -1;
  {
    std::lock_guard lock(mu_);
    if (u.reset) {
      if (u.snapshot.revision <= revision_) return;
      entries_.clear();
      for (const Entry& e : u.snapshot.entries) entries_[e.key] = e;
      revision_ = u.snapshot.revision;
      apply_(u);
    } else {
      Update fresh;
      for (const Change& c : u.changes) {
        if (c.mod_revision <= revision_) continue;
        fresh.changes.push_back(c);
      }
      if (fresh.changes.empty()) return;
      for (const Change& c : fresh.changes) {
        if (c.value) {
          entries_[c.key] = Entry{c.key, *c.value, c.mod_revision};
        } else {
          entries_.erase(c.key);
        }
        revision_ = std::max(revision_, c.mod_revision);
      }
      apply_(fresh);
    }
    applied = revision_;
  }
  if (changed_) changed_();
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    visible_ = std::max(visible_, applied);
    auto end = when_visible_.upper_bound(visible_);
    for (auto it = when_visible_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    when_visible_.erase(when_visible_.begin(), end);
  }
  cv_.notify_all();
  for (auto& fn : ready) fn();
}

void View::WhenVisible(int64_t revision, std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;  // dropped: what it would post to is going
    if (visible_ < revision) {
      when_visible_.emplace(revision, std::move(fn));
      return;
    }
  }
  fn();
}

void View::WaitFor(int64_t revision) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, kApplyWait, [&] { return visible_ >= revision; })) {
    LOG_WARN("msg=\"metadata committed but not yet seen by this node's watch\" store=\"{}\" "
             "revision={} seen={}",
             store_.Describe(), revision, visible_);
  }
}

Status View::Refresh() {
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  auto snap = store_.Read(prefix_);
  if (!snap.ok()) return snap.status();
  const int64_t revision = snap->revision;
  Update reset;
  reset.reset = true;
  reset.snapshot = std::move(*snap);
  OnUpdate(reset);
  // The watch may have applied that revision (or a later one) first, its `changed` still
  // running on the store's thread: wait for it, so what follows sees the change's effects.
  WaitFor(revision);
  return Status::Ok();
}

StatusOr<int64_t> View::Mutate(const std::function<StatusOr<Txn>()>& plan) {
  Status last;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    StatusOr<Txn> txn = [&] {
      std::lock_guard lock(mu_);
      return plan();
    }();
    if (!txn.ok()) return txn.status();
    if (txn->writes.empty()) return revision();
    auto rev = store_.Commit(txn->compares, txn->writes);
    if (rev.ok()) {
      if (*rev == 0) return revision();  // nothing changed: nothing to wait for
      WaitFor(*rev);
      return rev;
    }
    if (rev.status().code() != Code::kFailedPrecondition) return rev.status();
    last = rev.status();
    // Two writers on one key: the loser needs two round trips (read, commit) to the winner's
    // one and may lose again; a short random pause, growing per try, lets it through.
    if (attempt > 0) {
      const int cap_ms = std::min(1 << attempt, 64);
      std::this_thread::sleep_for(std::chrono::milliseconds(Jitter(cap_ms)));
    }
    // Someone wrote first: catch up from the store itself (the watch may lag), then re-plan.
    if (Status st = Refresh(); !st.ok()) return st;
  }
  return Status(Code::kUnavailable, "metadata kept changing concurrently; try again (" +
                                        std::string(last.message()) + ")");
}

}  // namespace cellar::metadata
