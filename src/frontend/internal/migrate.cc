#include "frontend/internal/migrate.h"

#include <algorithm>
#include <vector>

#include <boost/asio/post.hpp>

#include "common/hash.h"
#include "common/logging.h"
#include "frontend/internal/topic_codec.h"
#include "control/cache_registry.h"
#include "routing/router.h"

namespace cellar::internal {

namespace asio = boost::asio;

namespace {

constexpr size_t kChunk = 64;         // keys copied per round trip
constexpr int64_t kScanCount = 512;   // keys asked of a shard per SCAN call
constexpr size_t kPauseAt = 64;       // written keys left over: pause and copy the rest
constexpr int kMaxRounds = 8;         // passes over written keys before pausing anyway
constexpr size_t kStatesFrameBytes = 16u << 20;  // topic states per hand-over frame, about

using Key = std::pair<uint32_t, std::string>;  // (cache id, key)

bool InRange(const Key& k, uint32_t first, uint32_t last) {
  const uint32_t s = routing::SlotOf(KeyHash(k.first, k.second));
  return s >= first && s <= last;
}

}  // namespace

// One purge or copy: its state lives here, shared by the chain of callbacks (all on loop 0).
struct Migrator::Run : std::enable_shared_from_this<Migrator::Run> {
  Migrator* m;
  uint32_t first, last;
  std::string dst;  // empty: a purge
  std::shared_ptr<gateway::MigrationState> state;  // a copy's (null: a purge)
  std::function<void(Status)> done;
  MoveStats stats;
  // The scan: caches x shards, and where it is.
  std::vector<uint32_t> caches;
  size_t cache_i = 0;
  uint32_t shard = 0;
  int64_t cursor = 0;

  // Ends the run (OK or not) once: done is moved out, so nothing refers to the run after.
  void End(Status st) {
    auto d = std::move(done);
    done = nullptr;
    if (d) d(std::move(st));
  }

  // ---- scanning every key of the slots ----
  void Scan(std::function<void(std::vector<Key>, std::function<void()>)> each,
            std::function<void()> finished) {
    if (cache_i >= caches.size()) return finished();
    auto batch = std::make_shared<gateway::Batch>();
    batch->set_local_only(true);
    gateway::Call& c = batch->calls.emplace_back();
    c.req.op = api::Op::kScan;
    c.req.shard = static_cast<int16_t>(shard);
    c.req.cache_id = caches[cache_i];
    c.req.Set(api::Cursor{cursor, kScanCount});
    auto self = shared_from_this();
    m->gateway_.Submit(0, batch.get(), [self, batch, each, finished] {
      const api::Reply& r = batch->calls[0].reply;
      if (!r.status.ok()) return self->End(r.status);
      std::vector<Key> keys;
      for (const std::string& k : r.keys) {
        Key key{self->caches[self->cache_i], k};
        if (InRange(key, self->first, self->last)) keys.push_back(std::move(key));
      }
      self->cursor = r.integer;
      if (self->cursor == 0 && ++self->shard >= self->m->gateway_.num_shards()) {
        self->shard = 0;
        ++self->cache_i;
      }
      each(std::move(keys), [self, each, finished] { self->Scan(each, finished); });
    });
  }

  // ---- deleting keys here ----
  void DeleteHere(std::vector<Key> keys, std::function<void()> next) {
    if (keys.empty()) return next();
    auto batch = std::make_shared<gateway::Batch>();
    batch->set_local_only(true);
    auto owned = std::make_shared<std::vector<Key>>(std::move(keys));
    for (const Key& k : *owned) {
      gateway::Call& c = batch->calls.emplace_back();
      c.req.op = api::Op::kDelete;
      c.req.cache_id = k.first;
      c.req.key = k.second;
    }
    m->gateway_.Submit(0, batch.get(), [batch, owned, next] { next(); });
  }

  // ---- copying keys there: read type and TTL, read the value, write it there ----
  struct Chunk {
    std::vector<Key> keys;
    gateway::Batch meta;   // per key: TYPE, EXPIRETIME
    gateway::Batch value;  // per key: the read its type needs (or none)
    std::vector<int> value_of;  // index into value.calls per key, -1: none
    gateway::Batch write;  // the import sent there
    std::vector<std::vector<std::string_view>> args;
  };

  // The move was aborted (its state ended) or a flush ran under it: stop.
  bool Void() {
    if (state == nullptr) return false;
    std::lock_guard lock(state->mu);
    return state->ended || state->flushed;
  }

  void Copy(std::vector<Key> keys, std::function<void()> next) {
    if (Void()) return End(Status(Code::kUnavailable, "the move was aborted, or a flush ran"));
    if (keys.empty()) return next();
    if (keys.size() > kChunk) {
      std::vector<Key> rest(std::make_move_iterator(keys.begin() + kChunk),
                            std::make_move_iterator(keys.end()));
      keys.resize(kChunk);
      auto self = shared_from_this();
      return Copy(std::move(keys), [self, rest = std::move(rest), next]() mutable {
        self->Copy(std::move(rest), next);
      });
    }
    auto ch = std::make_shared<Chunk>();
    ch->keys = std::move(keys);
    ch->meta.set_local_only(true);
    for (const Key& k : ch->keys) {
      for (api::Op op : {api::Op::kType, api::Op::kExpireTime}) {
        gateway::Call& c = ch->meta.calls.emplace_back();
        c.req.op = op;
        c.req.cache_id = k.first;
        c.req.key = k.second;
      }
    }
    auto self = shared_from_this();
    m->gateway_.Submit(0, &ch->meta, [self, ch, next] { self->ReadValues(ch, next); });
  }

  void ReadValues(std::shared_ptr<Chunk> ch, std::function<void()> next) {
    ch->value.set_local_only(true);
    ch->value_of.assign(ch->keys.size(), -1);
    for (size_t i = 0; i < ch->keys.size(); ++i) {
      const std::string& type = ch->meta.calls[2 * i].reply.value;
      api::Request q;
      q.cache_id = ch->keys[i].first;
      q.key = ch->keys[i].second;
      if (type == "string") {
        q.op = api::Op::kGet;
      } else if (type == "hash") {
        q.op = api::Op::kHGetAll;
        q.Set(api::FieldsForm{api::FieldsForm::kPairs});
      } else if (type == "list") {
        q.op = api::Op::kLRange;
        q.Set(api::IndexRange{0, -1});
      } else if (type == "set") {
        q.op = api::Op::kSMembers;
      } else if (type == "zset") {
        q.op = api::Op::kZRange;
        q.flags = api::kWithScores;
        q.Set(api::IndexRange{0, -1});
      } else {
        continue;  // gone meanwhile: deleted there too
      }
      ch->value_of[i] = static_cast<int>(ch->value.calls.size());
      ch->value.calls.emplace_back().req = q;
    }
    auto self = shared_from_this();
    m->gateway_.Submit(0, &ch->value, [self, ch, next] { self->WriteThere(ch, next); });
  }

  void WriteThere(std::shared_ptr<Chunk> ch, std::function<void()> next) {
    ch->args.resize(ch->keys.size());
    for (size_t i = 0; i < ch->keys.size(); ++i) {
      const Key& k = ch->keys[i];
      auto add = [&](api::Op op) -> api::Request& {
        gateway::Call& c = ch->write.calls.emplace_back();
        c.req.op = op;
        c.req.cache_id = k.first;
        c.req.key = k.second;
        return c.req;
      };
      add(api::Op::kDelete);
      if (ch->value_of[i] < 0) continue;
      const api::Reply& v = ch->value.calls[static_cast<size_t>(ch->value_of[i])].reply;
      const api::Op op = ch->value.calls[static_cast<size_t>(ch->value_of[i])].req.op;
      const int64_t expire_at = ch->meta.calls[2 * i + 1].reply.integer;  // -1: none, -2: gone
      if (!v.status.ok() || expire_at == -2) continue;
      auto& args = ch->args[i];
      for (std::string_view it : v.items) args.push_back(it);
      if (op == api::Op::kGet) {
        if (!v.found) continue;
        api::Request& w = add(api::Op::kSet);
        w.value = v.value;
        if (expire_at > 0) {
          w.flags = api::kSetTtl;
          w.expire_at = expire_at;
        }
        continue;
      }
      if (args.empty()) continue;
      api::Request& w = add(op == api::Op::kHGetAll   ? api::Op::kHSet
                            : op == api::Op::kLRange  ? api::Op::kRPush
                            : op == api::Op::kSMembers ? api::Op::kSAdd
                                                       : api::Op::kZAdd);
      w.args = args;
      if (op == api::Op::kZRange) w.scores = v.scores;
      if (expire_at > 0) {
        api::Request& e = add(api::Op::kExpire);
        e.expire_at = expire_at;
      }
    }
    std::vector<uint32_t> all(ch->write.calls.size());
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    auto self = shared_from_this();
    m->forwarder_.Import(0, dst, ch->write, all, [self, ch, next] {
      for (const gateway::Call& c : ch->write.calls) {
        if (!c.reply.status.ok()) {
          return self->End(Status(c.reply.status.code(), "copying to node " + self->dst + ": " +
                                                              c.reply.status.message()));
        }
      }
      self->next_hook(next);
    });
  }

  void next_hook(const std::function<void()>& next) { next(); }
};

Migrator::Migrator(asio::io_context& loop0, gateway::Gateway& gateway, PeerForwarder& forwarder,
                   topics::Topics* topics)
    : loop0_(loop0), gateway_(gateway), forwarder_(forwarder), topics_(topics) {}

namespace {
std::vector<uint32_t> CacheIds(gateway::Gateway& gw) {
  std::vector<uint32_t> ids;
  for (const auto& c : gw.registry().ListAll()) ids.push_back(c.id);
  return ids;
}
}  // namespace

void Migrator::Purge(uint32_t first, uint32_t last, std::function<void(Status)> done) {
  // Topics handed over for these slots go too (a move here that aborted: void).
  if (topics_ != nullptr) topics_->DropHandOvers(first, last);
  asio::post(loop0_, [this, first, last, done = std::move(done)]() mutable {
    auto run = std::make_shared<Run>();
    run->m = this;
    run->first = first;
    run->last = last;
    run->caches = CacheIds(gateway_);
    run->done = std::move(done);
    run->Scan([run](std::vector<Key> keys, std::function<void()> next) {
                run->DeleteHere(std::move(keys), next);
              },
              [run] {
                run->End(Status::Ok());
              });
  });
}

void Migrator::CopyOut(std::string dst, uint32_t first, uint32_t last,
                       std::function<void(Status, MoveStats)> done) {
  auto state = std::make_shared<gateway::MigrationState>();
  state->first = first;
  state->last = last;
  gateway_.BeginMigration(state);
  asio::post(loop0_, [this, dst = std::move(dst), first, last, state,
                      done = std::move(done)]() mutable {
    auto run = std::make_shared<Run>();
    run->m = this;
    run->first = first;
    run->last = last;
    run->dst = std::move(dst);
    run->state = state;
    run->caches = CacheIds(gateway_);
    auto fin = std::make_shared<std::function<void(Status, MoveStats)>>(std::move(done));
    // Raw: the run calls this itself (Fail / Succeed), so it is alive; a shared_ptr here would
    // be a cycle (run -> done -> run) that never frees.
    run->done = [r = run.get(), fin](Status st) {
      if (*fin) (*fin)(std::move(st), r->stats);
      *fin = nullptr;
    };
    // After the first pass: the keys written meanwhile, again, until few are left; then pause,
    // let every write handed to a shard land, and copy the last ones.
    auto take = [state]() {
      std::lock_guard lock(state->mu);
      std::vector<Key> keys(state->dirty.begin(), state->dirty.end());
      state->dirty.clear();
      return keys;
    };
    auto left = [state]() {
      std::lock_guard lock(state->mu);
      return state->dirty.size();
    };
    auto finish_paused = std::make_shared<std::function<void()>>();
    *finish_paused = [this, run, take, state] {
      gateway_.PauseMigration(*state);
      // Every write handed to a shard before the pause has run (and been recorded) after this.
      gateway_.Barrier([this, run, take] {
        std::vector<Key> keys = take();
        run->stats.pause_keys = keys.size();
        run->Copy(std::move(keys), [this, run] {
          if (run->Void()) {
            return run->End(Status(Code::kUnavailable, "the move was aborted, or a flush ran"));
          }
          HandOverTopics(run);
        });
      });
    };
    auto again = std::make_shared<std::function<void()>>();
    // The pass over written keys calls itself through a weak reference (a strong one in itself
    // would never be freed); the continuations in flight hold it.
    *again = [run, take, left, weak = std::weak_ptr<std::function<void()>>(again),
              finish_paused] {
      if (!run->done) return;  // failed
      if (left() <= kPauseAt || run->stats.rounds >= kMaxRounds) return (*finish_paused)();
      ++run->stats.rounds;
      std::vector<Key> keys = take();
      run->stats.keys_recopied += keys.size();
      auto self = weak.lock();
      if (!self) return;
      run->Copy(std::move(keys), [self] { (*self)(); });
    };
    run->Scan(
        [run](std::vector<Key> keys, std::function<void()> next) {
          run->stats.keys_copied += keys.size();
          run->Copy(std::move(keys), next);
        },
        [run, again] {
          if (run->done) (*again)();
        });
  });
}

// While paused (publishes to the slots wait too, and the barrier let every one already
// numbered land), the topics numbered here whose slot moves go with their numbering and
// rings: the new owner continues where this node stopped, and the nodes relaying them resume
// there from their last item.
void Migrator::HandOverTopics(std::shared_ptr<Run> run) {
  if (topics_ == nullptr) return run->End(Status::Ok());
  topics_->ExportRange(0, run->first, run->last, [this, run](std::vector<topics::TopicState> states) {
    run->stats.topics = states.size();
    // In frames of about kStatesFrameBytes (a topic's ring is bounded by the replay limits),
    // one after another, each acknowledged.
    auto frames = std::make_shared<std::vector<std::string>>();
    std::vector<topics::TopicState> part;
    size_t bytes = 0;
    for (topics::TopicState& s : states) {
      size_t b = 64 + s.topic.size();
      for (const topics::MessagePtr& m : s.ring) b += 32 + m->publisher_id.size() + m->value.size();
      if (!part.empty() && bytes + b > kStatesFrameBytes) {
        EncodeStates(part, frames->emplace_back());
        part.clear();
        bytes = 0;
      }
      bytes += b;
      part.push_back(std::move(s));
    }
    if (!part.empty()) EncodeStates(part, frames->emplace_back());
    SendStates(run, frames, 0);
  });
}

void Migrator::SendStates(std::shared_ptr<Run> run, std::shared_ptr<std::vector<std::string>> frames,
                          size_t next) {
  if (next == frames->size()) return run->End(Status::Ok());
  forwarder_.SendTopicStates(0, run->dst, std::move((*frames)[next]),
                             [this, run, frames, next](Status st) {
                               if (!st.ok()) {
                                 return run->End(Status(st.code(), "handing over topics: " +
                                                                       std::string(st.message())));
                               }
                               SendStates(run, frames, next + 1);
                             });
}

void Migrator::Finish(bool committed, uint32_t first, uint32_t last) {
  gateway_.EndMigration();
  if (!committed) return;
  Purge(first, last, [first, last](Status st) {
    if (!st.ok()) {
      LOG_WARN("msg=\"purging moved slots failed\" first={} last={} why=\"{}\"", first, last,
               st.message());
    }
  });
}

}  // namespace cellar::internal
