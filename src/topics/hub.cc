// The hubs: one per loop, owning its subscriptions, the topics whose slot is its own (their
// sequence numbers and replay rings; on a fleet, mirrors of topics another node numbers), and
// the messages between loops. Wire-neutral: a message is stored once, with each front-end's
// encoding made once at publish (Topics::RegisterEncoding).
#include "topics/topics.h"

#include <absl/base/thread_annotations.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <random>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/clock.h"
#include "common/glob.h"
#include "common/hash.h"
#include "common/logging.h"
#include "routing/router.h"

namespace cellar::topics {

namespace asio = boost::asio;

namespace {

// ---- Keys -----------------------------------------------------------------------------------

struct Key {
  uint32_t cache;
  std::string name;
};
struct KeyView {
  uint32_t cache;
  std::string_view name;
};
struct KeyHasher {
  using is_transparent = void;
  size_t operator()(const Key& k) const { return KeyHash(k.cache, k.name); }
  size_t operator()(const KeyView& k) const { return KeyHash(k.cache, k.name); }
};
struct KeyEq {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return a.cache == b.cache && std::string_view(a.name) == std::string_view(b.name);
  }
};

uint64_t RandomPage() {
  // Below 2^53: JavaScript SDKs may hold the page in a double, and must give it back exactly.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return (rng() & ((uint64_t{1} << 53) - 1)) | 1;
}

}  // namespace

// ---- A loop's hub ---------------------------------------------------------------------------

class Topics::Hub {
 public:
  Hub(Topics* topics, uint32_t loop, asio::io_context* io)
      : topics_(topics), loop_(loop), io_(io), out_(topics->num_loops()), timer_(*io) {}

  // --- Messages between hubs: one queue per destination, flushed once per loop turn, so
  // every event from this loop to another arrives in the order it was sent.
  struct Event {
    MessagePtr item;                // an item to deliver, or
    std::function<void(Hub&)> fn;   // anything else, run on the destination's hub
  };
  void Send(uint32_t to, Event e) {
    out_[to].push_back(std::move(e));
    if (!flush_scheduled_) {
      flush_scheduled_ = true;
      asio::post(*io_, [this] { Flush(); });
    }
  }
  void Flush() {
    flush_scheduled_ = false;
    for (uint32_t to = 0; to < out_.size(); ++to) {
      if (out_[to].empty()) continue;
      Hub* dest = topics_->hubs_[to].get();
      asio::post(*dest->io_, [dest, events = std::move(out_[to])]() mutable {
        dest->Receive(events);
      });
      out_[to].clear();
    }
  }
  void Receive(std::vector<Event>& events) {
    for (Event& e : events) {
      if (e.item) {
        DeliverItem(e.item);
      } else {
        e.fn(*this);
      }
    }
  }

  // --- Owner side --------------------------------------------------------------------------
  // A topic this loop keeps: numbered here, or (on a fleet, `link` set) a mirror of a topic
  // another node numbers, fed by one relay to that node.
  class Link;
  struct Owned {
    uint64_t next_seq = 1;
    uint64_t page = 0;  // a mirror's: 0 until its first relay joined
    std::deque<MessagePtr> ring;
    size_t ring_bytes = 0;
    std::vector<uint32_t> subs_by_loop;
    uint32_t subs_total = 0;
    uint32_t relay_subs = 0;  // of subs_total: other nodes' relays, served here
    // Who is counted, by MemberKey(loop, id): a Leave counts down only a subscription that
    // joined this very state (a refused join, or one counted by a state since dropped, does
    // not).
    absl::flat_hash_set<uint64_t> members;
    int64_t last_active_ms = 0;
    std::unique_ptr<Link> link;  // a mirror's relay
  };
  // A cache's pattern, registered on every loop's hub by the loops that hold subscriptions
  // to it: how many on each, and in all. Keyed by the pattern, so registering is a lookup and
  // a publish matches each distinct pattern once (not once per loop holding it).
  struct PatternReg {
    std::vector<uint32_t> by_loop;
    uint32_t total = 0;
  };
  struct PendingJoin {
    uint32_t from;
    SubId id;
    uint64_t resume_at, page;
  };

  // A mirror's upstream: the relay's sink. Its callbacks find the mirror by key (the map may
  // move values), and a reconnect timer's callback checks the link's generation, so nothing
  // refers to a link that is gone.
  class Link final : public Sink {
   public:
    Link(Hub* hub, uint32_t cache, std::string_view name, uint64_t gen)
        : hub_(hub), cache_(cache), name_(name), gen_(gen), timer_(*hub->io_) {}
    ~Link() override { timer_.cancel(); }
    void OnJoined(SubId, uint64_t latest, uint64_t page) override {
      if (Owned* t = hub_->MirrorOf(*this)) hub_->LinkJoined(*t, latest, page);
    }
    void OnReady(SubId) override {}
    void OnDiscontinuity(SubId, uint64_t, uint64_t next, uint64_t page) override {
      if (Owned* t = hub_->MirrorOf(*this)) hub_->LinkDiscontinuity(*t, next, page);
    }
    void OnItem(SubId, const MessagePtr& m) override {
      if (Owned* t = hub_->MirrorOf(*this)) hub_->LinkItem(*t, m);
    }
    void OnReplayed(SubId) override {
      if (Owned* t = hub_->MirrorOf(*this)) hub_->LinkReplayed(*t);
    }
    void OnEnd(SubId, const Status& why) override {
      if (Owned* t = hub_->MirrorOf(*this)) hub_->LinkEnded(*t, why);
    }

    Hub* hub_;
    const uint32_t cache_;
    const std::string name_;
    const uint64_t gen_;
    uint64_t handle = 0;        // the open relay (0: none)
    bool synced = false;        // the mirror has the owner's state: joins are answered
    uint64_t joined_latest = 0;
    int64_t backoff_ms = 0;
    std::vector<PendingJoin> pending;  // joins that came before the first sync
    asio::steady_timer timer_;
  };

  static uint64_t MemberKey(uint32_t loop, SubId id) { return (uint64_t{loop} << 52) ^ id; }

  Fleet::Owner OwnerOf(uint32_t cache, std::string_view name) {
    Fleet* f = topics_->fleet_;
    return f == nullptr ? Fleet::Owner::kHere : f->OwnerOf(loop_, cache, name);
  }

  Owned& NewState(uint32_t cache, std::string_view name) {
    Owned& t = owned_[Key{cache, std::string(name)}];
    t.page = RandomPage();
    t.subs_by_loop.assign(topics_->num_loops(), 0);
    t.last_active_ms = SteadyMillis();
    return t;
  }

  // The state of a topic this node numbers (the gateway routed a publish here, or a join
  // found the slot here): a mirror here takes over, a handed-over state is adopted.
  Owned& Numbered(uint32_t cache, std::string_view name) {
    auto it = owned_.find(KeyView{cache, name});
    if (it == owned_.end()) {
      Owned& t = NewState(cache, name);
      Assume(cache, name, t);
      return t;
    }
    if (it->second.link != nullptr || (!staged_.empty() && staged_.contains(KeyView{cache, name}))) {
      Assume(cache, name, it->second);
    }
    return it->second;
  }

  // For a join: numbered here if the slot is here, else a mirror (made, and its relay opened,
  // if there is none yet).
  Owned& ForJoin(uint32_t cache, std::string_view name) {
    const Fleet::Owner o = OwnerOf(cache, name);
    auto it = owned_.find(KeyView{cache, name});
    if (o == Fleet::Owner::kHere) return Numbered(cache, name);
    if (it != owned_.end()) return it->second;  // a mirror, or numbered here until the map says
    Owned& t = NewState(cache, name);
    t.page = 0;
    t.link = std::make_unique<Link>(this, cache, name, ++link_gen_);
    Connect(t);
    return t;
  }

  // This node numbers the topic from now on. From a handed-over state (a move) if one came:
  // the mirror's subscribers get what the relay had not brought yet; else, for a mirror
  // (its owner left without handing it over, so what that owner numbered last may never
  // have reached here), a new page, and its subscribers hear of the gap.
  void Assume(uint32_t cache, std::string_view name, Owned& t) {
    std::vector<PendingJoin> pending;
    bool had_items = false;  // the state has delivered something (its page means something)
    const bool was_mirror = t.link != nullptr;
    if (was_mirror) {
      pending = std::move(t.link->pending);
      had_items = t.link->synced;
      CloseLink(t);
      Count(takeovers_);
    } else {
      had_items = t.subs_total > t.relay_subs || !t.ring.empty();
    }
    auto st = staged_.find(KeyView{cache, name});
    if (st != staged_.end()) {
      TopicState s = std::move(st->second.state);
      staged_.erase(st);
      Count(handed_over_);
      const bool same = s.page == t.page;
      if (had_items && same) {
        // What the relay had not brought yet: from the ring; if the ring no longer reaches
        // back that far (the relay fell far behind), the rest is a gap, and said so.
        const uint64_t oldest = s.ring.empty() ? s.next_seq : s.ring.front()->seq;
        if (t.next_seq < oldest) Discontinuity(cache, name, t, oldest - 1, s.page);
        for (const MessagePtr& m : s.ring) {
          if (m->seq >= t.next_seq) FanOut(t, m);
        }
      } else if (had_items) {
        Discontinuity(cache, name, t, s.next_seq - 1, s.page);
      }
      t.next_seq = same ? std::max(t.next_seq, s.next_seq) : s.next_seq;
      t.page = s.page;
      t.ring.clear();
      t.ring_bytes = 0;
      for (MessagePtr& m : s.ring) Keep(t, std::move(m));
    } else if (was_mirror) {
      const uint64_t page = RandomPage();
      if (had_items) Discontinuity(cache, name, t, 0, page);
      t.page = page;
      t.next_seq = 1;
      t.ring.clear();
      t.ring_bytes = 0;
    }
    t.last_active_ms = SteadyMillis();
    for (const PendingJoin& j : pending) SendSync(j.from, j.id, t, j.resume_at, j.page);
  }

  // Every loop with subscriptions to the topic hears of a gap: their subscribers saw up to
  // the state's last number; what follows starts after `next` on `page`.
  void Discontinuity(uint32_t cache, std::string_view name, Owned& t, uint64_t next,
                     uint64_t page) {
    const uint64_t last = t.next_seq - 1;
    for (uint32_t l = 0; l < t.subs_by_loop.size(); ++l) {
      if (t.subs_by_loop[l] == 0) continue;
      Send(l, Event{nullptr, [cache, n = std::string(name), last, next, page](Hub& h) {
                      h.TopicDiscontinuity(cache, n, last, next, page);
                    }});
    }
  }

  // Hands a message to every loop that wants it (subscriptions to the topic, or a matching
  // pattern of the cache), one event per loop; answers how many subscriptions receive it
  // (other nodes' relays not counted: PUBLISH answers the subscribers on the owner's node).
  int64_t FanOut(const Owned& t, const MessagePtr& m) {
    const uint32_t n = topics_->num_loops();
    int64_t receivers = t.subs_total - t.relay_subs;
    std::vector<uint8_t>& dest = dest_scratch_;
    dest.assign(n, 0);
    for (uint32_t l = 0; l < n; ++l) dest[l] = t.subs_by_loop[l] > 0;
    if (auto pit = patterns_.find(m->cache_id); pit != patterns_.end()) {
      for (const auto& [pattern, reg] : pit->second) {
        if (GlobMatch(pattern, m->topic)) {
          receivers += reg.total;
          for (uint32_t l = 0; l < n; ++l) dest[l] |= reg.by_loop[l] > 0;
        }
      }
    }
    for (uint32_t l = 0; l < n; ++l) {
      if (dest[l]) Send(l, Event{m, nullptr});
    }
    return receivers;
  }

  // The ring keeps recent messages for resuming subscribers, bounded by count and bytes.
  void Keep(Owned& t, MessagePtr m) {
    const Options& o = topics_->options_;
    if (o.replay_messages == 0) return;
    t.ring_bytes += m->footprint();
    t.ring.push_back(std::move(m));
    while (!t.ring.empty() &&
           (t.ring.size() > o.replay_messages || t.ring_bytes > o.replay_bytes)) {
      t.ring_bytes -= t.ring.front()->footprint();
      t.ring.pop_front();
    }
  }

  void Publish(const api::Request& req, api::Reply& reply) {
    Owned& t = Numbered(req.cache_id, req.key);
    auto m = std::make_shared<TopicMessage>();
    m->cache_id = req.cache_id;
    m->seq = t.next_seq++;
    m->page = t.page;
    m->binary = (req.flags & api::kPublishBinary) != 0;
    m->topic.assign(req.key);
    m->publisher_id.assign(req.check);
    m->value.assign(req.value);
    // Each front-end's wire form, once per message (not once per subscriber).
    topics_->Encode(*m);
    t.last_active_ms = SteadyMillis();
    MessagePtr shared = std::move(m);
    Count(published_);
    reply.integer = FanOut(t, shared);
    Keep(t, std::move(shared));
  }

  // A subscription of loop `from` joins (relay: another node's, served here); answered with
  // the sync on the same channel that carries the topic's later items to that loop. A relay
  // for a topic this node does not number (the other node's map is newer or older) ends, so
  // that it finds the owner.
  void Join(uint32_t from, SubId id, uint32_t cache, const std::string& name, uint64_t resume_at,
            uint64_t page, bool relay) {
    if (relay && OwnerOf(cache, name) != Fleet::Owner::kHere) {
      Send(from, Event{nullptr, [id](Hub& h) {
                         h.EndOne(id, Status(Code::kUnavailable,
                                             "this node does not own the topic; retry"));
                       }});
      return;
    }
    Owned& t = ForJoin(cache, name);
    if (!t.members.insert(MemberKey(from, id)).second) return;  // joined already
    t.subs_by_loop[from]++;
    t.subs_total++;
    if (relay) t.relay_subs++;
    if (t.link != nullptr && !t.link->synced) {
      t.link->pending.push_back(PendingJoin{from, id, resume_at, page});
      return;
    }
    SendSync(from, id, t, resume_at, page);
  }

  void SendSync(uint32_t from, SubId id, const Owned& t, uint64_t resume_at, uint64_t page) {
    const uint64_t latest = t.next_seq - 1;
    struct Disc {
      bool any = false;
      uint64_t last = 0, next = 0, page = 0;
    } disc;
    std::vector<MessagePtr> replay;
    if (page == kWholeRing) {
      replay.assign(t.ring.begin(), t.ring.end());
    } else if (resume_at != 0) {
      const uint64_t oldest = t.ring.empty() ? t.next_seq : t.ring.front()->seq;
      if (page == t.page && resume_at <= t.next_seq) {
        if (resume_at < oldest) {
          // Part of what was asked for has left the ring: say so, then replay the rest.
          disc = {true, resume_at - 1, oldest - 1, t.page};
        }
        for (const MessagePtr& m : t.ring) {
          if (m->seq >= resume_at) replay.push_back(m);
        }
      } else {
        // Another page (a restart, or state dropped and made again) or a sequence from the
        // future: continuity is broken; items go on after the latest.
        disc = {true, resume_at - 1, latest, t.page};
      }
    }
    Send(from, Event{nullptr, [id, latest, tp = t.page, disc, replay = std::move(replay)](Hub& h) {
                       h.OnSync(id, latest, tp, disc.any, disc.last, disc.next, disc.page, replay);
                     }});
  }

  void Leave(uint32_t from, SubId id, uint32_t cache, const std::string& name, bool relay) {
    auto it = owned_.find(KeyView{cache, name});
    if (it == owned_.end()) return;
    Owned& t = it->second;
    if (t.members.erase(MemberKey(from, id)) == 0) return;  // not counted by this state
    t.subs_by_loop[from]--;
    t.subs_total--;
    if (relay) t.relay_subs--;
    if (t.link != nullptr) {  // a join still waiting for the mirror's first sync: forgotten
      auto& p = t.link->pending;
      p.erase(std::remove_if(p.begin(), p.end(),
                             [from, id](const PendingJoin& j) { return j.from == from && j.id == id; }),
              p.end());
    }
    if (t.subs_total != 0) return;
    if (t.link != nullptr) {  // nobody here listens: the relay goes, and the copy with it
      CloseLink(t);
      owned_.erase(it);
    } else if (t.ring.empty()) {
      owned_.erase(it);
    }
  }

  // --- Mirrors: the relay's events.
  Owned* MirrorOf(const Link& l) {
    auto it = owned_.find(KeyView{l.cache_, l.name_});
    if (it == owned_.end() || it->second.link.get() != &l) return nullptr;
    return &it->second;
  }

  void Connect(Owned& t) {
    Link& l = *t.link;
    // The first relay copies the owner's whole ring; later ones resume after the last item.
    l.handle = topics_->fleet_->OpenRelay(loop_, &l, l.cache_, l.name_,
                                          t.page == 0 ? 1 : t.next_seq,
                                          t.page == 0 ? kWholeRing : t.page);
    Count(relays_opened_);
  }

  void CloseLink(Owned& t) {
    if (t.link == nullptr) return;
    if (t.link->handle != 0) topics_->fleet_->CloseRelay(loop_, t.link->handle);
    t.link.reset();
  }

  void LinkJoined(Owned& t, uint64_t latest, uint64_t page) {
    t.link->joined_latest = latest;
    if (t.page == 0) {  // the first relay: the owner's whole ring follows
      t.page = page;
      t.next_seq = 1;
    }
  }

  // The owner could not continue where the mirror stopped (another page, or items left its
  // ring): the mirror's subscribers hear of the gap; the copy starts again after `next`.
  void LinkDiscontinuity(Owned& t, uint64_t next, uint64_t page) {
    Discontinuity(t.link->cache_, t.link->name_, t, next, page);
    t.page = page;
    t.next_seq = next + 1;
    t.ring.clear();
    t.ring_bytes = 0;
  }

  void LinkItem(Owned& t, const MessagePtr& m) {
    if (m->page != t.page || m->seq < t.next_seq) return;  // seen already
    t.next_seq = m->seq + 1;
    t.last_active_ms = SteadyMillis();
    Count(relayed_);
    FanOut(t, m);
    Keep(t, m);
  }

  void LinkReplayed(Owned& t) {
    Link& l = *t.link;
    t.next_seq = std::max(t.next_seq, l.joined_latest + 1);
    l.backoff_ms = 0;
    if (l.synced) return;
    l.synced = true;
    std::vector<PendingJoin> pending = std::move(l.pending);
    l.pending.clear();
    for (const PendingJoin& j : pending) SendSync(j.from, j.id, t, j.resume_at, j.page);
  }

  // The relay ended (the owner moved or left, or the connection broke): try again shortly,
  // from the last item, wherever the map then says the topic is. Subscribers here keep their
  // subscriptions and hear nothing meanwhile.
  void LinkEnded(Owned& t, const Status& why) {
    Link& l = *t.link;
    l.handle = 0;
    l.backoff_ms = std::clamp<int64_t>(l.backoff_ms * 2, 10, 1000);
    if (l.backoff_ms >= 1000) {
      LOG_WARN("msg=\"topic relay keeps failing; retrying\" cache={} why=\"{}\"", l.cache_,
               why.message());
    }
    l.timer_.expires_after(std::chrono::milliseconds(l.backoff_ms));
    l.timer_.async_wait([this, cache = l.cache_, name = l.name_, gen = l.gen_](
                            const boost::system::error_code& ec) {
      if (ec) return;
      auto it = owned_.find(KeyView{cache, name});
      if (it == owned_.end() || it->second.link == nullptr || it->second.link->gen_ != gen) return;
      Reconnect(cache, name, it->second);
    });
  }

  void Reconnect(uint32_t cache, std::string_view name, Owned& t) {
    switch (OwnerOf(cache, name)) {
      case Fleet::Owner::kHere:
        return Assume(cache, name, t);
      case Fleet::Owner::kElsewhere:
        return Connect(t);
      case Fleet::Owner::kUnknown:
        return LinkEnded(t, Status(Code::kUnavailable, "no slot map yet"));
    }
  }

  // The slot map changed: topics numbered here whose slot went elsewhere end the relays
  // served here (after every item numbered here: the same channels) and become mirrors if
  // they have subscribers here; mirrors whose slot came here take over.
  void Reevaluate() {
    if (topics_->fleet_ == nullptr) return;
    std::vector<Key> gone;
    for (auto& [key, t] : owned_) {
      const Fleet::Owner o = OwnerOf(key.cache, key.name);
      if (t.link != nullptr) {
        if (o == Fleet::Owner::kHere) Assume(key.cache, key.name, t);
        continue;
      }
      if (o != Fleet::Owner::kElsewhere) continue;
      if (t.relay_subs > 0) {
        for (uint32_t l = 0; l < t.subs_by_loop.size(); ++l) {
          if (t.subs_by_loop[l] == 0) continue;
          Send(l, Event{nullptr, [c = key.cache, n = key.name](Hub& h) { h.EndRelays(c, n); }});
        }
      }
      if (t.subs_total > t.relay_subs) {
        t.link = std::make_unique<Link>(this, key.cache, key.name, ++link_gen_);
        t.link->synced = true;  // its ring and numbers are the owner's: joins go on being served
        Connect(t);
      } else {
        gone.push_back(key);
      }
    }
    for (const Key& k : gone) owned_.erase(KeyView{k.cache, k.name});
    DropStaleStaged();
    // Handed-over topics whose slot is here now continue their numbering at once (not only
    // at their next publish or join, which might come after the hand-over expired).
    std::vector<Key> adopt;
    for (const auto& [key, st] : staged_) {
      if (OwnerOf(key.cache, key.name) == Fleet::Owner::kHere) adopt.push_back(key);
    }
    for (const Key& k : adopt) Numbered(k.cache, k.name);
  }

  // A move of [first, last] here was aborted (or is about to start): hand-overs for it are void.
  void DropStaged(uint32_t first, uint32_t last) {
    for (auto it = staged_.begin(); it != staged_.end();) {
      const uint32_t slot = routing::SlotOf(KeyHash(it->first.cache, it->first.name));
      if (slot >= first && slot <= last) {
        staged_.erase(it++);
      } else {
        ++it;
      }
    }
  }

  // Topic states handed over for slots moving here.
  struct Staged {
    TopicState state;
    int64_t at_ms;
  };
  // A handed-over state is held to this node's own bounds: a name within max_name_bytes, at
  // most kMaxStaged states waiting (more are not kept: those topics continue on a new page,
  // with a discontinuity, as if their owner had died), and once adopted a ring within its
  // replay limits (Assume keeps it through Keep: a resume before what is left hears of the gap).
  static constexpr size_t kMaxStaged = 100'000;
  void Stage(TopicState s) {
    if (!topics_->CheckName(s.topic, false).ok()) return;
    const uint32_t cache = s.cache_id;
    std::string name = s.topic;
    if (staged_.size() >= kMaxStaged && !staged_.contains(KeyView{cache, name})) {
      static std::atomic<bool> logged{false};
      if (!logged.exchange(true)) {
        LOG_WARN("msg=\"too many topic hand-overs waiting; later ones are not kept\" limit={}",
                 kMaxStaged);
      }
      return;
    }
    staged_.insert_or_assign(Key{cache, std::move(name)}, Staged{std::move(s), SteadyMillis()});
  }
  void DropStaleStaged() {
    const int64_t now = SteadyMillis();
    for (auto it = staged_.begin(); it != staged_.end();) {
      if (now - it->second.at_ms > 60'000) {
        staged_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  void Export(uint32_t first, uint32_t last, std::vector<TopicState>& out) const {
    for (const auto& [key, t] : owned_) {
      if (t.link != nullptr) continue;
      const uint32_t slot = routing::SlotOf(KeyHash(key.cache, key.name));
      if (slot < first || slot > last) continue;
      TopicState s;
      s.cache_id = key.cache;
      s.topic = key.name;
      s.page = t.page;
      s.next_seq = t.next_seq;
      s.ring.assign(t.ring.begin(), t.ring.end());
      out.push_back(std::move(s));
    }
  }

  void AddPattern(uint32_t from, uint32_t cache, const std::string& pattern) {
    PatternReg& r = patterns_[cache][pattern];
    if (r.by_loop.empty()) r.by_loop.assign(topics_->num_loops(), 0);
    r.by_loop[from]++;
    r.total++;
  }

  void RemovePattern(uint32_t from, uint32_t cache, const std::string& pattern) {
    auto it = patterns_.find(cache);
    if (it == patterns_.end()) return;
    auto rit = it->second.find(pattern);
    if (rit == it->second.end() || rit->second.by_loop[from] == 0) return;
    rit->second.by_loop[from]--;
    if (--rit->second.total == 0) it->second.erase(rit);
    if (it->second.empty()) patterns_.erase(it);
  }

  // --- Local side --------------------------------------------------------------------------
  struct Sub {
    SubId id = 0;
    Sink* sink = nullptr;  // null once removed (kept until no delivery is running)
    uint32_t cache = 0;
    std::string name;      // topic or pattern
    bool pattern = false;
    bool ready = false;
    bool heartbeat = false;
    bool active = false;   // got something since the last heartbeat tick
    uint32_t acks_missing = 0;  // pattern: owners that have not registered it yet
    uint32_t pos = 0;      // index in its LocalTopic / pattern list
    uint64_t last_seq = 0;
    void* tag = nullptr;   // the sink's, handed back with each item
    int64_t expires_at_s = 0;  // the subscriber's token expiry (0: never)
    bool relay = false;    // another node's relay (no admission, no memory charge)
  };
  struct SubList {
    std::vector<Sub*> subs;
    uint32_t holes = 0;  // null entries left by removals during a delivery
  };

  StatusOr<SubId> Subscribe(Sink* sink, uint32_t cache, std::string_view name, uint64_t resume_at,
                            uint64_t page, bool heartbeat, bool pattern, void* tag,
                            int64_t expires_at_s, bool relay = false) {
    if (Status st = topics_->CheckName(name, pattern); !st.ok()) return st;
    if (!relay) {
      if (Status st = topics_->AdmitSubscription(cache); !st.ok()) return st;
    }
    auto sub = std::make_unique<Sub>();
    Sub* s = sub.get();
    s->id = next_id_++;
    s->sink = sink;
    s->cache = cache;
    s->name.assign(name);
    s->pattern = pattern;
    s->heartbeat = heartbeat;
    s->tag = tag;
    s->expires_at_s = expires_at_s;
    s->relay = relay;
    if (expires_at_s != 0) ++expiring_;
    subs_[s->id] = std::move(sub);
    if (!relay && topics_->on_memory_) {
      topics_->on_memory_(loop_, cache, topics_->SubscriptionBytes(s->name, pattern));
    }
    SubList& list = pattern ? local_patterns_[cache] : local_[Key{cache, std::string(name)}];
    s->pos = static_cast<uint32_t>(list.subs.size());
    list.subs.push_back(s);
    const uint32_t me = loop_;
    const SubId id = s->id;
    if (pattern) {
      s->acks_missing = topics_->num_loops();
      for (uint32_t l = 0; l < topics_->num_loops(); ++l) {
        Send(l, Event{nullptr, [me, id, cache, p = s->name](Hub& owner) {
                        owner.AddPattern(me, cache, p);
                        owner.Send(me, Event{nullptr, [id](Hub& h) { h.OnPatternAck(id); }});
                      }});
      }
    } else {
      const uint32_t owner = routing::ShardOf(cache, name, topics_->num_loops());
      Send(owner, Event{nullptr, [me, id, cache, n = s->name, resume_at, page, relay](Hub& o) {
                          o.Join(me, id, cache, n, resume_at, page, relay);
                        }});
    }
    return id;
  }

  void Unsubscribe(SubId id) {
    auto it = subs_.find(id);
    if (it == subs_.end()) return;
    Sub* s = it->second.get();
    if (s->expires_at_s != 0) --expiring_;
    TellOwners(*s);
    Detach(*s);
    if (!s->relay) topics_->ReleaseSubscription(s->cache);
    if (!s->relay && topics_->on_memory_) {
      topics_->on_memory_(loop_, s->cache, -topics_->SubscriptionBytes(s->name, s->pattern));
    }
    s->sink = nullptr;
    if (delivering_ > 0) graveyard_.push_back(std::move(it->second));
    subs_.erase(it);
  }

  void TellOwners(const Sub& s) {
    const uint32_t me = loop_;
    if (s.pattern) {
      for (uint32_t l = 0; l < topics_->num_loops(); ++l) {
        Send(l, Event{nullptr, [me, c = s.cache, p = s.name](Hub& o) { o.RemovePattern(me, c, p); }});
      }
    } else {
      const uint32_t owner = routing::ShardOf(s.cache, s.name, topics_->num_loops());
      Send(owner, Event{nullptr, [me, id = s.id, c = s.cache, n = s.name, r = s.relay](Hub& o) {
                          o.Leave(me, id, c, n, r);
                        }});
    }
  }

  // Removes the subscription from its list: swapped out at once, or nulled while a delivery
  // is iterating the list (compacted when it ends).
  void Detach(Sub& s) {
    SubList* list = FindList(s.pattern, s.cache, s.name);
    if (list == nullptr || s.pos >= list->subs.size() || list->subs[s.pos] != &s) return;
    if (delivering_ > 0) {
      list->subs[s.pos] = nullptr;
      if (list->holes++ == 0) dirty_.push_back(DirtyRef{s.pattern, s.cache, s.name});
      return;
    }
    RemoveAt(*list, s.pos);
    if (list->subs.empty()) EraseList(s.pattern, s.cache, s.name);
  }

  static void RemoveAt(SubList& list, uint32_t pos) {
    list.subs[pos] = list.subs.back();
    if (list.subs[pos] != nullptr) list.subs[pos]->pos = pos;
    list.subs.pop_back();
  }

  // The list a subscription is on: its topic's, or its cache's patterns.
  SubList* FindList(bool pattern, uint32_t cache, std::string_view name) {
    if (pattern) {
      auto it = local_patterns_.find(cache);
      return it == local_patterns_.end() ? nullptr : &it->second;
    }
    auto it = local_.find(KeyView{cache, name});
    return it == local_.end() ? nullptr : &it->second;
  }

  void EraseList(bool pattern, uint32_t cache, const std::string& name) {
    if (pattern) {
      local_patterns_.erase(cache);
    } else {
      auto it = local_.find(KeyView{cache, name});
      if (it != local_.end()) local_.erase(it);
    }
  }

  struct DirtyRef {
    bool pattern;
    uint32_t cache;
    std::string name;
  };

  // Brackets sink callbacks: removals inside them only null list entries.
  void BeginDelivery() { ++delivering_; }
  void EndDelivery() {
    if (--delivering_ > 0) return;
    graveyard_.clear();
    for (const DirtyRef& d : dirty_) {
      SubList* list = FindList(d.pattern, d.cache, d.name);
      if (list == nullptr) continue;
      size_t w = 0;
      for (size_t r = 0; r < list->subs.size(); ++r) {
        if (list->subs[r] == nullptr) continue;
        list->subs[w] = list->subs[r];
        list->subs[w]->pos = static_cast<uint32_t>(w);
        ++w;
      }
      list->subs.resize(w);
      list->holes = 0;
      if (w == 0) EraseList(d.pattern, d.cache, d.name);
    }
    dirty_.clear();
  }

  static constexpr size_t kPrefetchFar = 18, kPrefetchMid = 10, kPrefetchNear = 4;
  static void PrefetchLines(const void* p, size_t bytes) {
    if (p == nullptr) return;
    const char* c = static_cast<const char*>(p);
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off);
  }

  void DeliverItem(const MessagePtr& m) {
    uint64_t delivered = 0;
    BeginDelivery();
    if (auto it = local_.find(KeyView{m->cache_id, m->topic}); it != local_.end()) {
      auto& subs = it->second.subs;
      for (size_t i = 0; i < subs.size(); ++i) {
        const size_t n = subs.size();  // a callback may subscribe (appends; removals leave holes)
        // A fan-out is bound by memory latency: each subscriber's record, sink and state are
        // cold. Ask for them ahead (the record far ahead, what it points at nearer), so
        // their misses overlap instead of stalling one subscriber after another.
        if (i + kPrefetchFar < n) PrefetchLines(subs[i + kPrefetchFar], sizeof(Sub));
        if (i + kPrefetchMid < n) {
          if (const Sub* a = subs[i + kPrefetchMid]; a != nullptr && a->sink != nullptr) {
            PrefetchLines(a->sink, 128);
            PrefetchLines(a->tag, 128);
          }
        }
        if (i + kPrefetchNear < n) {
          if (const Sub* a = subs[i + kPrefetchNear]; a != nullptr && a->sink != nullptr) {
            a->sink->Prefetch(a->tag);
          }
        }
        Sub* s = subs[i];
        if (s == nullptr || !s->ready || m->seq <= s->last_seq) continue;
        s->last_seq = m->seq;
        s->active = true;
        ++delivered;
        s->sink->OnItemTagged(s->id, s->tag, m);
      }
    }
    if (auto it = local_patterns_.find(m->cache_id); it != local_patterns_.end()) {
      auto& subs = it->second.subs;
      for (size_t i = 0; i < subs.size(); ++i) {
        Sub* s = subs[i];
        if (s == nullptr || !s->ready || !GlobMatch(s->name, m->topic)) continue;
        s->active = true;
        ++delivered;
        s->sink->OnItem(s->id, m);
      }
    }
    Count(deliveries_, delivered);
    EndDelivery();
  }

  Sub* Live(SubId id) {
    auto it = subs_.find(id);
    return it == subs_.end() ? nullptr : it->second.get();
  }

  void OnSync(SubId id, uint64_t latest, uint64_t topic_page, bool disc, uint64_t last,
              uint64_t next, uint64_t page, const std::vector<MessagePtr>& replay) {
    Sub* s = Live(id);
    if (s == nullptr) return;
    BeginDelivery();
    s->ready = true;
    s->active = true;
    s->sink->OnJoined(id, latest, topic_page);
    if (s->sink != nullptr) s->sink->OnReady(id);
    if (disc && s->sink != nullptr) s->sink->OnDiscontinuity(id, last, next, page);
    for (const MessagePtr& m : replay) {
      if (s->sink == nullptr) break;  // unsubscribed by a callback
      if (m->seq <= s->last_seq) continue;
      s->last_seq = m->seq;
      Count(deliveries_);
      s->sink->OnItemTagged(id, s->tag, m);
    }
    // Items the owner numbered before the join reached this loop only if another local
    // subscription wanted them, and were dropped here while this one was pending; from now on
    // only later ones arrive.
    if (s->sink != nullptr) {
      s->last_seq = std::max(s->last_seq, latest);
      s->sink->OnReplayed(id);
    }
    EndDelivery();
  }

  void OnPatternAck(SubId id) {
    Sub* s = Live(id);
    if (s == nullptr || s->acks_missing == 0) return;
    if (--s->acks_missing != 0) return;
    BeginDelivery();
    s->ready = true;
    s->active = true;
    s->sink->OnReady(id);
    EndDelivery();
  }

  // Ends the local subscriptions `matches` picks with `why`; their sinks hear OnEnd.
  template <typename Pred>
  void EndWhere(Pred matches, const Status& why) {
    std::vector<SubId> ids;
    for (auto& [id, s] : subs_) {
      if (matches(*s)) ids.push_back(id);
    }
    BeginDelivery();
    for (SubId id : ids) {
      Sub* s = Live(id);
      if (s == nullptr) continue;  // ended by an earlier sink's callback
      Sink* sink = s->sink;
      Unsubscribe(id);
      sink->OnEnd(id, why);
    }
    EndDelivery();
  }

  void EndOne(SubId id, const Status& why) {
    EndWhere([id](const Sub& s) { return s.id == id; }, why);
  }

  // Other nodes' relays of a topic that moved away: they end, and find its new owner.
  void EndRelays(uint32_t cache, const std::string& name) {
    EndWhere([cache, &name](const Sub& s) {
               return s.relay && !s.pattern && s.cache == cache && s.name == name;
             },
             Status(Code::kUnavailable, "the topic moved to another node; retry"));
  }

  // A gap in a topic's numbering (its owner changed without handing it over, or a mirror
  // fell out of its owner's ring): the topic's subscriptions here hear it, and take what
  // follows `next` on `page`.
  void TopicDiscontinuity(uint32_t cache, const std::string& name, uint64_t last, uint64_t next,
                          uint64_t page) {
    auto it = local_.find(KeyView{cache, name});
    if (it == local_.end()) return;
    BeginDelivery();
    auto& subs = it->second.subs;
    for (size_t i = 0; i < subs.size(); ++i) {
      Sub* s = subs[i];
      if (s == nullptr || !s->ready || s->sink == nullptr) continue;
      s->sink->OnDiscontinuity(s->id, std::min(last, s->last_seq), next, page);
      s->last_seq = next;
    }
    EndDelivery();
  }

  // Subscriptions whose token expired end with kUnauthenticated (a disposable token's
  // subscriber must not keep listening past its expiry).
  void EndExpired(int64_t now_s) {
    if (expiring_ == 0) return;
    EndWhere([now_s](const Sub& s) { return s.expires_at_s != 0 && now_s >= s.expires_at_s; },
             Status(Code::kUnauthenticated, "token expired"));
  }

  void DropCache(uint32_t cache) {
    EndWhere([cache](const Sub& s) { return s.cache == cache; },
             Status(Code::kNotFound, "the cache was deleted"));
    for (auto it = owned_.begin(); it != owned_.end();) {
      if (it->first.cache == cache) {
        CloseLink(it->second);
        owned_.erase(it++);
      } else {
        ++it;
      }
    }
    for (auto it = staged_.begin(); it != staged_.end();) {
      if (it->first.cache == cache) {
        staged_.erase(it++);
      } else {
        ++it;
      }
    }
    patterns_.erase(cache);
  }

  // --- Timer: heartbeats for idle subscriptions, and dropping idle topic state.
  void StartTimer() {
    stopped_ = false;
    Arm();
  }
  void Arm() {
    if (stopped_) return;
    timer_.expires_after(std::chrono::milliseconds(std::max<int64_t>(topics_->options_.heartbeat_ms, 10)));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped_) return;
      Tick();
      Arm();
    });
  }
  void Tick() {
    EndExpired(SystemClock::Get()->NowMillis() / 1000);
    BeginDelivery();
    std::vector<SubId> idle;
    for (auto& [id, s] : subs_) {
      if (s->heartbeat && s->ready && !s->active) idle.push_back(id);
      s->active = false;
    }
    for (SubId id : idle) {
      if (Sub* s = Live(id); s != nullptr && s->sink != nullptr) s->sink->OnHeartbeat(id);
    }
    EndDelivery();
    const int64_t now = SteadyMillis();
    if (now - last_sweep_ms_ >= 10'000) {
      last_sweep_ms_ = now;
      const int64_t idle_ms = topics_->options_.idle_topic_ms;
      DropStaleStaged();
      for (auto it = owned_.begin(); it != owned_.end();) {
        if (it->second.subs_total == 0 && now - it->second.last_active_ms >= idle_ms) {
          CloseLink(it->second);
          owned_.erase(it++);
        } else {
          ++it;
        }
      }
    }
  }
  void Stop() {
    stopped_ = true;
    timer_.cancel();
    for (auto it = owned_.begin(); it != owned_.end();) {  // mirrors go (nothing relays now)
      if (it->second.link != nullptr) {
        CloseLink(it->second);
        owned_.erase(it++);
      } else {
        ++it;
      }
    }
    EndWhere([](const Sub&) { return true; },
             Status(Code::kUnavailable, "the server is shutting down"));
  }

  // --- Introspection.
  void CollectChannels(uint32_t cache, const std::string& pattern, std::vector<std::string>& out) const {
    for (const auto& [key, t] : owned_) {
      if (key.cache != cache || t.subs_total == t.relay_subs) continue;
      if (pattern.empty() || GlobMatch(pattern, key.name)) out.push_back(key.name);
    }
  }
  int64_t NumSub(uint32_t cache, const std::string& name) const {
    auto it = owned_.find(KeyView{cache, name});
    return it == owned_.end() ? 0 : it->second.subs_total - it->second.relay_subs;
  }
  int64_t NumPat(uint32_t cache) const {
    int64_t n = 0;
    for (const auto& [id, s] : subs_) n += s->pattern && s->cache == cache;
    return n;
  }

  asio::io_context* io() const { return io_; }
  // Written by this loop only; read by /metrics on another.
  static void Count(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> published_{0}, deliveries_{0};
  std::atomic<uint64_t> relays_opened_{0}, relayed_{0}, takeovers_{0}, handed_over_{0};

 private:
  Topics* topics_;
  const uint32_t loop_;
  asio::io_context* io_;
  std::vector<std::vector<Event>> out_;
  bool flush_scheduled_ = false;
  std::vector<uint8_t> dest_scratch_;

  absl::flat_hash_map<Key, Owned, KeyHasher, KeyEq> owned_;
  absl::flat_hash_map<uint32_t, absl::flat_hash_map<std::string, PatternReg>> patterns_;
  absl::flat_hash_map<Key, Staged, KeyHasher, KeyEq> staged_;
  uint64_t link_gen_ = 0;

  absl::flat_hash_map<SubId, std::unique_ptr<Sub>> subs_;
  absl::flat_hash_map<Key, SubList, KeyHasher, KeyEq> local_;
  absl::flat_hash_map<uint32_t, SubList> local_patterns_;
  SubId next_id_ = 1;
  uint32_t expiring_ = 0;  // subscriptions with a token expiry
  int delivering_ = 0;
  std::vector<std::unique_ptr<Sub>> graveyard_;
  std::vector<DirtyRef> dirty_;

  asio::steady_timer timer_;
  bool stopped_ = true;
  int64_t last_sweep_ms_ = 0;
};

// ---- Topics ---------------------------------------------------------------------------------

Topics::Topics(std::vector<asio::io_context*> loops, Options options)
    : loops_(std::move(loops)), options_(options) {
  for (uint32_t i = 0; i < loops_.size(); ++i) {
    hubs_.push_back(std::make_unique<Hub>(this, i, loops_[i]));
  }
}

Topics::~Topics() = default;

void Topics::Start() {
  for (auto& h : hubs_) {
    asio::post(*h->io(), [hub = h.get()] { hub->StartTimer(); });
  }
}

void Topics::Stop() {
  for (auto& h : hubs_) {
    asio::post(*h->io(), [hub = h.get()] { hub->Stop(); });
  }
}

Topics::Counters Topics::Snapshot() const {
  Counters c;
  c.subscriptions = LiveSubscriptions();
  for (const auto& h : hubs_) {
    c.published += h->published_.load(std::memory_order_relaxed);
    c.deliveries += h->deliveries_.load(std::memory_order_relaxed);
  }
  c.slow_cutoffs = slow_cutoffs_.load(std::memory_order_relaxed);
  return c;
}

metrics::Source Topics::Metrics() const {
  static constexpr const metrics::Def* kDefs[] = {
      &kSubscriptionsOpen, &kMessagesPublished, &kDeliveries, &kSlowSubscribers,
      &kRelaysOpened,      &kRelayedItems,      &kTakeovers,  &kHandOvers};
  return {kDefs, [this](metrics::Sink& sink) {
            const Counters c = Snapshot();
            sink.Add(kSubscriptionsOpen, "", static_cast<uint64_t>(std::max<int64_t>(0, c.subscriptions)));
            sink.Add(kMessagesPublished, "", c.published);
            sink.Add(kDeliveries, "", c.deliveries);
            sink.Add(kSlowSubscribers, "", c.slow_cutoffs);
            const FleetCounters f = FleetSnapshot();
            sink.Add(kRelaysOpened, "", f.relays_opened);
            sink.Add(kRelayedItems, "", f.relayed_items);
            sink.Add(kTakeovers, "", f.takeovers);
            sink.Add(kHandOvers, "", f.handed_over);
          }};
}

void Topics::Publish(uint32_t loop, const api::Request& req, api::Reply& reply) {
  hubs_[loop]->Publish(req, reply);
}

StatusOr<SubId> Topics::Subscribe(uint32_t loop, Sink* sink, uint32_t cache_id,
                                  std::string_view topic, uint64_t resume_at, uint64_t page,
                                  bool heartbeat, void* tag, int64_t expires_at_s) {
  // kWholeRing is the relays' marker, never a page a client may name: like any page that is
  // not the topic's (pages are below 2^53), it gets a discontinuity, not the whole ring.
  if (page == kWholeRing) page = kWholeRing - 1;
  return hubs_[loop]->Subscribe(sink, cache_id, topic, resume_at, page, heartbeat, false, tag,
                                expires_at_s);
}

StatusOr<SubId> Topics::SubscribeRelay(uint32_t loop, Sink* sink, uint32_t cache_id,
                                       std::string_view topic, uint64_t resume_at, uint64_t page,
                                       void* tag) {
  return hubs_[loop]->Subscribe(sink, cache_id, topic, resume_at, page, false, false, tag, 0,
                                /*relay=*/true);
}

void Topics::DropHandOvers(uint32_t first_slot, uint32_t last_slot) {
  for (auto& h : hubs_) {
    asio::post(*h->io(), [hub = h.get(), first_slot, last_slot] {
      hub->DropStaged(first_slot, last_slot);
    });
  }
}

void Topics::RoutesChanged() {
  for (auto& h : hubs_) {
    asio::post(*h->io(), [hub = h.get()] { hub->Reevaluate(); });
  }
}

void Topics::Encode(TopicMessage& message) const {
  for (size_t i = 0; i < encoders_.size(); ++i) encoders_[i](message, message.encoded[i]);
}

Topics::FleetCounters Topics::FleetSnapshot() const {
  FleetCounters c;
  constexpr auto r = std::memory_order_relaxed;
  for (const auto& h : hubs_) {
    c.relays_opened += h->relays_opened_.load(r);
    c.relayed_items += h->relayed_.load(r);
    c.takeovers += h->takeovers_.load(r);
    c.handed_over += h->handed_over_.load(r);
  }
  return c;
}

StatusOr<SubId> Topics::PSubscribe(uint32_t loop, Sink* sink, uint32_t cache_id,
                                   std::string_view pattern, int64_t expires_at_s) {
  return hubs_[loop]->Subscribe(sink, cache_id, pattern, 0, 0, false, true, nullptr,
                                expires_at_s);
}

void Topics::Unsubscribe(uint32_t loop, SubId id) { hubs_[loop]->Unsubscribe(id); }

void Topics::DropCache(uint32_t loop, uint32_t cache_id) {
  hubs_[loop]->DropCache(cache_id);
}

void Topics::AfterDeliveries(uint32_t origin, std::function<void()> done) {
  // origin -> every owner -> every loop -> origin, each hop behind what the sender queued
  // before it (one ordered outbox per loop pair). The last hop's events are posted after the
  // delivering loop's sink callbacks, so the sinks' posted flushes run before the ack is seen.
  struct State {
    uint32_t pending;
    std::function<void()> done;
  };
  const uint32_t n = num_loops();
  auto state = std::make_shared<State>(State{n * n, std::move(done)});
  Hub& from = *hubs_[origin];
  for (uint32_t o = 0; o < n; ++o) {
    from.Send(o, Hub::Event{nullptr, [state, origin, n](Hub& owner) {
      for (uint32_t l = 0; l < n; ++l) {
        owner.Send(l, Hub::Event{nullptr, [state, origin](Hub& loop) {
          loop.Send(origin, Hub::Event{nullptr, [state](Hub&) {
            if (--state->pending != 0) return;
            std::function<void()> d = std::move(state->done);
            state->done = nullptr;
            d();
          }});
        }});
      }
    }});
  }
}

namespace {
// Runs fn on every loop's hub, then done on `origin` (results gathered by the caller).
template <typename Fn>
void OnEveryHub(std::vector<std::unique_ptr<Topics::Hub>>& hubs, uint32_t origin, Fn fn,
                std::function<void()> done) {
  auto pending = std::make_shared<uint32_t>(static_cast<uint32_t>(hubs.size()));
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  asio::io_context* home = hubs[origin]->io();
  for (uint32_t i = 0; i < hubs.size(); ++i) {
    Topics::Hub* h = hubs[i].get();
    asio::post(*h->io(), [h, i, fn, pending, shared_done, home] {
      fn(i, *h);
      asio::post(*home, [pending, shared_done] {
        if (--*pending == 0) (*shared_done)();
      });
    });
  }
}
}  // namespace

void Topics::ExportRange(uint32_t origin, uint32_t first_slot, uint32_t last_slot,
                         std::function<void(std::vector<TopicState>)> done) {
  auto parts = std::make_shared<std::vector<std::vector<TopicState>>>(num_loops());
  OnEveryHub(
      hubs_, origin,
      [parts, first_slot, last_slot](uint32_t i, Hub& h) {
        h.Export(first_slot, last_slot, (*parts)[i]);
      },
      [parts, done = std::move(done)] {
        std::vector<TopicState> all;
        for (auto& p : *parts) {
          for (auto& s : p) all.push_back(std::move(s));
        }
        done(std::move(all));
      });
}

void Topics::ImportStates(uint32_t origin, std::vector<TopicState> states,
                          std::function<void()> done) {
  auto by_loop = std::make_shared<std::vector<std::vector<TopicState>>>(num_loops());
  for (TopicState& s : states) {
    (*by_loop)[routing::ShardOf(s.cache_id, s.topic, num_loops())].push_back(std::move(s));
  }
  OnEveryHub(
      hubs_, origin,
      [by_loop](uint32_t i, Hub& h) {
        for (TopicState& s : (*by_loop)[i]) h.Stage(std::move(s));
      },
      std::move(done));
}

void Topics::Channels(uint32_t origin, uint32_t cache_id, std::string pattern,
                      std::function<void(std::vector<std::string>)> done) {
  auto parts = std::make_shared<std::vector<std::vector<std::string>>>(num_loops());
  auto pat = std::make_shared<std::string>(std::move(pattern));
  OnEveryHub(
      hubs_, origin,
      [parts, pat, cache_id](uint32_t i, Hub& h) { h.CollectChannels(cache_id, *pat, (*parts)[i]); },
      [parts, done = std::move(done)] {
        std::vector<std::string> all;
        for (auto& p : *parts) {
          for (auto& s : p) all.push_back(std::move(s));
        }
        done(std::move(all));
      });
}

void Topics::NumSub(uint32_t origin, uint32_t cache_id, std::vector<std::string> topics,
                    std::function<void(std::vector<int64_t>)> done) {
  auto names = std::make_shared<std::vector<std::string>>(std::move(topics));
  auto counts = std::make_shared<std::vector<std::vector<int64_t>>>(num_loops());
  OnEveryHub(
      hubs_, origin,
      [names, counts, cache_id](uint32_t i, Hub& h) {
        auto& c = (*counts)[i];
        for (const auto& n : *names) c.push_back(h.NumSub(cache_id, n));
      },
      [names, counts, done = std::move(done)] {
        std::vector<int64_t> sum(names->size(), 0);
        for (const auto& c : *counts) {
          for (size_t k = 0; k < c.size(); ++k) sum[k] += c[k];
        }
        done(std::move(sum));
      });
}

void Topics::NumPat(uint32_t origin, uint32_t cache_id, std::function<void(int64_t)> done) {
  auto counts = std::make_shared<std::vector<int64_t>>(num_loops(), 0);
  OnEveryHub(
      hubs_, origin, [counts, cache_id](uint32_t i, Hub& h) { (*counts)[i] = h.NumPat(cache_id); },
      [counts, done = std::move(done)] {
        int64_t n = 0;
        for (int64_t c : *counts) n += c;
        done(n);
      });
}

}  // namespace cellar::topics
