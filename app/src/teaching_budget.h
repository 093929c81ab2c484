// How much each client address may still teach the bot (ChatEngineOptions::
// max_examples_per_address_per_hour): a token bucket per address that holds an hour's
// worth of examples and refills continuously. Not thread-safe: the inference worker owns it.
//
//   TeachingBudget budget(100);
//   if (budget.has_room(address, now)) { ...harvest...; budget.spend(address, examples, now); }
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <unordered_map>

namespace selffeed::app {

class TeachingBudget {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TeachingBudget(std::size_t per_hour) : per_hour_(static_cast<double>(per_hour)) {}

  // Whether `address` may give one more example at `now`.
  bool has_room(const std::string& address, Clock::time_point now) {
    const auto it = buckets_.find(address);
    return it == buckets_.end() || refill(it->second, now) >= 1;  // no bucket: a full one
  }

  // `address` gave `examples` at `now` (beyond its budget too: an answer it was asked for).
  void spend(const std::string& address, std::size_t examples, Clock::time_point now) {
    if (examples == 0) return;
    auto [spent, added] = buckets_.try_emplace(address, Bucket{per_hour_, now});
    double& tokens = refill(spent->second, now);
    tokens = std::max(0.0, tokens - static_cast<double>(examples));
    // Full buckets hold nothing worth keeping: drop them now and then, so that the table
    // stays as large as the number of addresses that taught the bot within the hour.
    if (++spends_ % kSpendsBetweenSweeps == 0) {
      for (auto it = buckets_.begin(); it != buckets_.end();) {
        it = it != spent && refill(it->second, now) >= per_hour_ ? buckets_.erase(it) : std::next(it);
      }
    }
  }

  // Addresses with a bucket that is not known to be full.
  std::size_t addresses() const { return buckets_.size(); }

  static constexpr std::uint64_t kSpendsBetweenSweeps = 1024;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point at;
  };

  double& refill(Bucket& bucket, Clock::time_point now) const {
    const double hours = std::chrono::duration<double, std::ratio<3600>>(now - bucket.at).count();
    bucket.tokens = std::min(per_hour_, bucket.tokens + std::max(0.0, hours) * per_hour_);
    bucket.at = std::max(bucket.at, now);
    return bucket.tokens;
  }

  const double per_hour_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::uint64_t spends_ = 0;
};

}  // namespace selffeed::app
