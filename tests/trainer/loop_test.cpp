// The learning loop's pure parts: what is read from the store for retraining, and the
// promotion gate's decision rule.
#include <gtest/gtest.h>

#include "selffeed/store/store.h"
#include "selffeed/trainer/trainer.h"
#include "testing.h"

namespace selffeed::trainer {
namespace {

Example example(ExampleKind kind, const std::string& user, const std::string& target) {
  return Example{.kind = kind, .context = "__p2__ hi __p1__ hello", .target = target, .user_id = user,
                 .source = "server"};
}

TEST(HarvestedTest, DeletedUsersAreSkippedAndEveryTenthFeedbackIsHeldOut) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  for (int i = 1; i <= 20; ++i) {  // seqs 1..20: HB on odd seqs, FB on even ones
    writes.examples.push_back(example(i % 2 ? ExampleKind::kHB : ExampleKind::kFB, "alice", "t" + std::to_string(i)));
  }
  writes.examples.push_back(example(ExampleKind::kST, "alice", "1"));  // seq 21: not dialogue data
  ASSERT_OK((*store)->commit(writes));
  ASSERT_OK((*store)->delete_user("mallory"));
  // Arrives after the deletion (say, re-imported): the tombstone still keeps it out.
  ASSERT_OK((*store)->add_example(example(ExampleKind::kHB, "mallory", "secret")));

  auto harvested = load_harvested(**store);
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->dialogue.size(), 10u);
  EXPECT_EQ(harvested->feedback.size(), 8u);          // seqs 2, 4, 6, 8, 12, 14, 16, 18
  EXPECT_EQ(harvested->feedback_holdout.size(), 2u);  // seqs 10 and 20
  EXPECT_EQ(harvested->feedback_seqs, (std::vector<std::uint64_t>{2, 4, 6, 8, 12, 14, 16, 18}));
  EXPECT_EQ(harvested->skipped_deleted_users, 1u);
  EXPECT_EQ(harvested->watermark, 22u);
  for (const auto& e : harvested->dialogue) EXPECT_NE(e.target, "secret");

  auto after = load_harvested(**store, 15);
  ASSERT_OK(after);
  EXPECT_EQ(after->dialogue_seqs, (std::vector<std::uint64_t>{17, 19}));
}

TEST(GateTest, PromotesOnlyWhatIsBetterOverallAndNotWorseOnPersonaChat) {
  const GateScores live{.personachat_hits_at_1 = 0.30, .feedback_hits_at_1 = 0.40};
  // Better on both.
  EXPECT_TRUE(gate_decision(live, {0.31, 0.45}, 0.01).promote);
  // A small PersonaChat drop within epsilon, bought by a larger FB gain.
  EXPECT_TRUE(gate_decision(live, {0.295, 0.50}, 0.01).promote);
  // Too large a PersonaChat drop, whatever the FB gain.
  const GateDecision dropped = gate_decision(live, {0.25, 0.90}, 0.01);
  EXPECT_FALSE(dropped.promote);
  EXPECT_NE(dropped.reason.find("below the live model"), std::string::npos) << dropped.reason;
  // Equal is not better.
  EXPECT_FALSE(gate_decision(live, live, 0.01).promote);
  // FB counts only when both sides were measured on it.
  EXPECT_FALSE(gate_decision({0.30, std::nullopt}, {0.30, 0.99}, 0.01).promote);
  EXPECT_TRUE(gate_decision({0.30, std::nullopt}, {0.31, std::nullopt}, 0.0).promote);
}

}  // namespace
}  // namespace selffeed::trainer
