#include "selffeed/satisfaction/satisfaction.h"

#include <chrono>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "testing.h"

namespace selffeed::satisfaction {
namespace {

Vote vote_of(const std::string& name, const SatisfactionInput& in) {
  for (const LabelingFunction& f : labeling_functions()) {
    if (f.name == name) return f.apply(in);
  }
  ADD_FAILURE() << "no labeling function " << name;
  return Vote::kAbstain;
}

SatisfactionInput reply(const std::string& bot, const std::string& user, std::vector<std::string> history = {}) {
  return {.history = std::move(history), .bot_reply = bot, .user_reply = user};
}

TEST(SatisfactionTest, ContextIsTheBotAnswerThenTheUserReply) {
  EXPECT_EQ(satisfaction_context(reply("lol. i never eat them!", "what are you talking about?")),
            "__p2__ lol. i never eat them! __p1__ what are you talking about?");
}

TEST(SatisfactionTest, PaperRegexesMatchComplaintsOnly) {
  for (const char* complaint : {"I said I was tired", "that does not make any sense", "um, what?",
                                "you like what?", "what do you mean by that?", "what does that have to do with dogs?",
                                "That makes no sense"}) {
    EXPECT_TRUE(paper_regex_unsatisfied(complaint)) << complaint;
  }
  for (const char* fine : {"yes, i love dogs", "what is your favourite food?", "cool, me too"}) {
    EXPECT_FALSE(paper_regex_unsatisfied(fine)) << fine;
  }
}

TEST(SatisfactionTest, RegexesStayLinearOnAdversarialInput) {
  // Backtracking engines blow up on inputs like these; RE2 must not.
  std::string evil = "i " + std::string(200000, 'a') + " said";
  std::string evil2 = std::string(100000, 'u') + std::string(100000, 'm') + "!";
  std::string evil3;
  for (int i = 0; i < 50000; ++i) evil3 += "what you ";
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(paper_regex_unsatisfied(evil));
  EXPECT_TRUE(paper_regex_unsatisfied(evil2));
  EXPECT_FALSE(paper_regex_unsatisfied(evil3));
  for (const LabelingFunction& f : labeling_functions()) f.apply(reply(evil3, evil3, {evil3}));
  // Generous bound: a catastrophic backtracker would take minutes.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(SatisfactionTest, EachLabelingFunctionVotesOnItsCases) {
  ASSERT_GE(labeling_functions().size(), 10u);
  EXPECT_EQ(vote_of("paper_regex", reply("i like cars", "i said i hate cars")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("paper_regex", reply("i like cars", "me too")), Vote::kAbstain);
  EXPECT_EQ(vote_of("confusion", reply("my dog is a cat", "huh? you're a bot")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("confusion", reply("my dog is brown", "mine is black")), Vote::kAbstain);
  EXPECT_EQ(vote_of("positive_reaction", reply("i ski every winter", "haha cool!")), Vote::kSatisfied);
  EXPECT_EQ(vote_of("positive_reaction", reply("i ski", "i do not")), Vote::kAbstain);
  EXPECT_EQ(vote_of("user_repeats_self", reply("i like tea", "where do you live in france?",
                                               {"hi", "hello", "where do you live in france?"})),
            Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("user_repeats_self", reply("paris", "nice city", {"where do you live?"})), Vote::kAbstain);
  EXPECT_EQ(vote_of("bot_repeated", reply("i have a dog .", "ok", {"hi", "I have a dog.", "so?"})), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("bot_repeated", reply("i have a cat", "you already said that")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("bot_repeated", reply("i have a cat", "nice", {"hi", "i have a dog", "so?"})), Vote::kAbstain);
  EXPECT_EQ(vote_of("minimal_reply", reply("i like green", "??")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("minimal_reply", reply("i like green", "hmm")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("minimal_reply", reply("i like green", "green is nice")), Vote::kAbstain);
  EXPECT_EQ(vote_of("ignored_question", reply("i like pizza", "ok", {"where do you work?"})), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("ignored_question", reply("i work at a bank", "ok", {"where do you work?"})), Vote::kAbstain);
  EXPECT_EQ(vote_of("answers_bot_question", reply("do you have pets?", "yes i have two dogs")), Vote::kSatisfied);
  EXPECT_EQ(vote_of("answers_bot_question", reply("i have pets", "yes i have two dogs")), Vote::kAbstain);
  EXPECT_EQ(vote_of("follow_up_question", reply("i play guitar in a band", "what band is it?")), Vote::kSatisfied);
  EXPECT_EQ(vote_of("follow_up_question", reply("i play guitar", "do you like cheese?")), Vote::kAbstain);
  EXPECT_EQ(vote_of("engaged_reply", reply("i hike", "i love hiking too , last week i went up a mountain")),
            Vote::kSatisfied);
  EXPECT_EQ(vote_of("engaged_reply", reply("i hike", "nice")), Vote::kAbstain);
  EXPECT_EQ(vote_of("why_what_opener", reply("the moon is cheese", "what")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("why_what_opener", reply("what do you do?", "what i do is teach")), Vote::kAbstain);
  EXPECT_EQ(vote_of("evasive_answer", reply("I don't know what you are talking about", "my job")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("evasive_answer", reply("i am not sure , what do you mean ?", "cars")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("evasive_answer", reply("i know a lot about dogs", "cool")), Vote::kAbstain);
  EXPECT_EQ(vote_of("user_leaves", reply("i like tea", "ok bye")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("user_leaves", reply("i like tea", "/end")), Vote::kUnsatisfied);
  EXPECT_EQ(vote_of("user_leaves", reply("i like tea", "i bought a byte of memory")), Vote::kAbstain);
  EXPECT_EQ(vote_of("opening_turn", reply("hi! how are you?", "good, you?", {"hello"})), Vote::kSatisfied);
  EXPECT_EQ(vote_of("opening_turn", reply("i like tea", "ok", {"hi", "hello", "do you like tea?"})), Vote::kAbstain);
  EXPECT_EQ(vote_of("pleasantry", reply("Hello! How are you today?", "fine")), Vote::kSatisfied);
  EXPECT_EQ(vote_of("pleasantry", reply("great, how was your weekend?", "busy")), Vote::kSatisfied);
  // "hi" inside a word does not count, nor a greeting from the user.
  EXPECT_EQ(vote_of("pleasantry", reply("this is my history homework", "hi")), Vote::kAbstain);
  SatisfactionInput thumbs = reply("a", "b");
  EXPECT_EQ(vote_of("thumbs", thumbs), Vote::kAbstain);
  thumbs.thumbs = 0;
  EXPECT_EQ(vote_of("thumbs", thumbs), Vote::kUnsatisfied);
  thumbs.thumbs = 1;
  EXPECT_EQ(vote_of("thumbs", thumbs), Vote::kSatisfied);
  SatisfactionInput unsure = reply("a", "b");
  unsure.bot_confidence = 0.05;
  EXPECT_EQ(vote_of("model_uncertainty", unsure), Vote::kUnsatisfied);
  unsure.bot_confidence = 0.9;
  EXPECT_EQ(vote_of("model_uncertainty", unsure), Vote::kAbstain);
  EXPECT_EQ(apply_labeling_functions(reply("a", "b")).size(), labeling_functions().size());
}

// Votes of independent functions with the given accuracies and coverages on 20,000
// examples, 60% of them satisfied.
std::vector<std::vector<Vote>> synthetic_votes(const std::vector<double>& accuracy, const std::vector<double>& coverage) {
  std::mt19937 rng(2019);
  std::bernoulli_distribution label(0.6);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<Vote>> votes;
  for (int i = 0; i < 20000; ++i) {
    const bool sat = label(rng);
    std::vector<Vote> row;
    for (std::size_t j = 0; j < accuracy.size(); ++j) {
      if (u(rng) > coverage[j]) {
        row.push_back(Vote::kAbstain);
        continue;
      }
      const bool right = u(rng) < accuracy[j];
      row.push_back(sat == right ? Vote::kSatisfied : Vote::kUnsatisfied);
    }
    votes.push_back(std::move(row));
  }
  return votes;
}

TEST(PatternLabelingFunctionTest, VotesWhereItsPatternMatchesTheFieldItReads) {
  auto robot = pattern_labeling_function("called_a_robot", Vote::kUnsatisfied, PatternField::kUserReply,
                                         R"(\byou( are|'re) (a|an) (robot|bot)\b)");
  ASSERT_TRUE(robot.ok()) << robot.status().to_string();
  EXPECT_EQ(robot->name, "called_a_robot");
  EXPECT_EQ(robot->apply(reply("i like dogs .", "You are a ROBOT")), Vote::kUnsatisfied) << "case-insensitive";
  EXPECT_EQ(robot->apply(reply("you are a robot", "no , i like cats")), Vote::kAbstain) << "the reply only";
  EXPECT_EQ(robot->apply(reply("i like dogs .", "you are a robotics fan ?")), Vote::kAbstain);
  auto greets = pattern_labeling_function("bot_says_thanks", Vote::kSatisfied, PatternField::kBotAnswer, "thank");
  ASSERT_TRUE(greets.ok());
  EXPECT_EQ(greets->apply(reply("thanks for asking !", "sure")), Vote::kSatisfied);
  EXPECT_EQ(greets->apply(reply("hi", "thanks")), Vote::kAbstain);
  // RE2 on untrusted text: linear however the reply is built.
  const std::string evil(200000, 'a');
  auto nested = pattern_labeling_function("nested", Vote::kUnsatisfied, PatternField::kUserReply, "(a+)+$b");
  ASSERT_TRUE(nested.ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(nested->apply(reply("hi", evil)), Vote::kAbstain);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));

  EXPECT_FALSE(pattern_labeling_function("Bad-Name", Vote::kSatisfied, PatternField::kUserReply, "x").ok());
  EXPECT_FALSE(pattern_labeling_function("abstains", Vote::kAbstain, PatternField::kUserReply, "x").ok());
  const auto broken = pattern_labeling_function("broken", Vote::kSatisfied, PatternField::kUserReply, "(unclosed");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("bad pattern"), std::string::npos) << broken.status().message();
}

TEST(PatternLabelingFunctionTest, AFileAddsFunctionsAfterTheBuiltInsAndSaysWhereItIsWrong) {
  testing::TempDir dir;
  const std::string path = dir.str("functions.txt");
  std::ofstream(path) << "# users who call the bot out\n\n"
                         "called_a_robot  unsatisfied  reply  \\byou( are|'re) a (robot|bot)\\b\n"
                         "  bot_thanks satisfied answer thank you\n";
  auto loaded = labeling_functions_with(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  ASSERT_EQ(loaded->size(), labeling_functions().size() + 2);
  EXPECT_EQ(names_of(*loaded).back(), "bot_thanks");
  const std::vector<Vote> votes = apply_labeling_functions(*loaded, reply("thank you !", "you're a bot"));
  ASSERT_EQ(votes.size(), loaded->size());
  EXPECT_EQ(votes[votes.size() - 2], Vote::kUnsatisfied);
  EXPECT_EQ(votes.back(), Vote::kSatisfied) << "a pattern is the rest of the line, spaces and all";
  ASSERT_TRUE(labeling_functions_with("").ok());
  EXPECT_EQ(labeling_functions_with("")->size(), labeling_functions().size());

  auto error_of = [&](const std::string& text) {
    std::ofstream(path) << text;
    auto result = load_labeling_functions(path);
    return result.ok() ? std::string("accepted") : result.status().message();
  };
  EXPECT_NE(error_of("a unsatisfied reply x\nb maybe reply x\n").find("functions.txt:2: the vote is"),
            std::string::npos);
  EXPECT_NE(error_of("a unsatisfied subject x\n").find("the field is reply or answer"), std::string::npos);
  EXPECT_NE(error_of("a unsatisfied reply\n").find("expected NAME VOTE FIELD PATTERN"), std::string::npos);
  EXPECT_NE(error_of("a unsatisfied reply x\na satisfied reply y\n").find("a labeling function a exists"),
            std::string::npos);
  EXPECT_NE(error_of("paper_regex unsatisfied reply x\n").find("exists"), std::string::npos) << "a built-in's name";
  EXPECT_NE(error_of("a unsatisfied reply (x\n").find("bad pattern"), std::string::npos);
  EXPECT_EQ(load_labeling_functions(dir.str("missing.txt")).status().code(), StatusCode::kNotFound);
}

TEST(LabelModelTest, RecoversKnownAccuraciesWithoutLabels) {
  // Three functions of accuracy 0.9 / 0.7 / 0.6 that abstain at random.
  const std::vector<double> truth = {0.9, 0.7, 0.6};
  auto model = LabelModel::fit(synthetic_votes(truth, {0.9, 0.8, 1.0}));
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  for (std::size_t j = 0; j < truth.size(); ++j) EXPECT_NEAR(model->accuracies()[j], truth[j], 0.05) << "function " << j;
  EXPECT_NEAR(model->prior(), 0.6, 0.05);
  // Agreeing votes push the posterior towards their side.
  std::vector<Vote> all_sat(3, Vote::kSatisfied), all_unsat(3, Vote::kUnsatisfied);
  EXPECT_GT(model->probability(all_sat), 0.95);
  EXPECT_LT(model->probability(all_unsat), 0.05);
  // The weakest function alone moves the posterior only a little from the prior.
  std::vector<Vote> weak_sat = {Vote::kAbstain, Vote::kAbstain, Vote::kSatisfied};
  EXPECT_GT(model->probability(weak_sat), model->prior());
  EXPECT_LT(model->probability(weak_sat), model->probability(all_sat));
  std::vector<std::vector<Vote>> ragged = {{Vote::kSatisfied}, {Vote::kSatisfied, Vote::kAbstain}};
  EXPECT_EQ(LabelModel::fit(ragged).status().code(), StatusCode::kInvalidArgument);
}

TEST(LabelModelTest, OutvotesTheMajorityWhenTheAccurateFunctionDisagrees) {
  EXPECT_DOUBLE_EQ(majority_vote(std::vector<Vote>(3, Vote::kAbstain)), 0.5);
  const std::vector<Vote> one_against_two = {Vote::kSatisfied, Vote::kUnsatisfied, Vote::kUnsatisfied};
  EXPECT_DOUBLE_EQ(majority_vote(one_against_two), 0.4);  // (1 + 1) / (3 + 2)
  // Accuracy 0.95 against two of 0.6: the label model learns to believe the first.
  auto model = LabelModel::fit(synthetic_votes({0.95, 0.6, 0.6}, {1.0, 1.0, 1.0}));
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_GT(model->probability(one_against_two), 0.5);
}

TEST(LabelModelTest, VotesConflictWhenOneSaysSatisfiedAndAnotherUnsatisfied) {
  EXPECT_FALSE(votes_conflict(std::vector<Vote>(3, Vote::kAbstain)));
  EXPECT_FALSE(votes_conflict(std::vector<Vote>{Vote::kSatisfied, Vote::kAbstain, Vote::kSatisfied}));
  EXPECT_FALSE(votes_conflict(std::vector<Vote>{Vote::kAbstain, Vote::kUnsatisfied}));
  EXPECT_TRUE(votes_conflict(std::vector<Vote>{Vote::kUnsatisfied, Vote::kAbstain, Vote::kSatisfied}));
  EXPECT_FALSE(votes_conflict(std::vector<Vote>{}));
}

TEST(MetricsTest, UnsatisfiedClassPrecisionRecallF1AndAuc) {
  // P(satisfied) scores; label 0 = unsatisfied.
  std::vector<double> scores = {0.1, 0.2, 0.6, 0.4, 0.9, 0.8};
  std::vector<int> labels = {0, 0, 0, 1, 1, 1};
  BinaryMetrics m = evaluate_binary(scores, labels, 0.5);
  // Predicted unsatisfied: 0.1, 0.2, 0.4 -> tp 2, fp 1, fn 1.
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.ask_rate, 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.auc, 8.0 / 9.0);  // one of nine (unsat, sat) pairs out of order
  // The all-unsatisfied predictor: recall 1, precision = share of unsatisfied.
  BinaryMetrics all = evaluate_binary(scores, labels, 2.0);
  EXPECT_DOUBLE_EQ(all.recall, 1.0);
  EXPECT_DOUBLE_EQ(all.precision, 0.5);
  EXPECT_DOUBLE_EQ(all.ask_rate, 1.0);
}

TEST(MetricsTest, BestThresholdMaximisesF1) {
  std::vector<double> scores = {0.1, 0.2, 0.3, 0.7, 0.8, 0.9};
  std::vector<int> labels = {0, 0, 0, 1, 1, 1};
  double t = best_threshold(scores, labels);
  EXPECT_GT(t, 0.3);
  EXPECT_LT(t, 0.7);
  EXPECT_DOUBLE_EQ(evaluate_binary(scores, labels, t).f1, 1.0);
}

TEST(MetricsTest, BestThresholdKeepsWithinTheAskBudget) {
  // Weak signal: F1 is best when all ten are flagged (4 unsatisfied among them).
  std::vector<double> scores = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95};
  std::vector<int> labels = {0, 1, 1, 0, 1, 1, 0, 1, 1, 0};
  EXPECT_DOUBLE_EQ(evaluate_binary(scores, labels, best_threshold(scores, labels)).ask_rate, 1.0);
  // At most 3 of 10: flagging 0.1 alone (F1 0.4) beats flagging 0.1-0.3 (F1 2/7).
  const double t = best_threshold(scores, labels, 0.3);
  const BinaryMetrics within = evaluate_binary(scores, labels, t);
  EXPECT_DOUBLE_EQ(within.ask_rate, 0.1);
  EXPECT_DOUBLE_EQ(within.f1, 0.4);
  // A budget below one example: nothing is flagged.
  EXPECT_DOUBLE_EQ(evaluate_binary(scores, labels, best_threshold(scores, labels, 0.05)).ask_rate, 0.0);
  // Tied scores move together: flagging any of them flags all three, over a budget of 2.
  std::vector<double> tied = {0.2, 0.2, 0.2, 0.9};
  std::vector<int> tied_labels = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(evaluate_binary(tied, tied_labels, best_threshold(tied, tied_labels, 0.5)).ask_rate, 0.0);
}

TEST(MetricsTest, CalibrationComparesEachBinsMeanScoreWithItsShareSatisfied) {
  // 0.1 and 0.3 in the first two of five bins, 0.9 and 1.0 in the last (1.0 belongs to it).
  const std::vector<double> scores = {0.1, 0.1, 0.3, 0.9, 1.0, 0.9, 1.0};
  const std::vector<int> labels = {0, 0, 1, 1, 1, 1, 0};
  const Calibration c = calibration(scores, labels);
  ASSERT_EQ(c.bins.size(), 3u) << "the empty middle bins are left out";
  EXPECT_DOUBLE_EQ(c.bins[0].low, 0.0);
  EXPECT_DOUBLE_EQ(c.bins[0].high, 0.2);
  EXPECT_EQ(c.bins[0].examples, 2u);
  EXPECT_DOUBLE_EQ(c.bins[0].mean_score, 0.1);
  EXPECT_DOUBLE_EQ(c.bins[0].satisfied_share, 0.0);
  EXPECT_EQ(c.bins[1].examples, 1u);
  EXPECT_DOUBLE_EQ(c.bins[1].satisfied_share, 1.0);
  EXPECT_DOUBLE_EQ(c.bins[2].low, 0.8);
  EXPECT_DOUBLE_EQ(c.bins[2].high, 1.0);
  EXPECT_EQ(c.bins[2].examples, 4u);
  EXPECT_NEAR(c.bins[2].mean_score, 0.95, 1e-12);
  EXPECT_DOUBLE_EQ(c.bins[2].satisfied_share, 0.75);
  EXPECT_NEAR(c.expected_error, (2 * 0.1 + 1 * 0.7 + 4 * 0.2) / 7, 1e-12);

  // Scores that are the satisfied share of their bin: calibrated, whatever their order.
  const Calibration exact = calibration(std::vector<double>{0.5, 0.5, 0.5, 0.5}, std::vector<int>{1, 0, 0, 1});
  EXPECT_NEAR(exact.expected_error, 0.0, 1e-12);
  EXPECT_TRUE(calibration({}, {}).bins.empty());
}

TEST(MetricsTest, AverageRanksShareTiedRanks) {
  EXPECT_EQ(average_ranks(std::vector<double>{0.3, 0.1, 0.3, 0.9}), (std::vector<double>{2.5, 1.0, 2.5, 4.0}));
  EXPECT_TRUE(average_ranks(std::vector<double>{}).empty());
}

TEST(MetricsTest, GroupBootstrapResamplesWholeDialogues) {
  // Group g has g + 1 replies: in every resample each drawn group comes with all of them.
  std::vector<std::size_t> group_of;
  for (std::size_t g = 0; g < 6; ++g) group_of.insert(group_of.end(), g + 1, g);
  std::size_t total_draws = 0;
  BootstrapInterval whole = group_bootstrap(group_of, 200, /*seed=*/3, [&](std::span<const std::size_t> sample) {
    std::vector<int> seen(group_of.size(), 0);
    for (std::size_t i : sample) ++seen[i];
    total_draws += sample.size();
    for (std::size_t i = 1; i < group_of.size(); ++i) {
      if (group_of[i] == group_of[i - 1] && seen[i] != seen[i - 1]) return -1.0;
    }
    return 1.0;
  });
  EXPECT_DOUBLE_EQ(whole.low, 1.0);
  EXPECT_DOUBLE_EQ(whole.high, 1.0);
  EXPECT_DOUBLE_EQ(whole.share_above_zero, 1.0);
  // Six groups drawn per resample, 3.5 replies each on average.
  EXPECT_NEAR(static_cast<double>(total_draws) / 200.0, 21.0, 3.0);
}

TEST(MetricsTest, GroupBootstrapIntervalStraddlesZeroOnlyWhenTheGroupsDisagree) {
  // A per-dialogue gain of +1 or -1: the mean gain is clear when every dialogue agrees.
  std::vector<std::size_t> group_of;
  for (std::size_t g = 0; g < 40; ++g) group_of.insert(group_of.end(), 3, g);
  auto mean_gain = [&](const std::vector<double>& gain_of_group) {
    return [&, gain_of_group](std::span<const std::size_t> sample) {
      double sum = 0;
      for (std::size_t i : sample) sum += gain_of_group[group_of[i]];
      return sum / static_cast<double>(sample.size());
    };
  };
  std::vector<double> agree(40, 1.0), split(40, 1.0);
  for (std::size_t g = 0; g < 40; g += 2) split[g] = -1.0;
  BootstrapInterval clear = group_bootstrap(group_of, 500, 7, mean_gain(agree));
  EXPECT_DOUBLE_EQ(clear.low, 1.0);
  EXPECT_DOUBLE_EQ(clear.share_above_zero, 1.0);
  BootstrapInterval unclear = group_bootstrap(group_of, 500, 7, mean_gain(split));
  EXPECT_LT(unclear.low, 0.0);
  EXPECT_GT(unclear.high, 0.0);
  EXPECT_GT(unclear.share_above_zero, 0.2);
  EXPECT_LT(unclear.share_above_zero, 0.8);
  // The same seed gives the same interval; no groups give none.
  BootstrapInterval again = group_bootstrap(group_of, 500, 7, mean_gain(split));
  EXPECT_EQ(again.low, unclear.low);
  EXPECT_EQ(again.high, unclear.high);
  EXPECT_EQ(group_bootstrap({}, 500, 7, mean_gain(split)).share_above_zero, 0.0);
}

TEST(NaiveBayesTest, LearnsWordsOfEachSide) {
  std::vector<SatisfactionInput> inputs;
  std::vector<int> labels;
  for (int i = 0; i < 20; ++i) {
    inputs.push_back(reply("i like cats", "haha cool"));
    labels.push_back(1);
    inputs.push_back(reply("i like cats", "what ? nonsense"));
    labels.push_back(0);
  }
  NaiveBayes nb = NaiveBayes::fit(inputs, labels);
  EXPECT_GT(nb.probability(reply("i like dogs", "cool")), 0.8);
  EXPECT_LT(nb.probability(reply("i like dogs", "nonsense")), 0.2);
}

}  // namespace
}  // namespace selffeed::satisfaction
