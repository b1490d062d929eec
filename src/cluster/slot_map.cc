#include "cluster/slot_map.h"

#include <algorithm>

#include "common/json.h"

namespace cellar::cluster {

using routing::kSlots;

std::vector<SlotMap::Range> SlotMap::Ranges() const {
  std::vector<Range> out;
  for (uint32_t s = 0; s < owner.size(); ++s) {
    if (!out.empty() && out.back().node == owner[s] && out.back().last + 1 == s) {
      out.back().last = s;
    } else {
      out.push_back(Range{s, s, owner[s]});
    }
  }
  return out;
}

std::string SlotMap::ToJson() const {
  std::string out = "{\"epoch\":" + std::to_string(epoch) + ",\"ranges\":[";
  bool first = true;
  for (const Range& r : Ranges()) {
    out += (first ? "[" : ",[") + std::to_string(r.first) + "," + std::to_string(r.last) +
           ",\"" + JsonEscape(r.node) + "\"]";
    first = false;
  }
  return out + "]}";
}

std::optional<SlotMap> SlotMap::FromJson(std::string_view json) {
  auto j = ParseJson(json);
  if (!j || j->type != Json::Type::kObject) return std::nullopt;
  const Json* epoch = j->Find("epoch");
  const Json* ranges = j->Find("ranges");
  if (epoch == nullptr || !epoch->AsUint() || ranges == nullptr ||
      ranges->type != Json::Type::kArray) {
    return std::nullopt;
  }
  SlotMap m;
  m.epoch = static_cast<int64_t>(*epoch->AsUint());
  m.owner.reserve(kSlots);
  for (const Json& r : ranges->items) {
    if (r.type != Json::Type::kArray || r.items.size() != 3) return std::nullopt;
    auto first = r.items[0].AsUint();
    auto last = r.items[1].AsUint();
    const Json& node = r.items[2];
    // Each range starts where the one before ended: sorted, no gap, no overlap.
    if (!first || !last || *first != m.owner.size() || *last < *first || *last >= kSlots ||
        node.type != Json::Type::kString || node.text.empty()) {
      return std::nullopt;
    }
    m.owner.insert(m.owner.end(), *last - *first + 1, node.text);
  }
  if (m.owner.size() != kSlots) return std::nullopt;
  return m;
}

std::map<std::string, uint32_t> SlotMap::Counts() const {
  std::map<std::string, uint32_t> out;
  for (const std::string& n : owner) ++out[n];
  return out;
}

SlotMap AssignEvenly(std::vector<std::string> nodes) {
  std::sort(nodes.begin(), nodes.end());
  SlotMap m;
  m.epoch = 1;
  m.owner.reserve(kSlots);
  const uint32_t n = static_cast<uint32_t>(nodes.size());
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t count = kSlots / n + (i < kSlots % n ? 1 : 0);
    m.owner.insert(m.owner.end(), count, nodes[i]);
  }
  return m;
}

std::optional<SlotMap> ReassignLost(const SlotMap& map, const std::set<std::string>& alive,
                                    const std::set<std::string>& takers) {
  if (alive.empty()) return std::nullopt;
  std::map<std::string, uint32_t> counts;  // the takers' slots
  for (const std::string& a : takers.empty() ? alive : takers) {
    if (alive.count(a)) counts[a] = 0;
  }
  if (counts.empty()) return std::nullopt;
  bool lost = false;
  for (const std::string& o : map.owner) {
    if (!alive.count(o)) {
      lost = true;
    } else if (auto it = counts.find(o); it != counts.end()) {
      ++it->second;
    }
  }
  if (!lost) return std::nullopt;
  SlotMap m = map;
  ++m.epoch;
  // Each run of lost slots is cut into pieces for the alive nodes with the fewest slots.
  const std::vector<SlotMap::Range> ranges = map.Ranges();
  for (const SlotMap::Range& r : ranges) {
    if (alive.count(r.node)) continue;
    uint32_t s = r.first;
    const uint32_t total = r.last - r.first + 1;
    const uint32_t piece = std::max<uint32_t>(1, total / static_cast<uint32_t>(counts.size()));
    while (s <= r.last) {
      auto fewest = std::min_element(counts.begin(), counts.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
      const uint32_t end = std::min(r.last, s + piece - 1);
      for (uint32_t x = s; x <= end; ++x) m.owner[x] = fewest->first;
      fewest->second += end - s + 1;
      s = end + 1;
    }
  }
  return m;
}

}  // namespace cellar::cluster
