#include "metadata/local_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "common/numbers.h"

namespace cellar::metadata {

namespace {

constexpr std::string_view kHeader = "cellar-metadata\t1\t";

std::string Escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::optional<std::string> Unescape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '\\') {
      out.push_back(v[i]);
      continue;
    }
    if (++i == v.size()) return std::nullopt;
    switch (v[i]) {
      case '\\': out.push_back('\\'); break;
      case 't': out.push_back('\t'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      default: return std::nullopt;
    }
  }
  return out;
}

std::optional<int64_t> ParseRevision(std::string_view s) {
  auto v = ParseInt64(s);
  if (!v || *v < 0) return std::nullopt;
  return v;
}

}  // namespace

Status ValidateKey(std::string_view key) {
  if (key.empty() || key.size() > 512) {
    return Status(Code::kInvalidArgument, "metadata key must be 1 to 512 bytes");
  }
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return Status(Code::kInvalidArgument, "metadata key must be printable ASCII");
    }
  }
  return Status::Ok();
}

LocalStore::LocalStore(std::string dir)
    : path_(dir.empty() ? std::string() : dir + "/metadata.tsv") {
  if (path_.empty()) return;
  std::ifstream in(path_);
  if (!in) return;  // first start
  std::lock_guard lock(mu_);
  std::string line;
  int line_no = 0;
  auto corrupt = [&](const char* what) {
    return std::runtime_error("corrupt metadata file " + path_ + " at line " +
                              std::to_string(line_no) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1) {
      if (line.compare(0, kHeader.size(), kHeader) != 0) throw corrupt("unknown header");
      auto rev = ParseRevision(std::string_view(line).substr(kHeader.size()));
      if (!rev) throw corrupt("bad revision");
      revision_ = *rev;
      continue;
    }
    if (line.empty()) continue;
    // <mod revision> TAB <key> TAB <value, escaped>
    const size_t t1 = line.find('\t');
    const size_t t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string::npos) throw corrupt("expected three fields");
    const std::string_view l(line);
    auto rev = ParseRevision(l.substr(0, t1));
    std::string key(l.substr(t1 + 1, t2 - t1 - 1));
    auto value = Unescape(l.substr(t2 + 1));
    if (!rev || *rev == 0 || *rev > revision_) throw corrupt("bad mod revision");
    if (!ValidateKey(key).ok()) throw corrupt("bad key");
    if (!value) throw corrupt("bad escape in value");
    data_[key] = Entry{key, std::move(*value), *rev};
  }
  if (line_no == 0) throw std::runtime_error("corrupt metadata file " + path_ + ": empty");
}

Status LocalStore::PersistLocked() const {
  if (path_.empty()) return Status::Ok();
  std::string text(kHeader);
  text += std::to_string(revision_) + "\n";
  for (const auto& [key, e] : data_) {
    text += std::to_string(e.mod_revision) + "\t" + key + "\t" + Escape(e.value) + "\n";
  }
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kInternal, "cannot write " + tmp);
  size_t off = 0;
  bool ok = true;
  while (ok && off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    ok = n > 0;
    if (ok) off += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status(Code::kInternal, "cannot write " + path_);
  }
  return Status::Ok();
}

Snapshot LocalStore::ReadLocked(std::string_view prefix) const {
  Snapshot s;
  s.revision = revision_;
  for (auto it = data_.lower_bound(prefix);
       it != data_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    s.entries.push_back(it->second);
  }
  return s;
}

StatusOr<Snapshot> LocalStore::Read(std::string_view prefix) {
  std::lock_guard lock(mu_);
  return ReadLocked(prefix);
}

StatusOr<int64_t> LocalStore::Commit(std::span<const Compare> compares,
                                     std::span<const Write> writes) {
  for (const Write& w : writes) {
    if (Status st = ValidateKey(w.key); !st.ok()) return st;
  }
  std::lock_guard deliver(deliver_mu_);
  std::vector<Change> changes;
  int64_t revision = 0;
  {
    std::lock_guard lock(mu_);
    for (const Compare& c : compares) {
      auto it = data_.find(c.key);
      const int64_t have = it == data_.end() ? 0 : it->second.mod_revision;
      if (have != c.mod_revision) {
        return Status(Code::kFailedPrecondition,
                      "metadata changed concurrently (" + c.key + "); read again and retry");
      }
    }
    // Apply on a copy of what changes, so a failed write to disk leaves memory as it was.
    std::map<std::string, std::optional<Entry>> undo;
    const int64_t next = revision_ + 1;
    for (const Write& w : writes) {
      auto it = data_.find(w.key);
      if (!undo.count(w.key)) {
        undo[w.key] = it == data_.end() ? std::nullopt : std::optional<Entry>(it->second);
      }
      if (w.value) {
        data_[w.key] = Entry{w.key, *w.value, next};
      } else if (it != data_.end()) {
        data_.erase(it);
      } else {
        continue;
      }
      changes.push_back(Change{w.key, w.value, next});
    }
    if (changes.empty()) return int64_t{0};  // nothing changed
    revision_ = next;
    if (Status st = PersistLocked(); !st.ok()) {
      --revision_;
      for (auto& [key, old] : undo) {
        if (old) {
          data_[key] = std::move(*old);
        } else {
          data_.erase(key);
        }
      }
      return st;
    }
    revision = revision_;
  }
  for (const Watcher& w : watchers_) {
    Update u;
    for (const Change& c : changes) {
      if (c.key.compare(0, w.prefix.size(), w.prefix) == 0) u.changes.push_back(c);
    }
    if (!u.changes.empty()) w.fn(u);
  }
  return revision;
}

uint64_t LocalStore::Watch(std::string prefix, WatchFn fn) {
  std::lock_guard deliver(deliver_mu_);
  Update u;
  u.reset = true;
  {
    std::lock_guard lock(mu_);
    u.snapshot = ReadLocked(prefix);
  }
  fn(u);
  const uint64_t id = next_watch_++;
  watchers_.push_back(Watcher{id, std::move(prefix), std::move(fn)});
  return id;
}

void LocalStore::Unwatch(uint64_t id) {
  std::lock_guard deliver(deliver_mu_);
  std::erase_if(watchers_, [id](const Watcher& w) { return w.id == id; });
}

std::string LocalStore::Describe() const {
  return path_.empty() ? std::string("local (memory only)") : "local " + path_;
}

}  // namespace cellar::metadata
