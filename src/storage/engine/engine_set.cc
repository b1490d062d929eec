// The engine's set operations (collection_util.h has what the collection files share).
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include <absl/container/flat_hash_set.h>

#include "common/glob.h"
#include "common/numbers.h"
#include "storage/engine/collection_util.h"

namespace cellar::storage {

using namespace collections;  // NOLINT: the collection files' shared vocabulary

void Engine::ExecuteSet(const api::Request& req, api::Reply& reply) {
  Target t;
  const auto args = req.args;
  switch (req.op) {
    case Op::kSAdd: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kSet, true, reply, t)) return;
      SetObj* s = As<SetObj>(t.item);
      for (std::string_view m : args) reply.integer += s->Add(m);
      return Close(req, t);
    }
    case Op::kSRem: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      SetObj* s = As<SetObj>(t.item);
      for (std::string_view m : args) reply.integer += s->Erase(m);
      reply.length = static_cast<int64_t>(s->size());
      return Close(req, t);
    }
    case Op::kSMembers: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const SetObj* s = As<SetObj>(t.item);
      reply.items.reserve(s->size());
      s->ForEach([&](std::string_view m) { reply.items.emplace_back(m); });
      return;
    }
    case Op::kSContains: {
      if (!Open(req, ItemType::kSet, false, reply, t)) return;
      reply.numbers.assign(args.size(), 0);
      if (t.item == nullptr) return;
      reply.found = true;
      const SetObj* s = As<SetObj>(t.item);
      for (size_t i = 0; i < args.size(); ++i) reply.numbers[i] = s->Contains(args[i]);
      return;
    }
    case Op::kSCard: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<SetObj>(t.item)->size());
      return;
    }
    case Op::kSPop: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      SetObj* s = As<SetObj>(t.item);
      const int64_t count = req.Get<api::Count>().count;
      const size_t n = count < 0 ? 1 : std::min<size_t>(count, s->size());
      auto rng = [this] { return NextRandom(); };
      if (n == s->size()) {
        s->ForEach([&](std::string_view m) { reply.items.emplace_back(m); });
        for (std::string_view m : reply.items) s->Erase(m);
      } else {
        for (size_t i = 0; i < n; ++i) {
          reply.items.emplace_back(s->Random(rng));
          s->Erase(reply.items.back());
        }
      }
      return Close(req, t);
    }
    case Op::kSRandMember: {
      if (!Open(req, ItemType::kSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const SetObj* s = As<SetObj>(t.item);
      auto rng = [this] { return NextRandom(); };
      if (req.flags & api::kNoCount) {
        reply.items.emplace_back(s->Random(rng));
        return;
      }
      const int64_t count = req.Get<api::Count>().count;
      if (count < 0) {  // repeats allowed
        // A reply, not a stall: a loop shared with other tenants builds at most this many
        // (16M picks from a large set took seconds before the reply cap refused them).
        constexpr int64_t kMaxRepeats = int64_t{1} << 20;
        if (count < -kMaxRepeats) {
          reply.status = Status(Code::kInvalidArgument,
                                "value is out of range: a negative count takes at most 1048576 "
                                "repeats");
          return;
        }
        const uint64_t n = static_cast<uint64_t>(-count);
        const size_t size = s->size();
        // Stops once the reply's byte cap is passed (the reply is refused then).
        if (n > 16 && n >= size / 8) {
          // Many picks: the members once, then an index each (a pick from the set itself
          // walks its table: ~300 ns).
          std::vector<std::string_view> all;
          all.reserve(size);
          s->ForEach([&](std::string_view m) { all.push_back(m); });
          reply.items.reserve(static_cast<size_t>(std::min<uint64_t>(n, 1 << 16)));
          for (uint64_t i = 0; i < n && !reply.items.overflowed(); ++i) {
            reply.items.emplace_back(all[NextRandom() % all.size()]);
          }
          return;
        }
        for (uint64_t i = 0; i < n && !reply.items.overflowed(); ++i) {
          reply.items.emplace_back(s->Random(rng));
        }
        return;
      }
      const size_t n = std::min<size_t>(static_cast<size_t>(count), s->size());
      if (n * 3 >= s->size()) {  // a large share: take all, then keep n at random
        std::vector<std::string_view> all;
        all.reserve(s->size());
        s->ForEach([&](std::string_view m) { all.push_back(m); });
        for (size_t i = 0; i < n; ++i) {  // partial Fisher-Yates
          std::swap(all[i], all[i + NextRandom() % (all.size() - i)]);
          reply.items.push_back(all[i]);
        }
        return;
      }
      absl::flat_hash_set<std::string_view> seen;
      while (reply.items.size() < n) {
        std::string_view m = s->Random(rng);
        if (seen.insert(m).second) reply.items.emplace_back(m);
      }
      return;
    }
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
