// For the engine's tests: an op's numbers given positionally (as the tests write them) set
// as the request's typed arguments (api::Params), the way a front-end would.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "api/request.h"

namespace cellar::storage::testing {

inline void SetNumbers(api::Request& r, int64_t a, int64_t b = 0) {
  using api::Op;
  switch (r.op) {
    case Op::kIncrBy: case Op::kHIncrBy:
      r.Set(api::Delta{a});
      return;
    case Op::kGetRange: case Op::kLRange: case Op::kLTrim: case Op::kZRange:
      r.Set(api::IndexRange{a, b});
      return;
    case Op::kSetRange: case Op::kLIndex: case Op::kLSet:
      r.Set(api::Position{a});
      return;
    case Op::kScan: case Op::kKeys: case Op::kHScan: case Op::kSScan: case Op::kZScan:
      r.Set(api::Cursor{a, b});
      return;
    case Op::kLPop: case Op::kRPop: case Op::kSPop: case Op::kSRandMember: case Op::kZPopMin:
    case Op::kZPopMax: case Op::kLRem:
      r.Set(api::Count{a});
      return;
    case Op::kSetIf:
      r.Set(api::Condition{static_cast<api::SetIfCondition>(a)});
      return;
    case Op::kHGetAll:
      r.Set(api::FieldsForm{static_cast<api::FieldsForm::Form>(a)});
      return;
    case Op::kLPush: case Op::kRPush:
      r.Set(api::Truncate{b});
      return;
    case Op::kLInsert:
      r.Set(api::InsertAt{a == 1});
      return;
    case Op::kLErase:
      r.Set(api::EraseAll{a == 1});
      return;
    default:
      if (a != 0 || b != 0) ADD_FAILURE() << "numbers given to an op that takes none";
      return;
  }
}

}  // namespace cellar::storage::testing
