#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "selffeed/satisfaction/satisfaction.h"
#include "testing.h"

namespace selffeed::satisfaction {
namespace {

using selffeed::testing::TempDir;

class EstimatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dialogue::configure_threads({.intra_op = 1});
    auto t = dialogue::Tokenizer::train(texts(), {.vocab_size = 100});
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    tokenizer_ = *t;
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }

  // Happy and unhappy replies to the same bot answers.
  static std::vector<std::string> texts() {
    std::vector<std::string> out;
    for (const char* bot : {"i love pizza .", "my dog is called rex .", "i work at a bank ."}) {
      out.push_back(satisfaction_context({.bot_reply = bot, .user_reply = "haha cool , me too !"}));
      out.push_back(satisfaction_context({.bot_reply = bot, .user_reply = "what ? that makes no sense"}));
    }
    return out;
  }
  static std::vector<double> labels() { return {1, 0, 1, 0, 1, 0}; }

  static inline std::shared_ptr<const dialogue::Tokenizer> tokenizer_;
  static constexpr EstimatorConfig kTiny{.d_model = 16, .n_heads = 2, .n_layers = 1, .ffn_size = 16, .max_tokens = 32};
};

TEST_F(EstimatorTest, LearnsToSeparateHappyFromUnhappyReplies) {
  auto model = SatisfactionModel::create(kTiny, tokenizer_, 3);
  ASSERT_OK(model);
  std::vector<std::string> contexts = texts();
  std::vector<double> targets = labels();
  auto first = (*model)->train_step(contexts, targets, 0.01);
  ASSERT_OK(first);
  float last = *first;
  for (int i = 0; i < 80; ++i) last = *(*model)->train_step(contexts, targets, 0.01);
  EXPECT_LT(last, *first * 0.3f);
  auto scores = (*model)->score(contexts);
  ASSERT_OK(scores);
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    if (targets[i] == 1) EXPECT_GT((*scores)[i], 0.8) << contexts[i];
    else EXPECT_LT((*scores)[i], 0.2) << contexts[i];
  }
  // Soft targets are accepted (noise-aware training on label-model output).
  EXPECT_OK((*model)->train_step(contexts, std::vector<double>{0.9, 0.2, 0.7, 0.1, 0.6, 0.4}, 0.01));
  EXPECT_EQ((*model)->train_step(contexts, std::vector<double>{1.0}, 0.01).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EstimatorTest, SaveLoadKeepsScoresAndThreshold) {
  TempDir dir;
  auto model = SatisfactionModel::create(kTiny, tokenizer_, 3);
  ASSERT_OK(model);
  ASSERT_OK((*model)->train_step(texts(), labels(), 0.01));
  (*model)->set_threshold(0.37);
  ASSERT_OK((*model)->save(dir.str()));
  auto loaded = SatisfactionModel::load(dir.str(), tokenizer_);
  ASSERT_OK(loaded);
  EXPECT_DOUBLE_EQ((*loaded)->threshold(), 0.37);
  EXPECT_EQ(*(*loaded)->score(texts()), *(*model)->score(texts()));

  // Batch scoring equals one-by-one scoring.
  std::vector<std::string> all = texts();
  auto together = (*model)->score(all);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_NEAR((*together)[i], (*(*model)->score(std::span(&all[i], 1)))[0], 1e-6);
  }

  std::filesystem::resize_file(dir.path() / "satisfaction.pt", 50);
  EXPECT_EQ(SatisfactionModel::load(dir.str(), tokenizer_).status().code(), StatusCode::kDataLoss);
  TempDir empty;
  EXPECT_EQ(SatisfactionModel::load(empty.str(), tokenizer_).status().code(), StatusCode::kNotFound);
}

// An estimator saved before per-speaker pooling (no "pooling" in its config, a head of
// another width) is refused with a message that says what to do, not misread.
TEST_F(EstimatorTest, RefusesAnEstimatorOfTheOlderOnePooledVectorFormat) {
  TempDir dir;
  auto model = SatisfactionModel::create(kTiny, tokenizer_, 3);
  ASSERT_OK(model);
  ASSERT_OK((*model)->save(dir.str()));
  std::ofstream(dir.path() / "satisfaction.json")
      << R"({"d_model": 16, "n_heads": 2, "n_layers": 1, "ffn_size": 16, "max_tokens": 32,)"
      << R"( "scale_embeddings": true, "threshold": 0.5})";
  auto old = SatisfactionModel::load(dir.str(), tokenizer_);
  EXPECT_EQ(old.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(old.status().message().find("retrain"), std::string::npos) << old.status().to_string();
}

// The same words mean different things from the bot and from the user: "what ?" after a
// sensible answer is a complaint; a bot that answers "what ?" is no complaint by the user.
TEST_F(EstimatorTest, ReadsTheBotAnswerAndTheUserReplyApart) {
  std::vector<std::string> contexts;
  std::vector<double> targets;
  for (const char* bot : {"i love pizza .", "my dog is called rex .", "i work at a bank ."}) {
    contexts.push_back(satisfaction_context({.bot_reply = bot, .user_reply = "what ?"}));
    targets.push_back(0);
    contexts.push_back(satisfaction_context({.bot_reply = "what ?", .user_reply = bot}));
    targets.push_back(1);
  }
  auto model = SatisfactionModel::create(kTiny, tokenizer_, 5);
  ASSERT_OK(model);
  for (int i = 0; i < 80; ++i) ASSERT_OK((*model)->train_step(contexts, targets, 0.01));
  auto scores = (*model)->score(contexts);
  ASSERT_OK(scores);
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    if (targets[i] == 1) EXPECT_GT((*scores)[i], 0.8) << contexts[i];
    else EXPECT_LT((*scores)[i], 0.2) << contexts[i];
  }
}

TEST_F(EstimatorTest, StartsFromADialogueBundlesEmbeddingsAndContextEncoder) {
  TempDir dir;
  const dialogue::ModelConfig shape{.d_model = 16, .n_heads = 2, .n_layers = 1, .ffn_size = 16};
  auto dialogue_model = dialogue::DialogueModel::create(shape, tokenizer_, 11);
  ASSERT_OK(dialogue_model);
  ASSERT_OK((*dialogue_model)->save(dir.str("bundle"), {.version = "d1"}, {}));

  auto fresh = SatisfactionModel::create(kTiny, tokenizer_, 3);
  auto transferred = SatisfactionModel::create(kTiny, tokenizer_, 3);
  ASSERT_OK(fresh);
  ASSERT_OK(transferred);
  ASSERT_OK((*transferred)->init_encoder_from(dir.str("bundle")));
  EXPECT_NE(*(*transferred)->score(texts()), *(*fresh)->score(texts())) << "the weights did not change";

  EstimatorConfig other = kTiny;
  other.d_model = 32;
  auto mismatched = SatisfactionModel::create(other, tokenizer_, 3);
  ASSERT_OK(mismatched);
  EXPECT_EQ((*mismatched)->init_encoder_from(dir.str("bundle")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*fresh)->init_encoder_from(dir.str("nothing")).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace selffeed::satisfaction
