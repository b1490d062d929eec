// leaderboard.Leaderboard: leaderboards kept as sorted sets in the request's cache.
//
// Storage layout: the leaderboard named N is the sorted set whose key is the bytes
// "\xff" "leaderboard:" followed by N. Its members are the element ids as 4-byte big-endian
// integers, so elements of equal score order by id (the sorted set breaks ties by member
// bytes). The 0xff first byte keeps these keys apart from the keys Momento's SDKs write as
// UTF-8 text; RESP clients can still reach them by that name.
//
// Ranks are 0-based. Ranges (by rank or by score) return at most 8192 elements, as Momento.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common.pb.h"
#include "frontend/grpc/errors.h"
#include "frontend/grpc/service_util.h"
#include "frontend/grpc/services.h"
#include "leaderboard.pb.h"

namespace cellar::grpc {
namespace {

namespace lb = ::leaderboard;
using detail::Add;
using detail::BadMessage;
using detail::Data;
using detail::Failed;
using detail::kR;
using detail::kW;
using detail::Parse;
using detail::TwoRound;
using gateway::Call;

constexpr std::string_view kKeyPrefix = "\xffleaderboard:";  // 0xff, then "leaderboard:"
constexpr uint32_t kMaxRange = 8192;     // elements per range, and the GetByScore default limit
constexpr uint32_t kMaxElements = 8192;  // ids or elements per request
constexpr double kInf = std::numeric_limits<double>::infinity();

// The leaderboard's key, in the stream's scratch arena (the calls borrow it).
std::string_view BoardKey(Stream& s, std::string_view name) {
  std::span<char> buf = s.scratch.Alloc<char>(kKeyPrefix.size() + name.size());
  std::memcpy(buf.data(), kKeyPrefix.data(), kKeyPrefix.size());
  if (!name.empty()) std::memcpy(buf.data() + kKeyPrefix.size(), name.data(), name.size());
  return {buf.data(), buf.size()};
}

// Element ids as sorted-set members: 4 bytes, big-endian, in the stream's scratch arena.
std::span<const std::string_view> IdMembers(Stream& s, std::span<const uint32_t> ids) {
  std::span<char> bytes = s.scratch.Alloc<char>(4 * ids.size());
  std::span<std::string_view> out = s.scratch.Alloc<std::string_view>(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    char* p = bytes.data() + 4 * i;
    p[0] = static_cast<char>(ids[i] >> 24);
    p[1] = static_cast<char>(ids[i] >> 16);
    p[2] = static_cast<char>(ids[i] >> 8);
    p[3] = static_cast<char>(ids[i]);
    out[i] = std::string_view(p, 4);
  }
  return out;
}

template <typename Repeated>
std::span<const uint32_t> Ids(const Repeated& ids) {
  return {ids.data(), static_cast<size_t>(ids.size())};
}

// A member that is not 4 bytes was not written by this service: skipped.
bool DecodeId(std::string_view member, uint32_t* id) {
  if (member.size() != 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(member.data());
  *id = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  return true;
}

uint32_t Rank(int64_t n) {
  return static_cast<uint32_t>(std::clamp<int64_t>(n, 0, std::numeric_limits<uint32_t>::max()));
}

StatusOr<bool> Descending(int order) {
  if (order == lb::ASCENDING) return false;
  if (order == lb::DESCENDING) return true;
  return Error(GrpcError::kBadOrder);
}

// `e`: kTooManyElements or kTooManyIds.
Status CheckCount(size_t n, GrpcError e) {
  if (n > kMaxElements) return Error(e, n, kMaxElements);
  return Status::Ok();
}

void FinishEmpty(const ServiceContext&, Stream& s, const Call* calls) {
  if (!Failed(s, calls)) AppendMessage(s.out, ::common::_Empty());
}

// elements[i] of a kZRange reply with scores, ranked first_rank + i.
template <typename Resp>
void AppendRanked(Resp& resp, const api::Reply& rep, int64_t first_rank) {
  for (size_t i = 0; i < rep.items.size(); ++i) {
    uint32_t id;
    if (!DecodeId(rep.items[i], &id)) continue;
    auto* e = resp.add_elements();
    e->set_id(id);
    e->set_rank(Rank(first_rank + static_cast<int64_t>(i)));
    e->set_score(i < rep.scores.size() ? rep.scores[i] : 0);
  }
}

// ---- Writes -------------------------------------------------------------------------------

Status PrepareDelete(const ServiceContext&, Stream& s, std::string_view m, std::vector<Call>& calls,
                     int64_t) {
  auto* r = Parse<lb::_DeleteLeaderboardRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Add(calls, api::Op::kDelete, s.cache_id, BoardKey(s, r->leaderboard()));
  return Status::Ok();
}

Status PrepareUpsert(const ServiceContext&, Stream& s, std::string_view m, std::vector<Call>& calls,
                     int64_t) {
  auto* r = Parse<lb::_UpsertElementsRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (Status st = CheckCount(r->elements().size(), GrpcError::kTooManyElements); !st.ok()) {
    return st;
  }
  if (r->elements().empty()) return Status::Ok();  // nothing to store
  const size_t n = static_cast<size_t>(r->elements_size());
  std::span<uint32_t> ids = s.scratch.Alloc<uint32_t>(n);
  std::span<double> scores = s.scratch.Alloc<double>(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& e = r->elements(static_cast<int>(i));
    if (std::isnan(e.score())) return Error(GrpcError::kElementScoreNaN);
    ids[i] = e.id();
    scores[i] = e.score();
  }
  Call& c = Add(calls, api::Op::kZAdd, s.cache_id, BoardKey(s, r->leaderboard()));
  c.req.args = IdMembers(s, ids);
  c.req.scores = scores;
  return Status::Ok();
}

Status PrepareRemove(const ServiceContext&, Stream& s, std::string_view m, std::vector<Call>& calls,
                     int64_t) {
  auto* r = Parse<lb::_RemoveElementsRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (Status st = CheckCount(r->ids().size(), GrpcError::kTooManyIds); !st.ok()) return st;
  if (r->ids().empty()) return Status::Ok();
  Call& c = Add(calls, api::Op::kZRem, s.cache_id, BoardKey(s, r->leaderboard()));
  c.req.args = IdMembers(s, Ids(r->ids()));
  return Status::Ok();
}

// ---- Reads --------------------------------------------------------------------------------

Status PrepareLength(const ServiceContext&, Stream& s, std::string_view m, std::vector<Call>& calls,
                     int64_t) {
  auto* r = Parse<lb::_GetLeaderboardLengthRequest>(s, m);
  if (r == nullptr) return BadMessage();
  Add(calls, api::Op::kZCard, s.cache_id, BoardKey(s, r->leaderboard()));
  return Status::Ok();
}

void FinishLength(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  lb::_GetLeaderboardLengthResponse resp;
  resp.set_count(Rank(calls[0].reply.integer));  // a missing leaderboard counts 0
  AppendMessage(s.out, resp);
}

Status PrepareGetByRank(const ServiceContext&, Stream& s, std::string_view m,
                        std::vector<Call>& calls, int64_t) {
  auto* r = Parse<lb::_GetByRankRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (!r->has_rank_range()) return Error(GrpcError::kGetByRankNoRange);
  auto desc = Descending(r->order());
  if (!desc.ok()) return desc.status();
  const uint32_t start = r->rank_range().start_inclusive();
  const uint32_t end = r->rank_range().end_exclusive();
  if (end <= start) return Error(GrpcError::kRankRangeEmpty, end, start);
  if (end - start > kMaxRange) return Error(GrpcError::kRankRangeTooWide, end - start, kMaxRange);
  Call& c = Add(calls, api::Op::kZRange, s.cache_id, BoardKey(s, r->leaderboard()));
  c.req.flags = api::kSlice | api::kWithScores | (*desc ? api::kRev : 0u);
  c.req.Set(api::IndexRange{start, end});
  return Status::Ok();
}

void FinishGetByRank(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  lb::_GetByRankResponse resp;
  AppendRanked(resp, calls[0].reply, calls[0].req.Get<api::IndexRange>().start);
  AppendMessage(s.out, resp);
}

// One kZRank per id; ids not in the leaderboard are left out of the response.
Status PrepareGetRank(const ServiceContext&, Stream& s, std::string_view m,
                      std::vector<Call>& calls, int64_t) {
  auto* r = Parse<lb::_GetRankRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (Status st = CheckCount(r->ids().size(), GrpcError::kTooManyIds); !st.ok()) return st;
  auto desc = Descending(r->order());
  if (!desc.ok()) return desc.status();
  const std::string_view key = BoardKey(s, r->leaderboard());
  std::span<const std::string_view> members = IdMembers(s, Ids(r->ids()));
  for (size_t i = 0; i < members.size(); ++i) {
    Call& c = Add(calls, api::Op::kZRank, s.cache_id, key);
    c.req.args = members.subspan(i, 1);
    if (*desc) c.req.flags = api::kRev;
  }
  return Status::Ok();
}

void FinishGetRank(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  lb::_GetRankResponse resp;
  for (uint32_t i = 0; i < s.num_calls; ++i) {
    const Call& c = calls[i];
    uint32_t id;
    if (!c.reply.found || c.req.args.empty() || !DecodeId(c.req.args[0], &id)) continue;
    auto* e = resp.add_elements();
    e->set_id(id);
    e->set_rank(Rank(c.reply.integer));
    e->set_score(c.reply.scores.empty() ? 0 : c.reply.scores[0]);
  }
  AppendMessage(s.out, resp);
}

// Two calls in one round: [0] the range by score; [1] how many elements rank before the
// range (ascending: scores below min; descending: scores at or above max_exclusive), so the
// i-th element's rank is that count + offset + i.
Status PrepareGetByScore(const ServiceContext&, Stream& s, std::string_view m,
                         std::vector<Call>& calls, int64_t) {
  auto* r = Parse<lb::_GetByScoreRequest>(s, m);
  if (r == nullptr) return BadMessage();
  auto desc = Descending(r->order());
  if (!desc.ok()) return desc.status();
  const uint32_t limit = r->limit_elements() == 0 ? kMaxRange : r->limit_elements();
  if (limit > kMaxRange) return Error(GrpcError::kLimitElementsTooLarge, limit, kMaxRange);
  const auto& range = r->score_range();  // unset: both sides unbounded
  const bool has_min = range.min_case() == lb::_ScoreRange::kMinInclusive;
  const bool has_max = range.max_case() == lb::_ScoreRange::kMaxExclusive;
  const double lo = has_min ? range.min_inclusive() : -kInf;
  const double hi = has_max ? range.max_exclusive() : kInf;
  if (std::isnan(lo) || std::isnan(hi)) return Error(GrpcError::kScoreBoundsNaN);

  const std::string_view key = BoardKey(s, r->leaderboard());
  Call& c = Add(calls, api::Op::kZRange, s.cache_id, key);
  c.req.flags = api::kByScore | api::kWithScores | (*desc ? api::kRev : 0u) |
                (has_max ? api::kHiExclusive : 0u);
  c.req.Set(api::ScoreRange{.lo = lo, .hi = hi, .offset = r->offset(), .count = limit});

  Call& before = Add(calls, api::Op::kZCount, s.cache_id, key);
  if (!*desc) {  // scores < lo (none when unbounded: [-inf, -inf) is empty)
    before.req.Set(api::ScoreRange{.lo = -kInf, .hi = lo});
    before.req.flags = api::kHiExclusive;
  } else {  // scores >= hi (none when unbounded: (+inf, +inf] is empty)
    before.req.Set(api::ScoreRange{.lo = hi, .hi = kInf});
    if (!has_max) before.req.flags = api::kLoExclusive;
  }
  return Status::Ok();
}

void FinishGetByScore(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  lb::_GetByScoreResponse resp;
  const int64_t before = s.num_calls > 1 ? calls[1].reply.integer : 0;
  AppendRanked(resp, calls[0].reply, before + calls[0].req.Get<api::ScoreRange>().offset);
  AppendMessage(s.out, resp);
}

// GetCompetitionRank: an element's rank is the number of elements with a strictly better
// score (equal scores share a rank). Round 1 reads the ids' scores (one kZScore); `followup`
// keeps the found ones in stream.owned[0] as packed (uint32 id, double score) records; round 2
// counts the better scores of each (one kZCount per found id).
struct Found {
  uint32_t id;
  double score;
};

// The records followup kept (copied out: the string's bytes carry no Found objects).
std::vector<Found> FoundIds(const Stream& s) {
  std::vector<Found> found;
  if (s.owned.empty()) return found;
  const std::string& packed = s.owned[0];
  found.resize(packed.size() / sizeof(Found));
  if (!found.empty()) std::memcpy(found.data(), packed.data(), found.size() * sizeof(Found));
  return found;
}

bool CompetitionDescending(const lb::_GetCompetitionRankRequest& r) {
  return !r.has_order() || r.order() == lb::DESCENDING;  // unset: best = highest
}

Status PrepareCompetitionRank(const ServiceContext&, Stream& s, std::string_view m,
                              std::vector<Call>& calls, int64_t) {
  auto* r = Parse<lb::_GetCompetitionRankRequest>(s, m);
  if (r == nullptr) return BadMessage();
  if (Status st = CheckCount(r->ids().size(), GrpcError::kTooManyIds); !st.ok()) return st;
  if (r->has_order()) {
    if (auto desc = Descending(r->order()); !desc.ok()) return desc.status();
  }
  Call& c = Add(calls, api::Op::kZScore, s.cache_id, BoardKey(s, r->leaderboard()));
  c.req.args = IdMembers(s, Ids(r->ids()));
  return Status::Ok();
}

bool FollowupCompetitionRank(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls) || s.num_calls != 1) return false;
  const Call& c = calls[0];
  std::vector<Found> found;
  for (size_t i = 0; i < c.req.args.size(); ++i) {
    uint32_t id;
    if (i < c.reply.numbers.size() && c.reply.numbers[i] == 1 && i < c.reply.scores.size() &&
        DecodeId(c.req.args[i], &id)) {
      found.push_back(Found{id, c.reply.scores[i]});
    }
  }
  if (found.empty()) return false;  // answered empty by finish
  std::string packed(found.size() * sizeof(Found), '\0');
  std::memcpy(packed.data(), found.data(), packed.size());
  s.owned.clear();
  s.owned.push_back(std::move(packed));
  return true;
}

Status Prepare2CompetitionRank(const ServiceContext&, Stream& s, std::vector<Call>& calls,
                               int64_t) {
  const auto& r = static_cast<const lb::_GetCompetitionRankRequest&>(*s.request);
  const bool desc = CompetitionDescending(r);
  const std::string_view key = BoardKey(s, r.leaderboard());
  for (const Found& f : FoundIds(s)) {
    Call& c = Add(calls, api::Op::kZCount, s.cache_id, key);
    if (desc) {  // scores > f.score
      c.req.Set(api::ScoreRange{.lo = f.score, .hi = kInf});
      c.req.flags = api::kLoExclusive;
    } else {  // scores < f.score
      c.req.Set(api::ScoreRange{.lo = -kInf, .hi = f.score});
      c.req.flags = api::kHiExclusive;
    }
  }
  return Status::Ok();
}

void FinishCompetitionRank(const ServiceContext&, Stream& s, const Call* calls) {
  if (Failed(s, calls)) return;
  lb::_GetCompetitionRankResponse resp;
  if (s.phase == 1) {
    const std::vector<Found> found = FoundIds(s);
    for (uint32_t i = 0; i < s.num_calls && i < found.size(); ++i) {
      auto* e = resp.add_elements();
      e->set_id(found[i].id);
      e->set_rank(Rank(calls[i].reply.integer));
      e->set_score(found[i].score);
    }
  }  // else no id was found: no elements
  AppendMessage(s.out, resp);
}

#define CELLAR_LB(name) "/leaderboard.Leaderboard/" #name

const Method kMethods[] = {
    Data(CELLAR_LB(DeleteLeaderboard), kW, PrepareDelete, FinishEmpty),
    Data(CELLAR_LB(UpsertElements), kW, PrepareUpsert, FinishEmpty),
    Data(CELLAR_LB(RemoveElements), kW, PrepareRemove, FinishEmpty),
    Data(CELLAR_LB(GetLeaderboardLength), kR, PrepareLength, FinishLength),
    Data(CELLAR_LB(GetByRank), kR, PrepareGetByRank, FinishGetByRank),
    Data(CELLAR_LB(GetRank), kR, PrepareGetRank, FinishGetRank),
    Data(CELLAR_LB(GetByScore), kR, PrepareGetByScore, FinishGetByScore),
    TwoRound(CELLAR_LB(GetCompetitionRank), kR, PrepareCompetitionRank, FollowupCompetitionRank,
             Prepare2CompetitionRank, FinishCompetitionRank),
};

#undef CELLAR_LB

}  // namespace

std::span<const Method> LeaderboardMethods() { return kMethods; }

}  // namespace cellar::grpc
