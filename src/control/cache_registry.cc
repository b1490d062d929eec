#include "control/cache_registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cellar::control {

Status ValidateCacheName(std::string_view name) {
  if (name.empty() || name.size() > 255) {
    return Status(Code::kInvalidArgument, "cache name must be 1 to 255 bytes");
  }
  for (unsigned char c : name) {
    if (c < 0x21 || c > 0x7e) {
      return Status(Code::kInvalidArgument,
                    "cache name must be printable ASCII without spaces");
    }
  }
  return Status::Ok();
}

CacheRegistry::CacheRegistry(std::string metadata_dir)
    : path_(std::move(metadata_dir) + "/caches.tsv") {
  std::ifstream in(path_);
  if (!in) return;  // first start
  // Format: first line "next_id\t<n>", then "id\tname\tcreated_ms" per cache.
  std::string line;
  int line_no = 0;
  std::lock_guard lock(mu_);
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string a, b, c;
    std::getline(fields, a, '\t');
    std::getline(fields, b, '\t');
    std::getline(fields, c, '\t');
    try {
      if (a == "next_id") {
        next_id_ = static_cast<uint32_t>(std::stoul(b));
        continue;
      }
      CacheInfo info{static_cast<uint32_t>(std::stoul(a)), b, std::stoll(c)};
      if (!ValidateCacheName(info.name).ok()) throw std::invalid_argument("bad name");
      if (info.id >= next_id_) next_id_ = info.id + 1;
      by_name_[info.name] = info;
    } catch (const std::exception&) {
      throw std::runtime_error("corrupt cache list " + path_ + " at line " +
                               std::to_string(line_no));
    }
  }
}

Status CacheRegistry::PersistLocked() {
  // Write a temp file, fsync, rename: a crash leaves the old list or the new one, never half.
  std::string tmp = path_ + ".tmp";
  std::string data = "next_id\t" + std::to_string(next_id_) + "\n";
  for (const auto& [name, info] : by_name_) {
    data += std::to_string(info.id) + "\t" + name + "\t" + std::to_string(info.created_ms) + "\n";
  }
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kInternal, "cannot write " + tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      return Status(Code::kInternal, "cannot write " + tmp);
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return Status(Code::kInternal, "cannot rename " + tmp);
  }
  return Status::Ok();
}

StatusOr<CacheInfo> CacheRegistry::Create(std::string_view name) {
  if (Status st = ValidateCacheName(name); !st.ok()) return st;
  std::lock_guard lock(mu_);
  if (by_name_.find(name) != by_name_.end()) {
    return Status(Code::kAlreadyExists, "cache already exists");
  }
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  CacheInfo info{next_id_++, std::string(name), now};
  by_name_[info.name] = info;
  if (Status st = PersistLocked(); !st.ok()) {
    by_name_.erase(info.name);
    return st;
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return info;
}

StatusOr<CacheInfo> CacheRegistry::Remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return Status(Code::kNotFound, "cache not found");
  CacheInfo info = it->second;
  by_name_.erase(it);
  if (Status st = PersistLocked(); !st.ok()) {
    by_name_[info.name] = info;
    return st;
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return info;
}

std::optional<CacheInfo> CacheRegistry::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::vector<CacheInfo> CacheRegistry::List() const {
  std::lock_guard lock(mu_);
  std::vector<CacheInfo> out;
  out.reserve(by_name_.size());
  for (const auto& [name, info] : by_name_) out.push_back(info);
  return out;
}

}  // namespace cellar::control
