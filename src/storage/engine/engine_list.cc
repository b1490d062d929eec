// The engine's list operations (collection_util.h has what the collection files share).
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "common/glob.h"
#include "common/numbers.h"
#include "storage/engine/collection_util.h"

namespace cellar::storage {

using namespace collections;  // NOLINT: the collection files' shared vocabulary

void Engine::ExecuteList(const api::Request& req, api::Reply& reply) {
  Target t;
  const auto args = req.args;
  switch (req.op) {
    case Op::kLPush:
    case Op::kRPush: {
      if (!RoomFor(req, reply)) return;
      const bool create = !(req.flags & api::kXx);
      if (!Open(req, ItemType::kList, create, reply, t)) return;
      if (t.item == nullptr) return;  // LPUSHX on a missing key: 0
      List* l = As<List>(t.item);
      if (req.op == Op::kRPush) {
        for (std::string_view v : args) l->PushBack(v);
        if (const int64_t to = req.Get<api::Truncate>().to; to > 0) {
          while (l->size() > static_cast<size_t>(to)) l->PopFront(nullptr);
        }
      } else {
        if (req.flags & api::kKeepOrder) {
          for (size_t i = args.size(); i-- > 0;) l->PushFront(args[i]);
        } else {
          for (std::string_view v : args) l->PushFront(v);
        }
        if (const int64_t to = req.Get<api::Truncate>().to; to > 0) {
          while (l->size() > static_cast<size_t>(to)) l->PopBack(nullptr);
        }
      }
      reply.integer = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLPop:
    case Op::kRPop: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      const int64_t count = req.Get<api::Count>().count;
      const size_t n = count < 0 ? 1 : std::min<size_t>(count, l->size());
      reply.items.reserve(n);
      std::string element;
      for (size_t i = 0; i < n; ++i) {
        if (req.op == Op::kLPop) {
          l->PopFront(&element);
        } else {
          l->PopBack(&element);
        }
        reply.items.push_back(element);
      }
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLRange: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const List* l = As<List>(t.item);
      size_t from, to;
      IndexRange(req, l->size(), &from, &to);
      reply.items.reserve(to - from);
      l->ForRange(from, to, [&](std::string_view v) { reply.items.emplace_back(v); });
      return;
    }
    case Op::kLLen: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<List>(t.item)->size());
      return;
    }
    case Op::kLIndex: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      const List* l = As<List>(t.item);
      const int64_t index = req.Get<api::Position>().index;
      int64_t i = index < 0 ? index + static_cast<int64_t>(l->size()) : index;
      if (i < 0 || i >= static_cast<int64_t>(l->size())) return;
      reply.found = true;
      reply.value.assign(l->At(static_cast<size_t>(i)));
      return;
    }
    case Op::kLSet: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kList, false, reply, t)) return;
      if (t.item == nullptr) {
        reply.status = Status(Code::kNotFound, "no such key");
        return;
      }
      List* l = As<List>(t.item);
      const int64_t index = req.Get<api::Position>().index;
      int64_t i = index < 0 ? index + static_cast<int64_t>(l->size()) : index;
      if (i < 0 || i >= static_cast<int64_t>(l->size())) {
        reply.status = Status(Code::kInvalidArgument, "index out of range");
        return;
      }
      l->Set(static_cast<size_t>(i), req.value);
      return Close(req, t);
    }
    case Op::kLRem: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      reply.integer = static_cast<int64_t>(l->Remove(req.value, req.Get<api::Count>().count));
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLTrim: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      size_t from, to;
      IndexRange(req, l->size(), &from, &to);
      l->Trim(from, to);
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLInsert: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kList, false, reply, t)) return;
      if (t.item == nullptr) return;  // 0
      List* l = As<List>(t.item);
      int64_t at = -1;
      l->Find(req.check, false, 0, [&](size_t i) {
        at = static_cast<int64_t>(i);
        return false;
      });
      if (at < 0) {
        reply.integer = -1;
        return;
      }
      l->Insert(static_cast<size_t>(at) + (req.Get<api::InsertAt>().after ? 1 : 0), req.value);
      reply.integer = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    case Op::kLPos: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const List* l = As<List>(t.item);
      const api::Find& find = req.Get<api::Find>();
      const int64_t rank = find.rank == 0 ? 1 : find.rank;
      int64_t skip = (rank < 0 ? -rank : rank) - 1;
      const int64_t want = find.count < 0 ? 1 : find.count;  // 0: all
      l->Find(req.value, rank < 0, static_cast<size_t>(std::max<int64_t>(0, find.maxlen)),
              [&](size_t i) {
                if (skip > 0) {
                  --skip;
                  return true;
                }
                reply.numbers.push_back(static_cast<int64_t>(i));
                return want == 0 || static_cast<int64_t>(reply.numbers.size()) < want;
              });
      return;
    }
    case Op::kLErase: {
      if (!Open(req, ItemType::kList, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      List* l = As<List>(t.item);
      if (req.Get<api::EraseAll>().all) {
        l->Trim(0, 0);
      } else {
        // Ranges index the list as it was: erase from the highest start down.
        std::vector<std::pair<int64_t, int64_t>> ranges;
        for (size_t i = 0; i + 1 < req.numbers.size(); i += 2) {
          ranges.emplace_back(req.numbers[i], req.numbers[i + 1]);
        }
        std::sort(ranges.begin(), ranges.end(), std::greater<>());
        for (auto [begin, count] : ranges) {
          if (begin < 0 || count <= 0 || static_cast<size_t>(begin) >= l->size()) continue;
          l->Erase(static_cast<size_t>(begin), static_cast<size_t>(count));
        }
      }
      reply.length = static_cast<int64_t>(l->size());
      return Close(req, t);
    }
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
