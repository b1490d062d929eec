// The engine's dictionary (hash) operations (collection_util.h has what the collection files share).
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "common/glob.h"
#include "common/numbers.h"
#include "storage/engine/collection_util.h"

namespace cellar::storage {

using namespace collections;  // NOLINT: the collection files' shared vocabulary

void Engine::ExecuteDict(const api::Request& req, api::Reply& reply) {
  Target t;
  const auto args = req.args;
  switch (req.op) {
    case Op::kHSet: {
      if (!RoomFor(req, reply) || !Open(req, ItemType::kDict, true, reply, t)) return;
      Dict* d = As<Dict>(t.item);
      int64_t added = 0;
      if (req.flags & api::kNx) {
        if (args.size() >= 2 && !d->Get(args[0])) added = d->Set(args[0], args[1]) ? 1 : 0;
      } else {
        for (size_t i = 0; i + 1 < args.size(); i += 2) added += d->Set(args[i], args[i + 1]);
      }
      reply.integer = added;
      return Close(req, t);
    }
    case Op::kHGet: {
      if (!Open(req, ItemType::kDict, false, reply, t)) return;
      reply.found = t.item != nullptr;
      reply.numbers.assign(args.size(), 0);
      const Dict* d = t.item == nullptr ? nullptr : As<Dict>(t.item);
      for (size_t i = 0; i < args.size(); ++i) {
        auto v = d == nullptr ? std::nullopt : d->Get(args[i]);
        reply.items.push_back(v.value_or(std::string_view()));  // "" for a missing field
        reply.numbers[i] = v.has_value();
      }
      return;
    }
    case Op::kHGetAll: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      const Dict* d = As<Dict>(t.item);
      const api::FieldsForm::Form form = req.Get<api::FieldsForm>().form;
      reply.items.reserve(form == api::FieldsForm::kPairs ? 2 * d->size() : d->size());
      d->ForEach([&](std::string_view f, std::string_view v) {
        if (form != api::FieldsForm::kValues) reply.items.emplace_back(f);
        if (form != api::FieldsForm::kFields) reply.items.emplace_back(v);
      });
      return;
    }
    case Op::kHDel: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      Dict* d = As<Dict>(t.item);
      for (std::string_view f : args) reply.integer += d->Erase(f);
      reply.length = static_cast<int64_t>(d->size());
      return Close(req, t);
    }
    case Op::kHLen: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = static_cast<int64_t>(As<Dict>(t.item)->size());
      return;
    }
    case Op::kHExists: {
      if (!Open(req, ItemType::kDict, false, reply, t) || t.item == nullptr) return;
      reply.found = true;
      reply.integer = !args.empty() && As<Dict>(t.item)->Get(args[0]).has_value();
      return;
    }
    case Op::kHIncrBy:
    case Op::kHIncrByFloat: {
      if (args.empty()) {
        reply.status = Status(Code::kSyntax);
        return;
      }
      if (!RoomFor(req, reply) || !Open(req, ItemType::kDict, true, reply, t)) return;
      Dict* d = As<Dict>(t.item);
      auto current = d->Get(args[0]);
      if (req.op == Op::kHIncrBy) {
        int64_t v = 0;
        if (current) {
          auto parsed = ParseInt64(*current);
          if (!parsed) {
            reply.status = Status(Code::kNotInteger, "hash value is not an integer");
            return Close(req, t);
          }
          v = *parsed;
        }
        int64_t result;
        if (__builtin_add_overflow(v, req.Get<api::Delta>().by, &result)) {
          reply.status = Status(Code::kOverflow);
          return Close(req, t);
        }
        std::string text;
        AppendInt(text, result);
        d->Set(args[0], text);
        reply.integer = result;
      } else {
        long double v = 0;
        if (current) {
          auto parsed = ParseLongDouble(*current);
          if (!parsed) {
            reply.status = Status(Code::kNotFloat, "hash value is not a float");
            return Close(req, t);
          }
          v = *parsed;
        }
        const long double result = v + req.Get<api::FloatDelta>().by;
        if (std::isnan(result) || std::isinf(result)) {
          reply.status = Status(Code::kInvalidArgument, "increment would produce NaN or Infinity");
          return Close(req, t);
        }
        reply.value = FormatLongDouble(result);
        d->Set(args[0], reply.value);
      }
      return Close(req, t);
    }
    default:
      break;
  }
  reply.status = Status(Code::kInternal, "unknown operation");
}

}  // namespace cellar::storage
