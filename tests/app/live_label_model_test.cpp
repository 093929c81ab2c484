#include "live_label_model.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

namespace selffeed::app {
namespace {

using satisfaction::Vote;

// Replies with a known truth (60% satisfied) and three functions of known accuracy and
// coverage; the other built-in functions abstain, as thumbs and the model's confidence do
// on live traffic.
std::vector<Vote> synthetic_reply(std::mt19937_64& rng) {
  std::bernoulli_distribution satisfied(0.6);
  const bool truth = satisfied(rng);
  std::vector<Vote> votes(satisfaction::labeling_functions().size(), Vote::kAbstain);
  const double accuracy[3] = {0.9, 0.7, 0.6};
  const double coverage[3] = {1.0, 0.5, 0.8};
  for (std::size_t f = 0; f < 3; ++f) {
    if (!std::bernoulli_distribution(coverage[f])(rng)) continue;
    const bool right = std::bernoulli_distribution(accuracy[f])(rng);
    votes[f] = (truth == right) ? Vote::kSatisfied : Vote::kUnsatisfied;
  }
  return votes;
}

TEST(LiveLabelModelTest, RelearnsTheFunctionsAccuraciesOnTheLatestWindowWithoutLabels) {
  metrics::Registry registry;
  // Never due on its own thread: the gauges below are this test's fit.
  LiveLabelModel live({.window = 4000, .refit_every = 1'000'000, .min_replies = 2000}, registry);
  EXPECT_FALSE(live.refit().has_value()) << "nothing to fit yet";
  std::mt19937_64 rng(7);
  for (int i = 0; i < 6000; ++i) live.add(synthetic_reply(rng));
  const std::optional<LiveLabelModel::Fit> fit = live.refit();
  ASSERT_TRUE(fit.has_value());
  EXPECT_EQ(fit->replies, 4000u) << "only the latest window";
  EXPECT_EQ(fit->seen, 6000u);
  EXPECT_FALSE(fit->degenerate);
  EXPECT_NEAR(fit->prior, 0.6, 0.05);
  ASSERT_EQ(fit->functions.size(), satisfaction::labeling_functions().size());
  const double accuracy[3] = {0.9, 0.7, 0.6};
  const double coverage[3] = {1.0, 0.5, 0.8};
  for (std::size_t f = 0; f < 3; ++f) {
    EXPECT_EQ(fit->functions[f].name, satisfaction::labeling_functions()[f].name);
    EXPECT_NEAR(fit->functions[f].accuracy, accuracy[f], 0.05) << fit->functions[f].name;
    EXPECT_NEAR(fit->functions[f].coverage, coverage[f], 0.03) << fit->functions[f].name;
  }
  EXPECT_EQ(fit->functions[3].coverage, 0.0);
  const std::string text = registry.render();
  EXPECT_NE(text.find("selffeed_labeling_function_accuracy{function=\"" + fit->functions[0].name + "\"} 0.9"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("selffeed_label_model_prior"), std::string::npos);
}

// The worker only adds; its own thread refits every `refit_every` replies.
TEST(LiveLabelModelTest, RefitsOnItsOwnThreadAsRepliesComeIn) {
  metrics::Registry registry;
  LiveLabelModel live({.window = 4000, .refit_every = 1000, .min_replies = 2000}, registry);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1999; ++i) live.add(synthetic_reply(rng));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(live.latest().has_value()) << "too few replies to fit";
  for (int i = 0; i < 2001; ++i) live.add(synthetic_reply(rng));
  std::optional<LiveLabelModel::Fit> fit;
  for (int tries = 0; tries < 200 && (!fit || fit->seen < 3000); ++tries) {  // up to 10 s
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    fit = live.latest();
  }
  ASSERT_TRUE(fit.has_value());
  EXPECT_GE(fit->seen, 3000u) << "refitted after another 1000";
  EXPECT_FALSE(fit->degenerate);
}

// On few replies EM can end with every reply in one class; such a fit is flagged and its
// accuracies are not published as gauges.
TEST(LiveLabelModelTest, AFitThatPutsEveryReplyInOneClassIsFlagged) {
  metrics::Registry registry;
  LiveLabelModel live({.window = 300, .refit_every = 100000, .min_replies = 100}, registry);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 300; ++i) live.add(synthetic_reply(rng));
  const std::optional<LiveLabelModel::Fit> fit = live.refit();
  ASSERT_TRUE(fit.has_value());
  EXPECT_TRUE(fit->degenerate) << "prior " << fit->prior;
  EXPECT_EQ(registry.render().find("selffeed_labeling_function_accuracy"), std::string::npos);
  EXPECT_NE(registry.render().find("selffeed_labeling_function_coverage"), std::string::npos);
}

TEST(LiveLabelModelTest, AWindowOfZeroIsOff) {
  metrics::Registry registry;
  LiveLabelModel live({.window = 0}, registry);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) live.add(synthetic_reply(rng));
  EXPECT_FALSE(live.refit().has_value());
  EXPECT_FALSE(live.latest().has_value());
}

}  // namespace
}  // namespace selffeed::app
