#include "storage/types/dict.h"

namespace cellar::storage {

Dict::~Dict() {
  hash_.Clear([](HEntry* e) { std::free(e); });
}

HEntry* Dict::NewEntry(uint32_t hash, std::string_view f, std::string_view v) {
  HEntry* e = HEntry::New(hash, PayloadSize(f, v));
  char* p = PutVarint(e->payload(), static_cast<uint32_t>(f.size()));
  if (!f.empty()) std::memcpy(p, f.data(), f.size());
  p = PutVarint(p + f.size(), static_cast<uint32_t>(v.size()));
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  entry_bytes_ += HEntry::AllocBytes(e);
  return e;
}

void Dict::FreeEntry(HEntry* e) {
  entry_bytes_ -= HEntry::AllocBytes(e);
  std::free(e);
}

uint32_t Dict::FindPacked(std::string_view field) const {
  for (uint32_t pos = 0; pos < packed_.end();) {
    uint32_t next;
    std::string_view f = packed_.At(pos, &next);
    if (f == field) return pos;
    packed_.At(next, &pos);
  }
  return packed_.end();
}

void Dict::ConvertToLarge() {
  ForEach([&](std::string_view f, std::string_view v) {
    hash_.Insert(NewEntry(ElementHash(f), f, v));
  });
  packed_.Clear();
  large_ = true;
}

bool Dict::Set(std::string_view field, std::string_view value) {
  if (!large_) {
    const uint32_t pos = FindPacked(field);
    const bool fits = field.size() <= kMaxPackedBytes && value.size() <= kMaxPackedBytes;
    if (pos != packed_.end()) {
      if (fits) {
        uint32_t vpos;
        packed_.At(pos, &vpos);
        packed_.ReplaceAt(vpos, value);
        return false;
      }
    } else if (fits && packed_.count() / 2 < kMaxPackedFields) {
      packed_.Append2(field, value);
      return true;
    }
    ConvertToLarge();
  }
  const uint32_t h = ElementHash(field);
  auto same = [&](const HEntry* e) {
    std::string_view f, v;
    Decode(e, &f, &v);
    return f == field;
  };
  HEntry* old = hash_.Find(h, same);
  if (old != nullptr) {
    std::string_view f, v;
    Decode(old, &f, &v);
    if (v.size() == value.size()) {  // same layout: overwrite in place
      if (!value.empty()) std::memcpy(const_cast<char*>(v.data()), value.data(), value.size());
      return false;
    }
    hash_.Unlink(old);
    HEntry* fresh = NewEntry(h, field, value);  // field still read from `old`: free it after
    FreeEntry(old);
    hash_.Insert(fresh);
    return false;
  }
  hash_.Insert(NewEntry(h, field, value));
  return true;
}

std::optional<std::string_view> Dict::Get(std::string_view field) const {
  if (!large_) {
    const uint32_t pos = FindPacked(field);
    if (pos == packed_.end()) return std::nullopt;
    uint32_t vpos;
    packed_.At(pos, &vpos);
    return packed_.At(vpos);
  }
  std::string_view value;
  HEntry* e = hash_.Find(ElementHash(field), [&](const HEntry* e) {
    std::string_view f;
    Decode(e, &f, &value);
    return f == field;
  });
  if (e == nullptr) return std::nullopt;
  return value;
}

bool Dict::Erase(std::string_view field) {
  if (!large_) {
    const uint32_t pos = FindPacked(field);
    if (pos == packed_.end()) return false;
    packed_.EraseAt(pos, 2);
    return true;
  }
  HEntry* e = hash_.Remove(ElementHash(field), [&](const HEntry* e) {
    std::string_view f, v;
    Decode(e, &f, &v);
    return f == field;
  });
  if (e == nullptr) return false;
  FreeEntry(e);
  return true;
}

size_t Dict::RecomputeBytesForTest() const {
  if (!large_) return packed_.bytes();
  size_t n = hash_.bucket_bytes();
  hash_.ForEach([&](const HEntry* e) { n += HEntry::AllocBytes(e); });
  return n;
}

}  // namespace cellar::storage
