// How often each user was asked for feedback in the last 24 hours, across conversations
// (ChatEngineOptions::max_feedback_requests_per_user): the cap per conversation lets a user
// who opens conversation after conversation be asked in every one. Users are known by their
// user id; anonymous conversations have the cap per conversation only. What the server asked
// before a restart comes from the store, on the user's first hello (remember()). Not
// thread-safe: the inference worker owns it.
//
//   UserAskLimit limit(3);
//   if (!limit.knows(user)) limit.remember(user, asked_ms_from_the_store);
//   policy.may_ask = limit.may_ask(user, now_ms);
//   if (asked) limit.asked(user, now_ms);
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

namespace selffeed::app {

class UserAskLimit {
 public:
  static constexpr std::int64_t kWindowMs = 24LL * 3600 * 1000;

  explicit UserAskLimit(std::uint32_t per_day) : per_day_(per_day) {}

  // Whether this server has counted `user`'s requests since it started.
  bool knows(const std::string& user) const { return asked_.contains(user); }

  // The times (ms since the epoch) `user` was asked before this server knew them.
  void remember(const std::string& user, const std::vector<std::int64_t>& asked_ms) {
    std::deque<std::int64_t>& times = asked_[user];
    times.assign(asked_ms.begin(), asked_ms.end());
    std::sort(times.begin(), times.end());
  }

  bool may_ask(const std::string& user, std::int64_t now_ms) {
    const auto it = asked_.find(user);
    return it == asked_.end() || recent(it->second, now_ms).size() < per_day_;
  }

  void asked(const std::string& user, std::int64_t now_ms) {
    recent(asked_[user], now_ms).push_back(now_ms);
    // Users not asked within the window hold nothing worth keeping: drop them now and
    // then, so that the table stays as large as the number of users asked in a day. One
    // dropped and seen again is read from the store again, which finds nothing recent.
    if (++asks_ % kAsksBetweenSweeps == 0) {
      for (auto it = asked_.begin(); it != asked_.end();) {
        it = recent(it->second, now_ms).empty() ? asked_.erase(it) : std::next(it);
      }
    }
  }

  std::size_t users() const { return asked_.size(); }

  static constexpr std::uint64_t kAsksBetweenSweeps = 1024;

 private:
  // `times` without those older than the window.
  static std::deque<std::int64_t>& recent(std::deque<std::int64_t>& times, std::int64_t now_ms) {
    while (!times.empty() && times.front() <= now_ms - kWindowMs) times.pop_front();
    return times;
  }

  const std::uint32_t per_day_;
  std::unordered_map<std::string, std::deque<std::int64_t>> asked_;
  std::uint64_t asks_ = 0;
};

}  // namespace selffeed::app
