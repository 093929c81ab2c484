#include "user_ask_limit.h"

#include <gtest/gtest.h>

namespace selffeed::app {
namespace {

constexpr std::int64_t kHourMs = 3600 * 1000;

TEST(UserAskLimitTest, AUserIsAskedAtMostTheLimitInAnyDay) {
  UserAskLimit limit(2);
  const std::int64_t t0 = 1'800'000'000'000;
  EXPECT_FALSE(limit.knows("ann"));
  EXPECT_TRUE(limit.may_ask("ann", t0)) << "a user never counted was never asked";
  limit.asked("ann", t0);
  limit.asked("ann", t0 + 10 * kHourMs);
  EXPECT_TRUE(limit.knows("ann"));
  EXPECT_FALSE(limit.may_ask("ann", t0 + 11 * kHourMs));
  EXPECT_TRUE(limit.may_ask("bob", t0 + 11 * kHourMs)) << "per user";
  // A day after the first request, one may be asked again; the second still counts.
  EXPECT_FALSE(limit.may_ask("ann", t0 + UserAskLimit::kWindowMs - 1));
  EXPECT_TRUE(limit.may_ask("ann", t0 + UserAskLimit::kWindowMs));
  limit.asked("ann", t0 + UserAskLimit::kWindowMs);
  EXPECT_FALSE(limit.may_ask("ann", t0 + UserAskLimit::kWindowMs + kHourMs));
}

TEST(UserAskLimitTest, WhatTheStoreRemembersCountsInAnyOrder) {
  UserAskLimit limit(2);
  const std::int64_t now = 1'800'000'000'000;
  limit.remember("ann", {now - kHourMs, now - 30 * kHourMs, now - 2 * kHourMs});
  EXPECT_TRUE(limit.knows("ann"));
  EXPECT_FALSE(limit.may_ask("ann", now)) << "two within the day; the third is older";
  limit.remember("bob", {});
  EXPECT_TRUE(limit.knows("bob"));
  EXPECT_TRUE(limit.may_ask("bob", now));
}

TEST(UserAskLimitTest, UsersNotAskedWithinTheDayAreDroppedNowAndThen) {
  UserAskLimit limit(5);
  const std::int64_t t0 = 1'800'000'000'000;
  for (std::uint64_t i = 0; i + 1 < UserAskLimit::kAsksBetweenSweeps; ++i) {
    limit.asked("user-" + std::to_string(i), t0);
  }
  EXPECT_EQ(limit.users(), UserAskLimit::kAsksBetweenSweeps - 1);
  limit.asked("late", t0 + UserAskLimit::kWindowMs);  // the sweep
  EXPECT_EQ(limit.users(), 1u);
  EXPECT_FALSE(limit.knows("user-0"));
  EXPECT_TRUE(limit.knows("late"));
}

}  // namespace
}  // namespace selffeed::app
