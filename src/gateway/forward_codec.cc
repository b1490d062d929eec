#include "gateway/forward_codec.h"

#include <charconv>
#include <cstring>
#include <type_traits>

#include "common/wire.h"

namespace cellar::gateway {

namespace {

using wire::Put;
using wire::PutStr;
using wire::Reader;

constexpr uint8_t kMaxOp = static_cast<uint8_t>(api::Op::kPublish);
constexpr uint8_t kMaxCode = static_cast<uint8_t>(Code::kInternal);

void PutParams(std::string& out, const api::Params& p) {
  Put<uint8_t>(out, static_cast<uint8_t>(p.index()));
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, api::Delta>) {
          Put(out, v.by);
        } else if constexpr (std::is_same_v<T, api::FloatDelta>) {
          // Text, exact both ways (std::to_chars' shortest form), whatever long double is.
          char buf[64];
          auto r = std::to_chars(buf, buf + sizeof(buf), v.by);
          PutStr(out, std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
        } else if constexpr (std::is_same_v<T, api::IndexRange>) {
          Put(out, v.start);
          Put(out, v.stop);
        } else if constexpr (std::is_same_v<T, api::Position>) {
          Put(out, v.index);
        } else if constexpr (std::is_same_v<T, api::Cursor>) {
          Put(out, v.cursor);
          Put(out, v.count);
        } else if constexpr (std::is_same_v<T, api::Count>) {
          Put(out, v.count);
        } else if constexpr (std::is_same_v<T, api::Condition>) {
          Put<uint8_t>(out, static_cast<uint8_t>(v.cond));
        } else if constexpr (std::is_same_v<T, api::FieldsForm>) {
          Put<uint8_t>(out, static_cast<uint8_t>(v.form));
        } else if constexpr (std::is_same_v<T, api::Truncate>) {
          Put(out, v.to);
        } else if constexpr (std::is_same_v<T, api::InsertAt>) {
          Put<uint8_t>(out, v.after ? 1 : 0);
        } else if constexpr (std::is_same_v<T, api::Find>) {
          Put(out, v.rank);
          Put(out, v.count);
          Put(out, v.maxlen);
        } else if constexpr (std::is_same_v<T, api::EraseAll>) {
          Put<uint8_t>(out, v.all ? 1 : 0);
        } else if constexpr (std::is_same_v<T, api::ScoreRange>) {
          Put(out, v.lo);
          Put(out, v.hi);
          Put(out, v.offset);
          Put(out, v.count);
        }
      },
      p);
}

bool GetParams(Reader& r, api::Request& req) {
  uint8_t index = 0;
  if (!r.Get(&index)) return false;
  switch (index) {
    case 0: return true;
    case 1: { api::Delta v; if (!r.Get(&v.by)) return false; req.Set(v); return true; }
    case 2: {
      std::string_view text;
      api::FloatDelta v;
      if (!r.Str(&text)) return false;
      auto res = std::from_chars(text.data(), text.data() + text.size(), v.by);
      if (res.ec != std::errc() || res.ptr != text.data() + text.size()) return false;
      req.Set(v);
      return true;
    }
    case 3: {
      api::IndexRange v;
      if (!r.Get(&v.start) || !r.Get(&v.stop)) return false;
      req.Set(v);
      return true;
    }
    case 4: { api::Position v; if (!r.Get(&v.index)) return false; req.Set(v); return true; }
    case 5: {
      api::Cursor v;
      if (!r.Get(&v.cursor) || !r.Get(&v.count)) return false;
      req.Set(v);
      return true;
    }
    case 6: { api::Count v; if (!r.Get(&v.count)) return false; req.Set(v); return true; }
    case 7: {
      uint8_t c = 0;
      if (!r.Get(&c) || c > static_cast<uint8_t>(api::SetIfCondition::kAbsentOrNotHashEqual)) {
        return false;
      }
      req.Set(api::Condition{static_cast<api::SetIfCondition>(c)});
      return true;
    }
    case 8: {
      uint8_t f = 0;
      if (!r.Get(&f) || f > api::FieldsForm::kValues) return false;
      req.Set(api::FieldsForm{static_cast<api::FieldsForm::Form>(f)});
      return true;
    }
    case 9: { api::Truncate v; if (!r.Get(&v.to)) return false; req.Set(v); return true; }
    case 10: {
      uint8_t b = 0;
      if (!r.Get(&b) || b > 1) return false;
      req.Set(api::InsertAt{b == 1});
      return true;
    }
    case 11: {
      api::Find v;
      if (!r.Get(&v.rank) || !r.Get(&v.count) || !r.Get(&v.maxlen)) return false;
      req.Set(v);
      return true;
    }
    case 12: {
      uint8_t b = 0;
      if (!r.Get(&b) || b > 1) return false;
      req.Set(api::EraseAll{b == 1});
      return true;
    }
    case 13: {
      api::ScoreRange v;
      if (!r.Get(&v.lo) || !r.Get(&v.hi) || !r.Get(&v.offset) || !r.Get(&v.count)) return false;
      req.Set(v);
      return true;
    }
    default:
      return false;
  }
}
static_assert(std::variant_size_v<api::Params> == 14, "a new Params type needs a wire form");

}  // namespace

void EncodeCalls(const Batch& batch, std::span<const uint32_t> indices, int64_t now_ms,
                 std::string& out, int32_t shard_base) {
  Put<uint32_t>(out, static_cast<uint32_t>(indices.size()));
  for (uint32_t i : indices) {
    const Call& c = batch.calls[i];
    const api::Request& r = c.req;
    Put<uint8_t>(out, static_cast<uint8_t>(r.op));
    Put<int16_t>(out, r.shard >= 0 ? static_cast<int16_t>(r.shard - shard_base) : int16_t{-1});
    Put<uint32_t>(out, r.flags);
    Put<uint32_t>(out, r.cache_id);
    Put<int64_t>(out, r.expire_at);
    Put<int64_t>(out, c.deadline_ms == 0 ? -1 : std::max<int64_t>(0, c.deadline_ms - now_ms));
    PutStr(out, r.key);
    PutStr(out, r.value);
    PutStr(out, r.pattern);
    PutStr(out, r.check);
    PutParams(out, r.params);
    Put<uint32_t>(out, static_cast<uint32_t>(r.args.size()));
    for (std::string_view a : r.args) PutStr(out, a);
    Put<uint32_t>(out, static_cast<uint32_t>(r.scores.size()));
    for (double s : r.scores) Put(out, s);
    Put<uint32_t>(out, static_cast<uint32_t>(r.numbers.size()));
    for (int64_t n : r.numbers) Put(out, n);
  }
}

std::unique_ptr<DecodedCalls> DecodeCalls(std::string frame, int64_t now_ms) {
  auto d = std::make_unique<DecodedCalls>();
  d->frame = std::move(frame);
  Reader r(d->frame);
  uint32_t n = 0;
  if (!r.Count(&n, 50)) return nullptr;
  d->batch.calls.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    Call& c = d->batch.calls[i];
    api::Request& q = c.req;
    uint8_t op = 0;
    int64_t left = 0;
    if (!r.Get(&op) || op > kMaxOp || !r.Get(&q.shard) || q.shard < -1 || !r.Get(&q.flags) ||
        !r.Get(&q.cache_id) ||
        !r.Get(&q.expire_at) || !r.Get(&left) || !r.Str(&q.key) || !r.Str(&q.value) ||
        !r.Str(&q.pattern) || !r.Str(&q.check) || !GetParams(r, q)) {
      return nullptr;
    }
    q.op = static_cast<api::Op>(op);
    c.deadline_ms = left < 0 ? 0 : now_ms + std::max<int64_t>(left, 1);
    uint32_t k = 0;
    if (!r.Count(&k, 4)) return nullptr;
    if (k > 0) {
      auto& args = d->args.emplace_back(std::make_unique<std::vector<std::string_view>>(k));
      for (auto& a : *args) {
        if (!r.Str(&a)) return nullptr;
      }
      q.args = *args;
    }
    if (!r.Count(&k, sizeof(double))) return nullptr;
    if (k > 0) {
      auto& scores = d->scores.emplace_back(std::make_unique<std::vector<double>>(k));
      for (auto& s : *scores) r.Get(&s);
      q.scores = *scores;
    }
    if (!r.Count(&k, sizeof(int64_t))) return nullptr;
    if (k > 0) {
      auto& numbers = d->numbers.emplace_back(std::make_unique<std::vector<int64_t>>(k));
      for (auto& v : *numbers) r.Get(&v);
      q.numbers = *numbers;
    }
  }
  if (!r.done()) return nullptr;
  return d;
}

void EncodeReplies(std::span<const Call> calls, std::string& out) {
  Put<uint32_t>(out, static_cast<uint32_t>(calls.size()));
  for (const Call& c : calls) {
    const api::Reply& p = c.reply;
    Put<uint8_t>(out, static_cast<uint8_t>(p.status.code()));
    PutStr(out, p.status.message());
    Put<uint8_t>(out, p.found ? 1 : 0);
    Put<uint8_t>(out, static_cast<uint8_t>((c.not_run ? 1 : 0) | (c.moved ? 2 : 0)));
    Put<int64_t>(out, p.integer);
    PutStr(out, p.value);
    Put<uint32_t>(out, static_cast<uint32_t>(p.keys.size()));
    for (const std::string& k : p.keys) PutStr(out, k);
    Put<uint32_t>(out, static_cast<uint32_t>(p.numbers.size()));
    for (int64_t v : p.numbers) Put(out, v);
    Put<uint32_t>(out, static_cast<uint32_t>(p.items.size()));
    for (std::string_view it : p.items) PutStr(out, it);
    Put<uint32_t>(out, static_cast<uint32_t>(p.scores.size()));
    for (double s : p.scores) Put(out, s);
    Put<int64_t>(out, p.length);
  }
}

bool DecodeReplies(std::string_view frame, Batch& batch, std::span<const uint32_t> indices) {
  Reader r(frame);
  uint32_t n = 0;
  if (!r.Count(&n, 30) || n != indices.size()) return false;
  for (uint32_t i : indices) {
    Call& c = batch.calls[i];
    api::Reply& p = c.reply;
    p = api::Reply();
    uint8_t code = 0, found = 0, not_run = 0;
    std::string_view message, value;
    if (!r.Get(&code) || code > kMaxCode || !r.Str(&message) || !r.Get(&found) ||
        !r.Get(&not_run) || !r.Get(&p.integer) || !r.Str(&value)) {
      return false;
    }
    p.status = code == 0 ? Status::Ok() : Status(static_cast<Code>(code), std::string(message));
    p.found = found != 0;
    if (not_run > 3) return false;
    c.not_run = (not_run & 1) != 0;
    c.moved = (not_run & 2) != 0;
    p.value.assign(value);
    uint32_t k = 0;
    if (!r.Count(&k, 4)) return false;
    p.keys.resize(k);
    for (auto& key : p.keys) {
      std::string_view s;
      if (!r.Str(&s)) return false;
      key.assign(s);
    }
    if (!r.Count(&k, sizeof(int64_t))) return false;
    p.numbers.resize(k);
    for (auto& v : p.numbers) r.Get(&v);
    if (!r.Count(&k, 4)) return false;
    p.items.reserve(k);
    for (uint32_t j = 0; j < k; ++j) {
      std::string_view s;
      if (!r.Str(&s)) return false;
      p.items.push_back(s);
    }
    if (!r.Count(&k, sizeof(double))) return false;
    p.scores.resize(k);
    for (auto& s : p.scores) r.Get(&s);
    if (!r.Get(&p.length)) return false;
  }
  return r.done();
}

}  // namespace cellar::gateway
