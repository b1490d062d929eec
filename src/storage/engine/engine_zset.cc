// The engine's sorted set operations (collection_util.h has what the collection files share).
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

void Engine::ExecuteZSet(const api::Request& req, api::Reply& reply) {
  Target t;
  const auto args = req.args;
  switch (req.op) {
    case Op::kZAdd: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kZSet, true, reply, t)) return;
      ZSet* z = As<ZSet>(t.item);
      int64_t added = 0, changed = 0;
      for (size_t i = 0; i < args.size() && i < req.scores.size(); ++i) {
        double score = req.scores[i];
        auto old = z->Score(args[i]);
        if (old) {
          if (req.flags & api::kNx) continue;
          if (req.flags & api::kIncr) {
            score += *old;
            if (std::isnan(score)) {
              reply.status = Status(Code::kNotFloat, "resulting score is not a number (NaN)");
              return Close(req, t);
            }
          }
          if ((req.flags & api::kGt) && !(score > *old)) continue;
          if ((req.flags & api::kLt) && !(score < *old)) continue;
          if (score != *old) {
            z->Insert(args[i], score);
            ++changed;
          }
        } else {
          if (req.flags & api::kXx) continue;
          z->Insert(args[i], score);
          ++added;
        }
        if (req.flags & api::kIncr) {
          reply.found = true;
          reply.scores.push_back(score);  // as computed: Redis answers -0 here
        }
      }
      reply.integer = added + ((req.flags & api::kCh) ? changed : 0);
      return Close(req, t);
    }
    case Op::kZIncrBy: {
      if (args.empty()) {
        reply.status = Status(Code::kSyntax);
        return;
      }
      if (!RoomFor(req, reply) || !Open(req, ItemType::kZSet, true, reply, t)) return;
      ZSet* z = As<ZSet>(t.item);
      const double score = z->Score(args[0]).value_or(0.0) + static_cast<double>(req.Get<api::FloatDelta>().by);
      if (std::isnan(score)) {
        reply.status = Status(Code::kNotFloat, "resulting score is not a number (NaN)");
        return Close(req, t);
      }
      z->Insert(args[0], score);
      reply.found = true;
      reply.scores.push_back(score);  // as computed: Redis answers -0 here
      return Close(req, t);
    }
    case Op::kZRem: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      ZSet* z = As<ZSet>(t.item);
      for (std::string_view m : args) reply.integer += z->Erase(m);
      reply.length = static_cast<int64_t>(z->size());
      return Close(req, t);
    }
    case Op::kZScore: {
      if (!Open(req, ItemType::kZSet, false, reply, t)) return;
      reply.numbers.assign(args.size(), 0);
      reply.scores.assign(args.size(), 0.0);
      if (t.item == nullptr) return;
      reply.found = true;
      const ZSet* z = As<ZSet>(t.item);
      for (size_t i = 0; i < args.size(); ++i) {
        if (auto s = z->Score(args[i])) {
          reply.numbers[i] = 1;
          reply.scores[i] = *s;
        }
      }
      return;
    }
    case Op::kZCard: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<ZSet>(t.item)->size());
      return;
    }
    case Op::kZCount: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const ZSet* z = As<ZSet>(t.item);
      const api::ScoreRange& range = req.Get<api::ScoreRange>();
      const size_t a = z->CountBelow(range.lo, (req.flags & api::kLoExclusive) != 0);
      const size_t b = z->CountBelow(range.hi, (req.flags & api::kHiExclusive) == 0);
      reply.integer = b > a ? static_cast<int64_t>(b - a) : 0;
      return;
    }
    case Op::kZRange: {
      const size_t slot = (req.flags & api::kAcceptSet) ? FindLive(req) : Table::kNotFound;
      if (slot != Table::kNotFound && table_.At(slot)->type() == ItemType::kSet) {
        reply.found = true;
        As<SetObj>(table_.At(slot))->ForEach([&](std::string_view m) {
          reply.items.emplace_back(m);
          reply.scores.push_back(1.0);
        });
        return;
      }
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const ZSet* z = As<ZSet>(t.item);
      const size_t n = z->size();
      const bool rev = (req.flags & api::kRev) != 0;
      size_t from = 0, to = 0;  // in the order of the answer (rev ranks when rev)
      if (req.flags & (api::kByScore | api::kByLex)) {
        const api::ScoreRange& range = req.Get<api::ScoreRange>();
        size_t a, b;  // ascending ranks [a, b)
        if (req.flags & api::kByScore) {
          a = z->CountBelow(range.lo, (req.flags & api::kLoExclusive) != 0);
          b = z->CountBelow(range.hi, (req.flags & api::kHiExclusive) == 0);
        } else {
          if (args.size() < 2 || !LexBound(*z, args[0], false, &a) ||
              !LexBound(*z, args[1], true, &b)) {
            reply.status = Status(Code::kSyntax, "min or max not valid string range item");
            return;
          }
        }
        if (b < a) b = a;
        from = rev ? n - b : a;
        to = rev ? n - a : b;
        const size_t offset = static_cast<size_t>(std::max<int64_t>(0, range.offset));
        from = std::min(to, from + std::min(offset, to - from));
        if (range.count >= 0 && static_cast<uint64_t>(range.count) < to - from) {
          to = from + static_cast<size_t>(range.count);
        }
      } else {
        IndexRange(req, n, &from, &to);
      }
      const bool with_scores = (req.flags & api::kWithScores) != 0;
      reply.items.reserve(to - from);
      if (with_scores) reply.scores.reserve(to - from);
      z->ForRankRange(from, to, rev, [&](std::string_view m, double score) {
        reply.items.emplace_back(m);
        if (with_scores) reply.scores.push_back(score);
      });
      return;
    }
    case Op::kZRank: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr || args.empty()) return;
      const ZSet* z = As<ZSet>(t.item);
      reply.length = static_cast<int64_t>(z->size());
      auto rank = z->Rank(args[0]);
      if (!rank) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>((req.flags & api::kRev) ? z->size() - 1 - *rank : *rank);
      reply.scores.push_back(z->Score(args[0]).value_or(0.0));
      return;
    }
    case Op::kZPopMin:
    case Op::kZPopMax: {
      if (!Open(req, ItemType::kZSet, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      ZSet* z = As<ZSet>(t.item);
      const int64_t count = req.Get<api::Count>().count;
      const size_t n = count < 0 ? 1 : static_cast<size_t>(count);
      z->PopMin(n, req.op == Op::kZPopMax, [&](std::string_view m, double score) {
        reply.items.emplace_back(m);
        reply.scores.push_back(score);
      });
      return Close(req, t);
    }
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
