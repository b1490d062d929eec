#include "storage/types/set.h"

namespace cellar::storage {

Set::~Set() {
  hash_.Clear([](HEntry* e) { std::free(e); });
}

uint32_t Set::FindPacked(std::string_view member) const {
  uint32_t found = packed_.end();
  packed_.ForEach([&](uint32_t pos, std::string_view m) {
    if (m != member) return true;
    found = pos;
    return false;
  });
  return found;
}

void Set::InsertLarge(uint32_t hash, std::string_view member) {
  HEntry* e = HEntry::New(hash, VarintSize(static_cast<uint32_t>(member.size())) + member.size());
  char* p = PutVarint(e->payload(), static_cast<uint32_t>(member.size()));
  if (!member.empty()) std::memcpy(p, member.data(), member.size());
  entry_bytes_ += HEntry::AllocBytes(e);
  hash_.Insert(e);
}

void Set::ConvertToLarge() {
  packed_.ForEach([&](uint32_t, std::string_view m) {
    InsertLarge(ElementHash(m), m);
    return true;
  });
  packed_.Clear();
  large_ = true;
}

bool Set::Add(std::string_view member) {
  if (!large_) {
    if (FindPacked(member) != packed_.end()) return false;
    if (member.size() <= kMaxPackedBytes && packed_.count() < kMaxPackedMembers) {
      packed_.Append(member);
      return true;
    }
    ConvertToLarge();
  }
  const uint32_t h = ElementHash(member);
  if (hash_.Find(h, [&](const HEntry* e) { return Member(e) == member; }) != nullptr) return false;
  InsertLarge(h, member);
  return true;
}

bool Set::Contains(std::string_view member) const {
  if (!large_) return FindPacked(member) != packed_.end();
  return hash_.Find(ElementHash(member), [&](const HEntry* e) { return Member(e) == member; }) !=
         nullptr;
}

bool Set::Erase(std::string_view member) {
  if (!large_) {
    const uint32_t pos = FindPacked(member);
    if (pos == packed_.end()) return false;
    packed_.EraseAt(pos);
    return true;
  }
  HEntry* e =
      hash_.Remove(ElementHash(member), [&](const HEntry* e) { return Member(e) == member; });
  if (e == nullptr) return false;
  entry_bytes_ -= HEntry::AllocBytes(e);
  std::free(e);
  return true;
}

size_t Set::RecomputeBytesForTest() const {
  if (!large_) return packed_.bytes();
  size_t n = hash_.bucket_bytes();
  hash_.ForEach([&](const HEntry* e) { n += HEntry::AllocBytes(e); });
  return n;
}

}  // namespace cellar::storage
