#include "teaching_budget.h"

#include <gtest/gtest.h>

namespace selffeed::app {
namespace {

using namespace std::chrono_literals;

TEST(TeachingBudgetTest, AnAddressMayGiveItsHourlyBudgetThenWaitsForItToRefill) {
  TeachingBudget budget(4);
  const TeachingBudget::Clock::time_point t0{};
  EXPECT_TRUE(budget.has_room("a", t0)) << "an address that never taught has a full budget";
  budget.spend("a", 3, t0);
  EXPECT_TRUE(budget.has_room("a", t0));
  budget.spend("a", 1, t0);
  EXPECT_FALSE(budget.has_room("a", t0));
  EXPECT_TRUE(budget.has_room("b", t0)) << "each address has its own";
  EXPECT_FALSE(budget.has_room("a", t0 + 14min)) << "a quarter of an hour refills one example of four";
  EXPECT_TRUE(budget.has_room("a", t0 + 15min));
  budget.spend("a", 1, t0 + 15min);
  EXPECT_FALSE(budget.has_room("a", t0 + 16min));
  budget.spend("a", 100, t0 + 16min);  // an answer it was asked for: spent beyond the budget, owed nothing
  EXPECT_TRUE(budget.has_room("a", t0 + 31min));
}

TEST(TeachingBudgetTest, ABucketNeverHoldsMoreThanAnHour) {
  TeachingBudget budget(4);
  const TeachingBudget::Clock::time_point t0{};
  budget.spend("a", 1, t0);
  budget.spend("a", 4, t0 + 24h);  // a day idle gives back 4, not 96
  EXPECT_FALSE(budget.has_room("a", t0 + 24h));
}

TEST(TeachingBudgetTest, FullBucketsAreForgotten) {
  TeachingBudget budget(4);
  const TeachingBudget::Clock::time_point t0{};
  budget.spend("a", 4, t0);
  budget.spend("b", 1, t0);
  // Spends 3 to 1,023; the next one, the 1,024th, sweeps.
  for (std::uint64_t i = 3; i < TeachingBudget::kSpendsBetweenSweeps; ++i) budget.spend("b", 1, t0 + 30min);
  EXPECT_EQ(budget.addresses(), 2u);
  budget.spend("c", 1, t0 + 2h);  // the sweep: "a" and "b" are full again by now
  EXPECT_EQ(budget.addresses(), 1u);
  EXPECT_TRUE(budget.has_room("a", t0 + 2h));
}

}  // namespace
}  // namespace selffeed::app
