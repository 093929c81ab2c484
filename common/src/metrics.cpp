#include "selffeed/common/metrics.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace selffeed::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

struct Registry::Family {
  std::string help;
  std::string type;
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::vector<Series> series;

  Series* find(const Labels& labels) {
    for (auto& s : series) {
      if (s.labels == labels) return &s;
    }
    return nullptr;
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Family& Registry::family(const std::string& name, const std::string& help, const char* type) {
  auto& slot = families_[name];
  if (!slot) {
    slot = std::make_unique<Family>();
    slot->help = help;
    slot->type = type;
  } else if (slot->type != type) {
    // A programming error: one name registered as two kinds of metric.
    throw std::logic_error("metric " + name + " registered as " + slot->type + " and " + type);
  }
  return *slot;
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, "counter");
  if (auto* s = f.find(labels)) return *s->counter;
  f.series.push_back({labels, std::make_unique<Counter>(), nullptr, nullptr});
  return *f.series.back().counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, "gauge");
  if (auto* s = f.find(labels)) return *s->gauge;
  f.series.push_back({labels, nullptr, std::make_unique<Gauge>(), nullptr});
  return *f.series.back().gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> upper_bounds,
                               const Labels& labels) {
  std::lock_guard lock(mutex_);
  Family& f = family(name, help, "histogram");
  if (auto* s = f.find(labels)) return *s->histogram;
  f.series.push_back({labels, nullptr, nullptr, std::make_unique<Histogram>(std::move(upper_bounds))});
  return *f.series.back().histogram;
}

Counter& error_counter(Registry& registry, std::string_view code) {
  return registry.counter("selffeed_errors_total", "Errors reported to clients, by code.", {{"code", std::string(code)}});
}

namespace {

std::string escape_label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string label_text(const Labels& labels, const std::string& extra_name = {}, const std::string& extra_value = {}) {
  Labels all = labels;
  if (!extra_name.empty()) all.emplace_back(extra_name, extra_value);
  if (all.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i) out += ',';
    out += all[i].first + "=\"" + escape_label_value(all[i].second) + "\"";
  }
  return out + "}";
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream out;
  out.precision(10);
  out << v;
  return out.str();
}

}  // namespace

std::string Registry::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& [name, f] : families_) {
    out << "# HELP " << name << ' ' << f->help << "\n# TYPE " << name << ' ' << f->type << '\n';
    for (const auto& s : f->series) {
      if (s.counter) out << name << label_text(s.labels) << ' ' << s.counter->value() << '\n';
      if (s.gauge) out << name << label_text(s.labels) << ' ' << number(s.gauge->value()) << '\n';
      if (s.histogram) {
        const Histogram& h = *s.histogram;
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= h.upper_bounds().size(); ++i) {
          cumulative += h.bucket(i);
          const double le = i < h.upper_bounds().size() ? h.upper_bounds()[i] : INFINITY;
          out << name << "_bucket" << label_text(s.labels, "le", number(le)) << ' ' << cumulative << '\n';
        }
        out << name << "_sum" << label_text(s.labels) << ' ' << number(h.sum()) << '\n';
        out << name << "_count" << label_text(s.labels) << ' ' << h.count() << '\n';
      }
    }
  }
  return out.str();
}

}  // namespace selffeed::metrics
