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
  writes.examples.push_back(example(ExampleKind::kST, "alice", "1"));      // seq 21: a thumbs-up
  writes.examples.push_back(example(ExampleKind::kST, "alice", "maybe"));  // seq 22: not a label
  ASSERT_OK((*store)->commit(writes));
  ASSERT_OK((*store)->delete_user("mallory"));
  // Arrive after the deletion (say, re-imported): the tombstone still keeps them out.
  ASSERT_OK((*store)->add_example(example(ExampleKind::kHB, "mallory", "secret")));
  ASSERT_OK((*store)->add_example(example(ExampleKind::kST, "mallory", "0")));

  auto harvested = load_harvested(**store);
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->dialogue.size(), 10u);
  EXPECT_EQ(harvested->feedback.size(), 8u);          // seqs 2, 4, 6, 8, 12, 14, 16, 18
  EXPECT_EQ(harvested->feedback_holdout.size(), 2u);  // seqs 10 and 20
  EXPECT_EQ(harvested->feedback_seqs, (std::vector<std::uint64_t>{2, 4, 6, 8, 12, 14, 16, 18}));
  EXPECT_EQ(harvested->satisfaction_seqs, std::vector<std::uint64_t>{21});
  EXPECT_EQ(harvested->thumbs.targets, std::vector<double>{1.0});
  EXPECT_EQ(harvested->thumbs.contexts, std::vector<std::string>{"__p2__ hi __p1__ hello"});
  EXPECT_EQ(harvested->skipped_deleted_users, 2u);
  EXPECT_EQ(harvested->watermark, 24u);
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

TEST(GateTest, TheSatisfactionAucCountsWhenBothModelsHaveAnEstimator) {
  const GateScores live{.personachat_hits_at_1 = 0.30, .satisfaction_auc = 0.65};
  // A better estimator alone is better overall.
  EXPECT_TRUE(gate_decision(live, {.personachat_hits_at_1 = 0.30, .satisfaction_auc = 0.70}, 0.01).promote);
  // An estimator that got worse by more than epsilon is refused, whatever PersonaChat says.
  const GateDecision worse = gate_decision(live, {.personachat_hits_at_1 = 0.40, .satisfaction_auc = 0.60}, 0.01);
  EXPECT_FALSE(worse.promote);
  EXPECT_NE(worse.reason.find("satisfaction AUC"), std::string::npos) << worse.reason;
  // Without an estimator on one side only PersonaChat is compared.
  EXPECT_FALSE(gate_decision({.personachat_hits_at_1 = 0.30}, {.personachat_hits_at_1 = 0.30, .satisfaction_auc = 0.9},
                             0.01).promote);
}

class SatisfactionFineTuneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dialogue::configure_threads({.intra_op = 1});
    auto t = dialogue::Tokenizer::train(contexts(), {.vocab_size = 60});
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    tokenizer_ = *t;
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }
  static std::vector<std::string> contexts() {
    return {"__p2__ i love pizza . __p1__ me too !", "__p2__ i love pizza . __p1__ what ? no sense",
            "__p2__ my dog is rex . __p1__ cute dog !", "__p2__ my dog is rex . __p1__ huh ? what ?"};
  }
  SatisfactionTrainOptions options() const {
    return {.tokenizer = tokenizer_,
            .config = {.d_model = 16, .n_heads = 2, .n_layers = 1, .ffn_size = 16, .max_tokens = 32},
            .train_contexts = contexts(),
            .train_targets = {1, 0, 1, 0},
            .valid_contexts = contexts(),
            .valid_labels = {1, 0, 1, 0},
            .epochs = 3};
  }
  static inline std::shared_ptr<const dialogue::Tokenizer> tokenizer_;
};

TEST_F(SatisfactionFineTuneTest, TheStartingEstimatorStaysUnlessTrainingBeatsIt) {
  testing::TempDir dir;
  auto start = train_satisfaction(options());
  ASSERT_OK(start);
  ASSERT_OK(start->model->save(dir.str()));

  SatisfactionTrainOptions o = options();
  o.init_estimator_from = dir.str();
  o.learning_rate = 0;  // no epoch can beat the starting weights
  auto tuned = train_satisfaction(o);
  ASSERT_OK(tuned);
  EXPECT_EQ(tuned->best_epoch, 0);
  EXPECT_EQ(*tuned->model->score(contexts()), *start->model->score(contexts()));
  EXPECT_DOUBLE_EQ(tuned->model->threshold(), start->model->threshold());

  o.init_encoder_from = dir.str();
  EXPECT_EQ(train_satisfaction(o).status().code(), StatusCode::kInvalidArgument) << "two starting points";
  o.init_encoder_from.clear();
  o.init_estimator_from = dir.str("missing");
  EXPECT_EQ(train_satisfaction(o).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace selffeed::trainer
