#include "common/metrics.h"

#include <cstdio>
#include <unordered_map>

#include "common/check.h"

namespace cellar::metrics {
namespace {

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

void Line(std::string& out, std::string_view name, std::string_view suffix, std::string_view labels,
          std::string_view extra, std::string_view value) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

std::string Seconds(uint64_t us) { return std::to_string(static_cast<double>(us) / 1e6); }

// Collects the samples of each declared def, rendered, in the def's own buffer.
class PrometheusSink final : public Sink {
 public:
  explicit PrometheusSink(std::span<const Source> sources) {
    for (const Source& s : sources) {
      for (const Def* d : s.defs) {
        if (index_.emplace(d, bodies_.size()).second) {
          order_.push_back(d);
          bodies_.emplace_back();
        }
      }
    }
  }

  void Add(const Def& def, std::string_view labels, uint64_t value) override {
    std::string* body = BodyOf(def);
    if (body == nullptr) return;
    CELLAR_BUG_CHECK(def.type != Type::kHistogram, "a histogram given one number");
    Line(*body, def.name, "", labels, "", std::to_string(value));
  }

  void Add(const Def& def, std::string_view labels, const HistogramValue& h) override {
    std::string* body = BodyOf(def);
    if (body == nullptr) return;
    CELLAR_BUG_CHECK(def.type == Type::kHistogram, "a counter or gauge given a histogram");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.counts.size() && i < h.bounds_us.size(); ++i) {
      cumulative += h.counts[i];
      const std::string le =
          "le=\"" + (h.bounds_us[i] == UINT64_MAX ? std::string("+Inf") : Seconds(h.bounds_us[i])) +
          "\"";
      Line(*body, def.name, "_bucket", labels, le, std::to_string(cumulative));
    }
    Line(*body, def.name, "_sum", labels, "", Seconds(h.sum_us));
    Line(*body, def.name, "_count", labels, "", std::to_string(cumulative));
  }

  std::string Render() const {
    std::string out;
    for (size_t i = 0; i < order_.size(); ++i) {
      const Def& d = *order_[i];
      out += "# HELP ";
      out += d.name;
      out += ' ';
      out += d.help;
      out += "\n# TYPE ";
      out += d.name;
      out += ' ';
      out += TypeName(d.type);
      out += '\n';
      out += bodies_[i];
    }
    return out;
  }

 private:
  std::string* BodyOf(const Def& def) {
    auto it = index_.find(&def);
    if (!CELLAR_BUG_CHECK(it != index_.end(), "a metric read that no source declares")) {
      return nullptr;
    }
    return &bodies_[it->second];
  }

  std::unordered_map<const Def*, size_t> index_;
  std::vector<const Def*> order_;
  std::vector<std::string> bodies_;
};

}  // namespace

std::string RenderPrometheus(std::span<const Source> sources) {
  PrometheusSink sink(sources);
  for (const Source& s : sources) {
    if (s.read) s.read(sink);
  }
  return sink.Render();
}

Snapshot::Snapshot(std::span<const Source> sources) {
  for (const Source& s : sources) {
    if (s.read) s.read(*this);
  }
}

void Snapshot::Add(const Def& def, std::string_view labels, uint64_t value) {
  samples_.push_back({&def, std::string(labels), value});
}

void Snapshot::Add(const Def& def, std::string_view labels, const HistogramValue& h) {
  uint64_t n = 0;
  for (uint64_t c : h.counts) n += c;
  samples_.push_back({&def, std::string(labels), n});
}

uint64_t Snapshot::Total(const Def& def, std::string_view match) const {
  uint64_t sum = 0;
  for (const Sample& s : samples_) {
    if (s.def == &def && (match.empty() || s.labels.find(match) != std::string::npos)) {
      sum += s.value;
    }
  }
  return sum;
}

uint64_t Snapshot::Value(const Def& def, std::string_view labels) const {
  for (const Sample& s : samples_) {
    if (s.def == &def && s.labels == labels) return s.value;
  }
  return 0;
}

std::string LabelEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

Source BugCheckMetrics() {
  static constexpr const Def* kDefs[] = {&kBugChecksFailed};
  return {kDefs, [](Sink& sink) { sink.Add(kBugChecksFailed, "", BugCheckFailures().load()); }};
}

}  // namespace cellar::metrics
