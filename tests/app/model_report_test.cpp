// The model report's shadow tables on a real store with hand-written conversations: which
// answers a shadow saw, how its replies compare with the users' corrections, and how often
// it agrees where the users liked or rated the live answer; and the trust report a
// retraining leaves beside its bundle.
#include "model_report.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "selffeed/common/context.h"
#include "testing.h"

namespace selffeed::app {
namespace {

using testing::TempDir;

Turn user(const std::string& conversation, std::uint32_t index, const std::string& text, std::int64_t time_ms,
          Phase phase = Phase::kNormal) {
  return {.conversation_id = conversation, .index = index, .speaker = Speaker::kUser, .text = text,
          .time_ms = time_ms, .phase = phase, .model_version = "v1"};
}

Turn bot(const std::string& conversation, std::uint32_t index, const std::string& text, std::int64_t time_ms,
         std::optional<ShadowReply> shadow, Phase phase = Phase::kNormal) {
  return {.conversation_id = conversation, .index = index, .speaker = Speaker::kBot, .text = text,
          .time_ms = time_ms, .phase = phase, .model_version = "v1", .shadow = std::move(shadow)};
}

Example example(ExampleKind kind, const std::string& conversation, std::int64_t turn, const std::string& target,
                const std::string& source = "server") {
  return {.kind = kind, .context = "__null__", .target = target, .conversation_id = conversation,
          .turn_index = turn, .model_version = "v1", .created_ms = 1000, .source = source};
}

TEST(ModelReportTest, AShadowIsComparedWithTheLiveAnswersOnTheTurnsItSaw) {
  TempDir dir;
  auto opened = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(opened);
  store::Store& store = **opened;
  const std::string correction = "you could have said it is in the garden , near the house .";
  store::WriteSet w;
  w.conversations = {{.id = "c1", .user_id = "ann", .created_ms = 1000, .updated_ms = 1010},
                     {.id = "c2", .user_id = "bob", .created_ms = 1100, .updated_ms = 1110},
                     {.id = "c3", .user_id = "cy", .created_ms = 1200, .updated_ms = 1210}};
  // c1: a liked answer the shadow also gives; then one it would not give, which the user
  // complains about and corrects; the feedback request and the thanks are no answers.
  w.turns = {user("c1", 0, "what colour is your car ?", 1000),
             bot("c1", 1, "my car is red .", 1000, ShadowReply{"v2", "my car is red ."}),
             user("c1", 2, "nice .", 1001),
             bot("c1", 3, "it is in the shed .", 1001, ShadowReply{"v2", "it is in the garden ."}),
             user("c1", 4, "what ? you are not making sense", 1002),
             bot("c1", 5, "oops ! what could i have said ?", 1002, std::nullopt, Phase::kFeedbackRequested),
             user("c1", 6, correction, 1003, Phase::kFeedbackRequested),
             bot("c1", 7, "thanks ! what next ?", 1003, std::nullopt, Phase::kNewTopicRequested)};
  // c2: rated answers: down on one the shadow would have changed, up on one it keeps.
  for (const Turn& t : {user("c2", 0, "what colour is your boat ?", 1100),
                        bot("c2", 1, "my boat is blue .", 1100, ShadowReply{"v2", "my boat is yellow ."}),
                        user("c2", 2, "hm", 1101),
                        bot("c2", 3, "i like boats .", 1101, ShadowReply{"v2", "i like boats ."}),
                        // c3: no shadow on one answer, another version's on the next.
                        user("c3", 0, "hi", 1200), bot("c3", 1, "hello !", 1200, std::nullopt),
                        user("c3", 2, "how are you ?", 1201),
                        bot("c3", 3, "fine .", 1201, ShadowReply{"v3", "good , you ?"})}) {
    w.turns.push_back(t);
  }
  Turn& rated_down = w.turns[9];  // c2's first answer, with the reason the user gave
  ASSERT_EQ(rated_down.text, "my boat is blue .");
  rated_down.thumbs_up = false;
  rated_down.dislike_reason = DislikeReason::kRepetitive;
  w.turns[11].thumbs_up = true;
  w.examples = {example(ExampleKind::kHB, "c1", 2, "nice ."), example(ExampleKind::kFB, "c1", 6, correction),
                example(ExampleKind::kST, "c2", 1, "0", "thumbs"), example(ExampleKind::kST, "c2", 3, "1", "thumbs")};
  ASSERT_OK(store.commit(w));

  auto report = report_models(store, {});
  ASSERT_OK(report);
  ASSERT_EQ(report->shadows.size(), 2u);
  const ShadowReport& v2 = report->shadows[0];
  EXPECT_EQ(v2.version, "v2");
  EXPECT_EQ(v2.beside, "v1");
  EXPECT_EQ(v2.conversations, 2u);
  EXPECT_EQ(v2.answers, 4u);
  EXPECT_EQ(v2.same.count, 2u);
  EXPECT_DOUBLE_EQ(v2.same.value, 0.5);
  EXPECT_LE(v2.same.low, v2.same.value);
  EXPECT_GE(v2.same.high, v2.same.value);
  ASSERT_EQ(v2.corrected, 1u);
  EXPECT_DOUBLE_EQ(v2.live_f1, token_f1("it is in the shed .", correction));
  EXPECT_DOUBLE_EQ(v2.shadow_f1, token_f1("it is in the garden .", correction));
  EXPECT_GT(v2.shadow_f1, v2.live_f1) << "the shadow's reply is nearer what the user asked for";
  EXPECT_DOUBLE_EQ(v2.f1_gain.value, v2.shadow_f1 - v2.live_f1);
  EXPECT_EQ(v2.same_when_liked.count, 1u);
  EXPECT_EQ(v2.same_when_liked.of, 1u);
  EXPECT_EQ(v2.same_when_thumbs_up.count, 1u);
  EXPECT_EQ(v2.same_when_thumbs_up.of, 1u);
  EXPECT_EQ(v2.same_when_thumbs_down.count, 0u);
  EXPECT_EQ(v2.same_when_thumbs_down.of, 1u);

  const ShadowReport& v3 = report->shadows[1];
  EXPECT_EQ(v3.version, "v3");
  EXPECT_EQ(v3.answers, 1u);
  EXPECT_EQ(v3.same.count, 0u);
  EXPECT_EQ(v3.corrected, 0u);

  // The trial judge's report, without the shadows' scan of the harvest.
  auto versions_only = report_models(store, {.shadows = false});
  ASSERT_OK(versions_only);
  EXPECT_TRUE(versions_only->shadows.empty());
  EXPECT_EQ(to_json(*versions_only)["versions"], to_json(*report)["versions"]);

  // Only what came since: c1 and c2's turns are older.
  auto later = report_models(store, {.since_ms = 1200});
  ASSERT_OK(later);
  ASSERT_EQ(later->shadows.size(), 1u);
  EXPECT_EQ(later->shadows[0].version, "v3");

  const nlohmann::json json = to_json(*report);
  EXPECT_EQ(json["shadows"][0]["corrected"], 1);
  EXPECT_EQ(json["shadows"][0]["same"]["of"], 4);
  EXPECT_NE(to_markdown(*report).find("| v2 | v1 | 2 | 4 | 0.500"), std::string::npos) << to_markdown(*report);
  // Why the live version's answers were rated down, where the users said.
  EXPECT_EQ(json["versions"][0]["dislike_reasons"], nlohmann::json({{"repetitive", 1}}));
  EXPECT_NE(to_markdown(*report).find("Why users rated answers of v1 down, where they said: repetitive 1 (of 1 thumbs "
                                      "down)"),
            std::string::npos)
      << to_markdown(*report);
}

// A conversation whose answer at turn 1 has a reply the estimator judged `estimate`; the
// bot's next turn asked to rate that answer when `requested`, and asked what it should have
// said when `feedback_asked`.
void judged_answer(store::WriteSet& w, const std::string& id, double estimate, bool requested,
                   bool feedback_asked = false) {
  w.conversations.push_back({.id = id, .created_ms = 1000, .updated_ms = 1003});
  w.turns.push_back(user(id, 0, "hi", 1000));
  w.turns.push_back(bot(id, 1, "hello , how are you ?", 1000, std::nullopt));
  Turn reply = user(id, 2, "fine", 1001);
  reply.satisfaction = estimate;
  w.turns.push_back(reply);
  Turn next = feedback_asked ? bot(id, 3, "oops ! what could i have said ?", 1001, std::nullopt, Phase::kFeedbackRequested)
                             : bot(id, 3, "good to hear .", 1001, std::nullopt);
  if (requested) next.rating_request = 1;
  w.turns.push_back(next);
}

TEST(ModelReportTest, TheRatingsTheBotAskedForAreReportedApartFromThoseUsersChoseToGive) {
  TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet w;
  judged_answer(w, "asked-up", 0.9, true);
  judged_answer(w, "asked-down", 0.2, true, /*feedback_asked=*/true);
  judged_answer(w, "asked-up-yet-feedback", 0.3, true, /*feedback_asked=*/true);
  judged_answer(w, "asked-unrated", 0.5, true);
  judged_answer(w, "own-up", 0.1, false);  // the estimator was wrong where the user chose to rate
  w.examples = {example(ExampleKind::kST, "asked-up", 1, "1", "thumbs"),
                example(ExampleKind::kST, "asked-down", 1, "0", "thumbs"),
                example(ExampleKind::kST, "asked-up-yet-feedback", 1, "1", "thumbs"),
                example(ExampleKind::kST, "own-up", 1, "1", "thumbs")};
  ASSERT_OK((*store)->commit(w));

  auto report = report_models(**store, {.shadows = false});
  ASSERT_OK(report);
  ASSERT_EQ(report->versions.size(), 1u);
  const VersionReport& v = report->versions[0];
  EXPECT_EQ(v.thumbs_down.count, 1u);
  EXPECT_EQ(v.thumbs_up, 3u);
  EXPECT_EQ(v.thumbs_with_estimate, 4u);
  EXPECT_NEAR(*v.estimator_auc_vs_thumbs, 2.0 / 3, 1e-12) << "up at 0.9, 0.3 and 0.1, down at 0.2";
  EXPECT_EQ(v.requested_thumbs_down.count, 1u);
  EXPECT_EQ(v.requested_thumbs_down.of, 3u) << "a request left unanswered is no rating";
  EXPECT_EQ(v.requested_thumbs_with_estimate, 3u);
  EXPECT_DOUBLE_EQ(*v.estimator_auc_vs_requested_thumbs, 1.0);
  ASSERT_TRUE(v.calibration_vs_requested_thumbs.has_value());
  ASSERT_EQ(v.calibration_vs_requested_thumbs->bins.size(), 2u);
  EXPECT_NEAR(v.calibration_vs_requested_thumbs->expected_error, (2 * 0.25 + 0.1) / 3, 1e-12)
      << "0.2 down and 0.3 up in one bin, 0.9 up in another";
  // The bot asked what it should have said after two of the requested answers, one of
  // them rated down: the only one rated down.
  EXPECT_EQ(v.feedback_request_precision.count, 1u);
  EXPECT_EQ(v.feedback_request_precision.of, 2u);
  EXPECT_EQ(v.feedback_request_recall.count, 1u);
  EXPECT_EQ(v.feedback_request_recall.of, 1u);

  const nlohmann::json json = to_json(*report)["versions"][0];
  EXPECT_EQ(json["requested_thumbs_down"]["of"], 3);
  EXPECT_EQ(json["estimator_auc_vs_requested_thumbs"], 1.0);
  EXPECT_EQ(json["calibration_vs_requested_thumbs"]["bins"][1]["up_share"], 1.0);
  EXPECT_EQ(json["feedback_request_precision"]["value"], 0.5);
  const std::string markdown = to_markdown(*report);
  EXPECT_NE(markdown.find("| 0.8-1.0 | 1 | 0.900 | 1.000 |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("(1/3) | 1.000 (3) |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("Feedback requests of v1 against the requested thumbs: precision 0.500"), std::string::npos)
      << markdown;
}

// Forty conversations with a shadowed answer each, some corrected, some rated; stored
// beginning in the order given.
store::WriteSet forty_conversations(bool reversed) {
  store::WriteSet w;
  for (std::uint32_t i = 0; i < 40; ++i) {
    const std::string id = "c" + std::to_string(i);
    const std::int64_t begun = 1000 + 10 * (reversed ? 39 - i : i);
    w.conversations.push_back({.id = id, .created_ms = begun, .updated_ms = begun + 5});
    const std::string answer = "answer " + std::to_string(i % 4);
    w.turns.push_back(user(id, 0, "question", begun));
    w.turns.push_back(bot(id, 1, answer, begun, ShadowReply{"v2", i % 3 == 0 ? answer : "other " + std::to_string(i)}));
    w.turns.push_back(user(id, 2, i % 2 == 0 ? "what ? you are not making sense" : "ok", begun + 1));
    if (i % 2 == 0) {
      w.turns.push_back(bot(id, 3, "what could i have said ?", begun + 1, std::nullopt, Phase::kFeedbackRequested));
      w.turns.push_back(user(id, 4, "other " + std::to_string(i % 5), begun + 2, Phase::kFeedbackRequested));
      w.examples.push_back(example(ExampleKind::kFB, id, 4, "other " + std::to_string(i % 5)));
    }
    if (i % 5 == 0) w.examples.push_back(example(ExampleKind::kST, id, 1, i % 2 ? "1" : "0", "thumbs"));
  }
  return w;
}

TEST(ModelReportTest, TheReportDoesNotDependOnTheOrderConversationsWereStoredIn) {
  TempDir dir;
  std::string reports[2];
  for (bool reversed : {false, true}) {
    auto store = store::Store::open({.path = dir.str(reversed ? "reversed" : "in-order")});
    ASSERT_OK(store);
    ASSERT_OK((*store)->commit(forty_conversations(reversed)));
    auto report = report_models(**store, {});
    ASSERT_OK(report);
    ASSERT_EQ(report->shadows.size(), 1u);
    EXPECT_EQ(report->shadows[0].corrected, 20u);
    reports[reversed] = to_json(*report).dump();
  }
  // The intervals too: the bootstrap draws the same conversations.
  EXPECT_EQ(reports[0], reports[1]);
}

ModelRecord record(const std::string& version, const std::string& path, const nlohmann::json& lineage) {
  return {.version = version, .path = path, .status = ModelStatus::kCandidate, .metrics_json = "{}",
          .lineage_json = lineage.dump()};
}

TEST(ModelReportTest, TheVersionsTrainedOnAUsersExamplesAndThoseFineTunedFromThem) {
  const nlohmann::json none = {{"harvested", {{"example_seqs", nlohmann::json::array()}}}};
  const std::vector<ModelRecord> models = {
      record("base", "/b/base", {{"data", nlohmann::json::array()}}),
      record("a", "/b/a", {{"fine_tuned_from", "/b/base"}, {"harvested", {{"example_seqs", {1, 5, 9}}}}}),
      // Trained on none of them itself, but fine-tuned from a, then from its child.
      record("a-child", "/b/a-child", {{"fine_tuned_from", "/b/x/../a"}, {"harvested", {{"example_seqs", {11}}}}}),
      record("a-grandchild", "/b/a-gc", {{"fine_tuned_from", "/b/a-child"}}),
      record("other", "/b/other", {{"fine_tuned_from", "/b/base"}, {"harvested", {{"example_seqs", {2, 3}}}}}),
      record("unreadable", "/b/u", nlohmann::json("not a lineage"))};
  EXPECT_EQ(versions_trained_on(models, {4, 5}), (std::vector<std::string>{"a", "a-child", "a-grandchild"}));
  EXPECT_EQ(versions_trained_on(models, {3}), (std::vector<std::string>{"other"}));
  EXPECT_EQ(versions_trained_on(models, {11}), (std::vector<std::string>{"a-child", "a-grandchild"}));
  EXPECT_TRUE(versions_trained_on(models, {4, 6, 7}).empty());
  EXPECT_TRUE(versions_trained_on(models, {}).empty());
}

TEST(ModelReportTest, TheVersionsThatLearnedFromDeletedUsersAndWhereRetrainingRestarts) {
  TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  for (const std::string who : {"alice", "alice", "bob"}) {  // seqs 1, 2 and 3
    writes.examples.push_back(
        {.kind = ExampleKind::kHB, .context = "__null__", .target = "hi", .conversation_id = who + "-c", .user_id = who});
  }
  ASSERT_OK((*store)->commit(writes));
  const std::vector<ModelRecord> models = {
      record("base", "/b/base", {{"data", nlohmann::json::array()}}),
      record("bobs", "/b/bobs", {{"fine_tuned_from", "/b/base"}, {"harvested", {{"example_seqs", {3}}}}}),
      record("alices", "/b/alices", {{"fine_tuned_from", "/b/bobs"}, {"harvested", {{"example_seqs", {1, 3}}}}}),
      record("after", "/b/after", {{"fine_tuned_from", "/b/alices"}, {"harvested", {{"example_seqs", {3}}}}}),
      record("stray", "/b/stray", {{"fine_tuned_from", "/elsewhere"}, {"harvested", {{"example_seqs", {2}}}}})};
  EXPECT_TRUE(learned_from_deleted_users(**store, models)->empty()) << "no one is deleted yet";
  ASSERT_OK((*store)->delete_user("alice"));
  const auto tainted = learned_from_deleted_users(**store, models);
  ASSERT_OK(tainted);
  EXPECT_EQ(*tainted, (std::set<std::string>{"alices", "after", "stray"}));

  EXPECT_EQ(newest_clean_ancestor(models, "/b/after", *tainted)->version, "bobs");
  EXPECT_EQ(newest_clean_ancestor(models, "/b/x/../bobs", *tainted)->version, "bobs") << "itself, when clean";
  EXPECT_EQ(newest_clean_ancestor(models, "/b/stray", *tainted).status().code(), StatusCode::kNotFound)
      << "its parent is not registered: nothing says it is clean";
  EXPECT_EQ(newest_clean_ancestor(models, "/b/unknown", *tainted).status().code(), StatusCode::kNotFound);
  ASSERT_OK((*store)->delete_user("bob"));
  EXPECT_EQ(newest_clean_ancestor(models, "/b/after", *learned_from_deleted_users(**store, models))->version, "base");
}

// The trust report beside a bundle is read as retraining wrote it, and a damaged one is
// refused with the file's name rather than read half.
TEST(ModelReportTest, ATrustReportIsReadFromBesideTheBundleAndADamagedOneRefused) {
  TempDir dir;
  std::filesystem::create_directories(dir.str("run/bundle"));
  EXPECT_EQ(read_trust_report(dir.str("run/bundle")).status().code(), StatusCode::kNotFound);
  const auto write = [&](const std::string& text) { std::ofstream(dir.str("run/trust.json")) << text; };
  write(R"({"teachers": [{"teacher": "ann", "trusted": true}, {"teacher": "troll", "trusted": false}]})");
  auto report = read_trust_report(dir.str("run/bundle/"));
  ASSERT_OK(report);
  EXPECT_EQ((*report)["teachers"][1]["teacher"], "troll");
  for (const std::string damaged : {"[]", R"({"teachers": {}})", R"({"teachers": [{"teacher": "ann"}]})",
                                    R"({"teachers": [{"teacher": 7, "trusted": true}]})", "{\"teach"}) {
    write(damaged);
    auto refused = read_trust_report(dir.str("run/bundle"));
    EXPECT_EQ(refused.status().code(), StatusCode::kDataLoss) << damaged;
    EXPECT_NE(refused.status().message().find("trust.json"), std::string::npos) << refused.status().message();
  }
}

}  // namespace
}  // namespace selffeed::app
