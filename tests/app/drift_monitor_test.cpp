#include "drift_monitor.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "testing.h"

namespace selffeed::app {
namespace {

using satisfaction::Vote;

// Users of a known kind: function 0 votes satisfied on `coverage[0]` of the replies,
// functions 1 and 2 unsatisfied on theirs (so 0 and 1 conflict where both vote), the rest
// abstain; the estimator's scores are uniform on [mean - 0.3, mean + 0.3].
struct Users {
  double coverage[3] = {0.5, 0.3, 0.1};
  double mean_score = 0.6;
};

void feed(DriftMonitor& drift, const Users& users, std::size_t replies, std::mt19937_64& rng,
          bool live_scores = true) {
  std::uniform_real_distribution<double> score(users.mean_score - 0.3, users.mean_score + 0.3);
  for (std::size_t i = 0; i < replies; ++i) {
    std::vector<Vote> votes(satisfaction::labeling_functions().size(), Vote::kAbstain);
    for (std::size_t f = 0; f < 3; ++f) {
      if (std::bernoulli_distribution(users.coverage[f])(rng)) votes[f] = f == 0 ? Vote::kSatisfied : Vote::kUnsatisfied;
    }
    drift.judged(votes, live_scores ? std::optional<double>(score(rng)) : std::nullopt);
  }
}

std::string function_name(std::size_t f) { return satisfaction::labeling_functions()[f].name; }

std::string alert_gauge(const std::string& alert, const std::string& subject) {
  return "selffeed_alert{alert=\"" + alert + "\",subject=\"" + subject + "\"}";
}

TEST(DriftMonitorTest, TheSameUsersRaiseNothing) {
  metrics::Registry registry;
  DriftMonitor drift({.block = 2000}, registry);
  std::mt19937_64 rng(1);
  EXPECT_FALSE(drift.report().reference.has_value());
  feed(drift, Users{}, 20 * 2000 + 1999, rng);
  const DriftMonitor::Report report = drift.report();
  EXPECT_EQ(report.blocks, 20u) << "the last 1,999 replies are no block yet";
  ASSERT_TRUE(report.reference.has_value());
  EXPECT_EQ(report.reference->replies, 2000u);
  EXPECT_NEAR(report.reference->coverage[0], 0.5, 0.04);
  EXPECT_NEAR(report.reference->conflict, 0.5 * (1 - 0.7 * 0.9), 0.03) << "function 0 with 1 or 2";
  EXPECT_NEAR(report.reference->mean_score, 0.6, 0.02);
  ASSERT_TRUE(report.latest.has_value());
  EXPECT_TRUE(report.alerts.empty()) << report.alerts.front().message;
  EXPECT_EQ(registry.render().find("selffeed_alerts_total"), std::string::npos);
}

TEST(DriftMonitorTest, AFunctionVotingOftenerAlertsByNameAndClearsWhenTheUsersAreBack) {
  metrics::Registry registry;
  DriftMonitor drift({.block = 2000}, registry);
  std::mt19937_64 rng(2);
  feed(drift, Users{}, 2000, rng);
  Users complaining;
  complaining.coverage[2] = 0.25;  // function 2 from 10% to 25% of the replies
  feed(drift, complaining, 2000, rng);
  DriftMonitor::Report report = drift.report();
  ASSERT_EQ(report.alerts.size(), 1u);
  EXPECT_EQ(report.alerts[0].name, "labeling_function_coverage");
  EXPECT_EQ(report.alerts[0].subject, function_name(2));
  EXPECT_NEAR(report.alerts[0].reference, 0.1, 0.02);
  EXPECT_NEAR(report.alerts[0].now, 0.25, 0.03);
  EXPECT_NE(report.alerts[0].message.find(function_name(2)), std::string::npos);
  std::string text = registry.render();
  EXPECT_NE(text.find(alert_gauge("labeling_function_coverage", function_name(2)) + " 1"), std::string::npos) << text;
  EXPECT_NE(text.find("selffeed_alerts_total{alert=\"labeling_function_coverage\"} 1"), std::string::npos);

  feed(drift, complaining, 2000, rng);
  EXPECT_EQ(drift.report().alerts.size(), 1u) << "still firing, fired once";
  feed(drift, Users{}, 2000, rng);
  EXPECT_TRUE(drift.report().alerts.empty());
  text = registry.render();
  EXPECT_NE(text.find(alert_gauge("labeling_function_coverage", function_name(2)) + " 0"), std::string::npos) << text;
  EXPECT_NE(text.find("selffeed_alerts_total{alert=\"labeling_function_coverage\"} 1"), std::string::npos);
}

TEST(DriftMonitorTest, AChangeBelowTheSmallestShiftNeverAlertsHoweverSureItIs) {
  metrics::Registry registry;
  DriftMonitor drift({.block = 50000, .min_shift = 0.05}, registry);
  std::mt19937_64 rng(3);
  feed(drift, Users{}, 50000, rng);
  Users slightly;
  slightly.coverage[0] = 0.53;  // about 13 standard errors, 0.03 of a share
  slightly.mean_score = 0.63;
  feed(drift, slightly, 50000, rng);
  EXPECT_TRUE(drift.report().alerts.empty());
  // The same change alerts where the operator asks for smaller ones.
  DriftMonitor finer({.block = 50000, .min_shift = 0.02}, registry);
  feed(finer, Users{}, 50000, rng);
  feed(finer, slightly, 50000, rng);
  const DriftMonitor::Report report = finer.report();
  std::set<std::string> fired;
  for (const auto& alert : report.alerts) fired.insert(alert.name + "/" + alert.subject);
  EXPECT_EQ(fired, (std::set<std::string>{"labeling_function_coverage/" + function_name(0), "satisfaction_score/"}));
}

TEST(DriftMonitorTest, MoreConflictsAlert) {
  metrics::Registry registry;
  DriftMonitor drift({.block = 2000}, registry);
  std::mt19937_64 rng(4);
  feed(drift, Users{.coverage = {0.5, 0.1, 0.1}}, 2000, rng);
  // Function 1 votes unsatisfied three times as often: its coverage moves, and so do its
  // conflicts with function 0.
  feed(drift, Users{.coverage = {0.5, 0.3, 0.1}}, 2000, rng);
  std::set<std::string> fired;
  for (const auto& alert : drift.report().alerts) fired.insert(alert.name + "/" + alert.subject);
  EXPECT_TRUE(fired.contains("labeling_function_conflict/")) << fired.size();
  EXPECT_TRUE(fired.contains("labeling_function_coverage/" + function_name(1)));
}

// The references outlive a restart: the monitor hands them over as text each time one is
// taken or dropped, and a new monitor takes them back, so a drift under way at a restart
// still alerts at the first block after it.
TEST(DriftMonitorTest, ARestartKeepsTheReferences) {
  metrics::Registry registry;
  std::string kept;
  int handed_over = 0;
  DriftMonitor::Options options{.block = 2000, .keep_references = [&](const std::string& references) {
                                  kept = references;
                                  ++handed_over;
                                }};
  std::mt19937_64 rng(6);
  {
    DriftMonitor before(options, registry);
    ASSERT_OK(before.restore_references("", "v1"));
    feed(before, Users{}, 2000, rng);
    EXPECT_EQ(handed_over, 2) << "the block reference, then the score's";
    feed(before, Users{}, 2000, rng);
    EXPECT_EQ(handed_over, 2) << "nothing new to keep";
  }
  const Users unhappier{.coverage = {0.5, 0.3, 0.2}, .mean_score = 0.45};  // conflicts move 0.035
  {
    DriftMonitor after(options, registry);
    ASSERT_OK(after.restore_references(kept, "v1"));
    ASSERT_TRUE(after.report().reference.has_value());
    ASSERT_TRUE(after.report().score_reference.has_value());
    feed(after, unhappier, 2000, rng);
    std::set<std::string> fired;
    for (const auto& alert : after.report().alerts) fired.insert(alert.name + "/" + alert.subject);
    EXPECT_EQ(fired, (std::set<std::string>{"labeling_function_coverage/" + function_name(2), "satisfaction_score/"}));
  }
  {
    // Another live version keeps the block reference only: its estimator scores otherwise.
    DriftMonitor after(options, registry);
    ASSERT_OK(after.restore_references(kept, "v2"));
    EXPECT_TRUE(after.report().reference.has_value());
    EXPECT_FALSE(after.report().score_reference.has_value());
  }
  {
    // Other labeling functions keep the score reference only.
    DriftMonitor::Options fewer = options;
    fewer.functions.pop_back();
    DriftMonitor after(fewer, registry);
    ASSERT_OK(after.restore_references(kept, "v1"));
    EXPECT_FALSE(after.report().reference.has_value());
    EXPECT_TRUE(after.report().score_reference.has_value());
  }
  {
    DriftMonitor after(options, registry);
    EXPECT_FALSE(after.restore_references("{\"functions\": 1}", "v1").ok());
    EXPECT_FALSE(after.restore_references("not json", "v1").ok());
    EXPECT_FALSE(after.report().reference.has_value());
    after.rebase();
    EXPECT_NE(kept.find("\"reference\":null"), std::string::npos) << kept;
  }
}

TEST(DriftMonitorTest, TheScoreIsComparedWithTheLiveEstimatorsOwnReference) {
  metrics::Registry registry;
  DriftMonitor drift({.block = 2000}, registry);
  std::mt19937_64 rng(5);
  feed(drift, Users{.mean_score = 0.6}, 2000, rng);
  feed(drift, Users{.mean_score = 0.45}, 2000, rng);
  DriftMonitor::Report report = drift.report();
  ASSERT_EQ(report.alerts.size(), 1u);
  EXPECT_EQ(report.alerts[0].name, "satisfaction_score");
  EXPECT_NEAR(report.alerts[0].now, 0.45, 0.02);

  // A new model: its estimator scores otherwise, so its first block is its reference.
  drift.model_changed("v2");
  report = drift.report();
  EXPECT_TRUE(report.alerts.empty());
  EXPECT_FALSE(report.score_reference.has_value());
  EXPECT_TRUE(report.reference.has_value()) << "the functions' votes do not depend on the model";
  // A block scored mostly by a trial's estimator is no reference.
  feed(drift, Users{.mean_score = 0.45}, 1600, rng, /*live_scores=*/false);
  feed(drift, Users{.mean_score = 0.45}, 400, rng);
  EXPECT_FALSE(drift.report().score_reference.has_value());
  feed(drift, Users{.mean_score = 0.45}, 2000, rng);
  report = drift.report();
  ASSERT_TRUE(report.score_reference.has_value());
  EXPECT_NEAR(report.score_reference->mean_score, 0.45, 0.02);
  feed(drift, Users{.mean_score = 0.45}, 2000, rng);
  EXPECT_TRUE(drift.report().alerts.empty());
  feed(drift, Users{.mean_score = 0.3}, 2000, rng);
  report = drift.report();
  ASSERT_EQ(report.alerts.size(), 1u);
  EXPECT_EQ(report.alerts[0].name, "satisfaction_score");
  EXPECT_NEAR(report.alerts[0].reference, 0.45, 0.02);
}

TEST(DriftMonitorTest, RebaseAcceptsThePresent) {
  metrics::Registry registry;
  DriftMonitor drift({.block = 1000}, registry);
  std::mt19937_64 rng(6);
  feed(drift, Users{}, 1000, rng);
  const Users changed{.coverage = {0.2, 0.3, 0.1}};
  feed(drift, changed, 1000, rng);
  ASSERT_FALSE(drift.report().alerts.empty());
  feed(drift, changed, 500, rng);
  drift.rebase();
  DriftMonitor::Report report = drift.report();
  EXPECT_TRUE(report.alerts.empty());
  EXPECT_FALSE(report.reference.has_value());
  EXPECT_NE(registry.render().find(alert_gauge("labeling_function_coverage", function_name(0)) + " 0"),
            std::string::npos);
  feed(drift, changed, 3000, rng);
  report = drift.report();
  EXPECT_TRUE(report.alerts.empty());
  ASSERT_TRUE(report.reference.has_value());
  EXPECT_NEAR(report.reference->coverage[0], 0.2, 0.04);
  EXPECT_EQ(report.blocks, 5u) << "the half block before the rebase is dropped";
}

TEST(DriftMonitorTest, ThumbsTheEstimatorRanksBackwardsAlertOnceThereAreEnough) {
  metrics::Registry registry;
  DriftMonitor drift({.thumbs_window = 200, .min_thumbs_each = 50, .min_thumbs_auc = 0.5}, registry);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> high(0.5, 0.9), low(0.1, 0.5);
  for (int i = 0; i < 40; ++i) {
    drift.rated(low(rng), true, false);  // backwards, but too few to say
    drift.rated(high(rng), false, false);
  }
  DriftMonitor::Report report = drift.report();
  EXPECT_TRUE(report.alerts.empty());
  ASSERT_TRUE(report.thumbs.auc.has_value());
  EXPECT_LT(*report.thumbs.auc, 0.1);
  for (int i = 0; i < 10; ++i) {
    drift.rated(low(rng), true, false);
    drift.rated(high(rng), false, false);
  }
  report = drift.report();
  ASSERT_EQ(report.alerts.size(), 1u);
  EXPECT_EQ(report.alerts[0].name, "satisfaction_vs_thumbs");
  EXPECT_EQ(report.thumbs.up, 50u);
  EXPECT_EQ(report.thumbs.down, 50u);
  EXPECT_EQ(report.requested_thumbs.up + report.requested_thumbs.down, 0u);
  EXPECT_FALSE(report.requested_thumbs.auc.has_value());
  EXPECT_FALSE(report.requested_thumbs.calibration_error.has_value());
  // Thumbs it ranks right push the backwards ones out of the window; the bot asked for
  // every other one.
  for (int i = 0; i < 100; ++i) {
    drift.rated(high(rng), true, i % 2 == 0);
    drift.rated(low(rng), false, i % 2 == 0);
  }
  report = drift.report();
  EXPECT_TRUE(report.alerts.empty());
  EXPECT_GT(*report.thumbs.auc, 0.9);
  EXPECT_EQ(report.thumbs.up + report.thumbs.down, 200u);
  EXPECT_EQ(report.requested_thumbs.up, 50u);
  EXPECT_EQ(report.requested_thumbs.down, 50u);
  EXPECT_GT(*report.requested_thumbs.auc, 0.9);
  ASSERT_TRUE(report.requested_thumbs.calibration_error.has_value());
  EXPECT_GT(*report.requested_thumbs.calibration_error, 0.0);
  drift.model_changed("v2");
  report = drift.report();
  EXPECT_EQ(report.thumbs.up + report.thumbs.down, 0u) << "the old estimator's scores";
  EXPECT_FALSE(report.thumbs.auc.has_value());
  // Calibration reads the values: two replies at 0.8, half of them rated up, is 0.3 off.
  drift.rated(0.8, true, true);
  drift.rated(0.8, false, true);
  drift.rated(0.1, false, false);
  report = drift.report();
  EXPECT_NEAR(*report.requested_thumbs.calibration_error, 0.3, 1e-12);
  EXPECT_NEAR(*report.thumbs.calibration_error, (2 * 0.3 + 0.1) / 3, 1e-12);
}

// A user who changes their mind about a reply: its rating is replaced, not added; a reply no
// longer in the window is left alone.
TEST(DriftMonitorTest, AChangedRatingReplacesTheOneBefore) {
  metrics::Registry registry;
  DriftMonitor drift({.thumbs_window = 3}, registry);
  drift.rated(0.2, true, true);
  drift.rated(0.7, true, false);
  drift.rating_changed(0.2, false, true);
  DriftMonitor::Report report = drift.report();
  EXPECT_EQ(report.thumbs.up, 1u);
  EXPECT_EQ(report.thumbs.down, 1u);
  EXPECT_EQ(report.requested_thumbs.down, 1u);
  ASSERT_TRUE(report.thumbs.auc.has_value());
  EXPECT_EQ(*report.thumbs.auc, 1.0) << "the reply scored 0.2 is now the one rated down";
  drift.rating_changed(0.2, false, false);  // no such rating (not requested): nothing changes
  drift.rating_changed(0.7, true, false);   // the same rating again: nothing changes
  report = drift.report();
  EXPECT_EQ(report.thumbs.up, 1u);
  EXPECT_EQ(report.thumbs.down, 1u);
  drift.rated(0.5, true, false);
  drift.rated(0.6, true, false);  // 0.2 leaves the window
  drift.rating_changed(0.2, true, true);
  report = drift.report();
  EXPECT_EQ(report.thumbs.up, 3u);
  EXPECT_EQ(report.thumbs.down, 0u);
}

}  // namespace
}  // namespace selffeed::app
