// The slot map: which node owns each of the fleet's 16,384 slots (routing::SlotOf). The
// control leader writes it to etcd (`slotmap`, compact: ranges, not 16,384 keys); every node
// reads it by watch (cluster/slots.h) and forwards calls by it (gateway/forward.h).
//
//   {"epoch":3,"ranges":[[0,5460,"n1"],[5461,10921,"n2"],[10922,16383,"n3"]]}
//
// Ranges are inclusive, sorted, and cover every slot exactly once; a map that does not is
// refused when read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "routing/router.h"

namespace cellar::cluster {

struct SlotMap {
  int64_t epoch = 0;  // +1 per change
  std::vector<std::string> owner;  // routing::kSlots node ids

  std::string ToJson() const;
  static std::optional<SlotMap> FromJson(std::string_view json);
  // Slots per node.
  std::map<std::string, uint32_t> Counts() const;
  // Contiguous runs of one owner: (first, last, node).
  struct Range {
    uint32_t first, last;
    std::string node;
  };
  std::vector<Range> Ranges() const;
};

// Every slot over `nodes`, in equal contiguous ranges (sorted by id; the first ones get one
// more when it does not divide evenly). epoch 1.
SlotMap AssignEvenly(std::vector<std::string> nodes);

// The slots of owners not in `alive` given to `takers` (alive nodes; empty: every alive one),
// fewest-slots first, in runs so ranges stay few; nullopt when every owner is alive (or
// nobody can take them).
std::optional<SlotMap> ReassignLost(const SlotMap& map, const std::set<std::string>& alive,
                                    const std::set<std::string>& takers = {});

}  // namespace cellar::cluster
