// Counters, gauges and histograms that render in the Prometheus text format (0.0.4), for
// the server's /metrics endpoint. Registration takes a lock; updates are lock-free.
//
//   metrics::Registry registry;
//   auto& turns = registry.counter("selffeed_turns_total", "User turns answered.");
//   turns.inc();
//   std::string page = registry.render();
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace selffeed::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `upper_bounds` ascending; a +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Non-cumulative count of bucket i (i == upper_bounds().size() is +Inf).
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Bucket bounds for latencies in seconds, 0.5 ms .. 10 s.
std::vector<double> latency_buckets();

// Owns every metric; references it hands out stay valid for its lifetime. Asking again for
// the same name and labels returns the same metric. Thread-safe.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> upper_bounds,
                       const Labels& labels = {});
  std::string render() const;

 private:
  struct Family;
  Family& family(const std::string& name, const std::string& help, const char* type);
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Family>> families_;
};

// selffeed_errors_total{code=...}: every error reported to a client, by its protocol code
// (one family for the transport's errors and the chat service's).
Counter& error_counter(Registry& registry, std::string_view code);

}  // namespace selffeed::metrics
