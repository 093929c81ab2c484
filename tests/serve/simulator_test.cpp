// The user simulator (clients/simulator.h) against a real server on 127.0.0.1 with a real
// store: what it reports is what the server did and kept. The server uses the paper's
// regex satisfaction baseline and a tight rate limit, so every complaint is recognised and
// the simulated users have to wait some messages out.
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "selffeed/clients/simulator.h"
#include "selffeed/store/store.h"
#include "server_process.h"

namespace selffeed {
namespace {

using testing::TempDir;

// Runs the simulated users against a server of their own on `dir`'s store ("store"),
// stopped again before the test reads the store.
Result<clients::SimulationReport> run_against_a_server(const TempDir& dir, clients::SimulatorOptions options,
                                                       const std::vector<std::string>& server_flags) {
  auto server = testing::start_server(dir.str(), dir.str("store"), server_flags);
  if (!server) return unavailable_error("the server did not start");
  options.url = server->ws_url();
  return clients::run_simulation(options);
}

TEST(SimulatorTest, ComplaintsBecomeFeedbackExamplesAndTheRateLimitIsWaitedOut) {
  TempDir dir;
  clients::SimulatorOptions options{.complaints = {"what ? you are not making any sense"},
                                    .conversations = 3,
                                    .first_dialogue = 3,
                                    .max_user_lines = 2,
                                    .poor_reply_f1 = 1.01,  // every answer is poor: the user always complains
                                    .thumbs_rate = 0,
                                    .users = 2,
                                    .conversation_prefix = "round-a"};
  for (const std::string object : {"car", "boat", "kite"}) {
    options.dialogues.push_back({.lines = {"hello ! what colour is your " + object + " ?", "my " + object + " is red .",
                                           "nice . where is your " + object + " ?", "my " + object + " is in the lake ."}});
  }
  auto report = run_against_a_server(dir, options, {"--rate", "4", "--burst", "2"});
  ASSERT_OK(report);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->conversations, 3);
  // Per conversation and line: an answer, the complaint, the bot's feedback request, the
  // user's feedback (the partner's line), then the bot asks for a new topic.
  EXPECT_EQ(report->answers, 6);
  EXPECT_EQ(report->poor_replies, 6);
  EXPECT_EQ(report->complaints, 6);
  EXPECT_EQ(report->feedback_requests, 6);
  EXPECT_EQ(report->harvested_fb, 6);
  EXPECT_EQ(report->harvested_hb, 0);
  EXPECT_EQ(report->user_messages, 18);
  EXPECT_GT(report->rate_limited, 0);  // six messages in a row against a burst of two

  auto store = store::Store::open({.path = dir.str("store"), .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  std::vector<std::string> feedback;
  std::set<std::string> conversations;
  ASSERT_OK((*store)->scan_examples(ExampleKind::kFB, 0, [&](const Example& e) {
    feedback.push_back(e.target);
    conversations.insert(e.conversation_id);
    return true;
  }));
  ASSERT_EQ(feedback.size(), 6u);
  for (const std::string& target : feedback) {
    EXPECT_TRUE(target.starts_with("my ")) << target;  // the partner's line, never the complaint
  }
  // Named by the dialogue's number, counted from the offset.
  EXPECT_EQ(conversations, (std::set<std::string>{"round-a-3", "round-a-4", "round-a-5"}));

  // The transcripts hold every message of both sides: 18 from the users, 18 replies.
  std::ostringstream transcripts;
  auto exported = (*store)->export_transcripts(transcripts);
  ASSERT_OK(exported);
  EXPECT_EQ(*exported, 3u);
  const std::string text = transcripts.str();
  auto count = [&](const std::string& needle) {
    int n = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(R"("speaker":"user")"), 18);
  EXPECT_EQ(count(R"("speaker":"bot")"), 18);
  EXPECT_EQ(count("Oops! I think I messed up."), 6);
  EXPECT_EQ(count("what ? you are not making any sense"), 6);
}

TEST(SimulatorTest, UsersWhoLikeTheAnswersGiveThumbsUp) {
  TempDir dir;
  clients::SimulatorOptions options{.complaints = {"what ? you are not making any sense"},
                                    .conversations = 3,
                                    .max_user_lines = 2,
                                    .poor_reply_f1 = 0,  // no answer is poor
                                    .thumbs_up_rate = 1,
                                    .users = 2};
  options.dialogues.push_back({.lines = {"hello ! what colour is your car ?", "my car is red .",
                                         "nice . where is your car ?", "my car is in the lake ."}});
  auto report = run_against_a_server(dir, options, {});
  ASSERT_OK(report);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->answers, 6);
  EXPECT_EQ(report->complaints, 0);
  EXPECT_EQ(report->thumbs_down, 0);
  EXPECT_EQ(report->thumbs_up, 6);

  auto store = store::Store::open({.path = dir.str("store"), .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  int ups = 0;
  ASSERT_OK((*store)->scan_examples(ExampleKind::kST, 0, [&](const Example& e) {
    ups += e.target == "1" && e.source == "thumbs";
    return true;
  }));
  EXPECT_EQ(ups, 6);
}

// serve --rating-request-share 1: each conversation is asked to rate one answer (the cap),
// and the simulated user rates it as it judges it: down when it was poor, up otherwise.
TEST(SimulatorTest, UsersAskedToRateAnAnswerRateItAsTheyJudgedIt) {
  for (const bool poor : {true, false}) {
    TempDir dir;
    // "hm" is no complaint the regex estimate hears: answered, and judged, so it may ask.
    clients::SimulatorOptions options{.complaints = {"hm"},
                                      .conversations = 3,
                                      .max_user_lines = 2,
                                      .poor_reply_f1 = poor ? 1.01 : 0,
                                      .thumbs_rate = 0,
                                      .users = 1};
    options.dialogues.push_back({.lines = {"hello ! what colour is your car ?", "my car is red .",
                                           "nice . where is your car ?", "my car is in the lake ."}});
    auto report = run_against_a_server(dir, options, {"--rating-request-share", "1"});
    ASSERT_OK(report);
    EXPECT_EQ(report->errors, 0);
    EXPECT_EQ(report->rating_requests, 3) << "one a conversation";
    EXPECT_EQ(report->thumbs_down, poor ? 3 : 0);
    EXPECT_EQ(report->thumbs_up, poor ? 0 : 3);
    auto store = store::Store::open({.path = dir.str("store"), .mode = store::OpenMode::kReadOnly});
    ASSERT_OK(store);
    std::vector<Example> thumbs;
    ASSERT_OK((*store)->scan_examples(ExampleKind::kST, 0, [&](const Example& e) {
      thumbs.push_back(e);
      return true;
    }));
    ASSERT_EQ(thumbs.size(), 3u);
    for (const Example& e : thumbs) {
      EXPECT_EQ(e.target, poor ? "0" : "1");
      EXPECT_EQ(e.turn_index, 1) << "the first answer, which the next message replied to";
      EXPECT_NE(e.context.find(poor ? "__p1__ hm" : "__p1__ nice . where is your car ?"), std::string::npos)
          << e.context;
    }
  }
}

// The server may ask to rate the bot's answer to a complaint: the simulated user judges
// that answer too (against the line it fumbled), so every request it is sent is rated.
TEST(SimulatorTest, UsersRateTheAnswerToTheirComplaintWhenAsked) {
  TempDir dir;
  clients::SimulatorOptions options{.complaints = {"hm"},
                                    .conversations = 1,
                                    .max_user_lines = 2,
                                    .poor_reply_f1 = 1.01,  // every answer poor: each line gets a complaint
                                    .thumbs_rate = 0,
                                    .users = 1};
  options.dialogues.push_back({.lines = {"hello ! what colour is your car ?", "my car is red .",
                                         "nice . where is your car ?", "my car is in the lake ."}});
  auto report = run_against_a_server(dir, options, {"--rating-request-share", "1", "--max-rating-requests", "3"});
  ASSERT_OK(report);
  EXPECT_EQ(report->errors, 0);
  ASSERT_EQ(report->complaints, 2);
  // Turns: 0 line, 1 answer, 2 "hm" (asks about 1), 3 answer to the complaint, 4 line
  // (asks about 3), 5 answer, 6 "hm" (asks about 5), 7 answer.
  EXPECT_EQ(report->rating_requests, 3);
  EXPECT_EQ(report->thumbs_down, 3);
  auto store = store::Store::open({.path = dir.str("store"), .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  std::vector<std::int64_t> rated_turns;
  ASSERT_OK((*store)->scan_examples(ExampleKind::kST, 0, [&](const Example& e) {
    EXPECT_EQ(e.target, "0");
    rated_turns.push_back(e.turn_index);
    return true;
  }));
  std::sort(rated_turns.begin(), rated_turns.end());
  EXPECT_EQ(rated_turns, (std::vector<std::int64_t>{1, 3, 5}));
}

// A user who gave a thumbs-down also says what the bot could have said: the partner's line,
// kept as an FB example of that answer.
TEST(SimulatorTest, UsersWhoSuggestSayThePartnersLineAfterAThumbsDown) {
  TempDir dir;
  clients::SimulatorOptions options{.complaints = {"hm"},
                                    .conversations = 1,
                                    .max_user_lines = 2,
                                    .poor_reply_f1 = 1.01,
                                    .thumbs_rate = 1,
                                    .suggest_rate = 1,
                                    .users = 1};
  options.dialogues.push_back({.lines = {"hello ! what colour is your car ?", "my car is red .",
                                         "nice . where is your car ?", "my car is in the lake ."}});
  auto report = run_against_a_server(dir, options, {});
  ASSERT_OK(report);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->thumbs_down, 2);
  EXPECT_EQ(report->suggestions, 2);
  auto store = store::Store::open({.path = dir.str("store"), .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  std::map<std::int64_t, std::string> suggested;
  ASSERT_OK((*store)->scan_examples(ExampleKind::kFB, 0, [&](const Example& e) {
    if (e.source == "suggestion") suggested[e.turn_index] = e.target;
    return true;
  }));
  // Turns: 0 line, 1 answer, 2 "hm", 3 answer, 4 line, 5 answer.
  EXPECT_EQ(suggested, (std::map<std::int64_t, std::string>{{1, "my car is red ."}, {5, "my car is in the lake ."}}));
}

// A troll plays its dialogue like anyone, but what it teaches, in answer to a feedback
// request and in a suggestion, is a line of any dialogue; the honest user teaches the
// partner's line.
TEST(SimulatorTest, TrollsTeachLinesOfOtherDialogues) {
  TempDir dir;
  clients::SimulatorOptions options{.complaints = {"what ? you are not making any sense"},
                                    .conversations = 4,
                                    .max_user_lines = 2,
                                    .poor_reply_f1 = 1.01,
                                    .thumbs_rate = 1,
                                    .suggest_rate = 1,
                                    .users = 1,
                                    .user_ids = 2,
                                    .troll_user_ids = 1};
  std::set<std::string> references;  // the partners' lines
  for (const std::string object : {"car", "boat", "kite", "bike"}) {
    options.dialogues.push_back({.lines = {"hello ! what colour is your " + object + " ?", "my " + object + " is red .",
                                           "nice . where is your " + object + " ?",
                                           "my " + object + " is in the lake ."}});
    references.insert({"my " + object + " is red .", "my " + object + " is in the lake ."});
  }
  auto report = run_against_a_server(dir, options, {});
  ASSERT_OK(report);
  EXPECT_EQ(report->errors, 0);
  auto store = store::Store::open({.path = dir.str("store"), .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  std::map<std::string, std::vector<std::string>> taught;  // user -> FB targets
  ASSERT_OK((*store)->scan_examples(ExampleKind::kFB, 0, [&](const Example& e) {
    taught[e.user_id].push_back(e.target);
    return true;
  }));
  ASSERT_EQ(taught.size(), 2u);
  const std::vector<std::string>& honest = taught["sim-1"];
  const std::vector<std::string>& troll = taught["sim-troll-0"];
  // Two conversations each, two lines each: a suggestion and a feedback answer per line.
  ASSERT_EQ(honest.size(), 8u);
  ASSERT_EQ(troll.size(), 8u);
  EXPECT_EQ(report->junk_taught, 8);
  for (const std::string& target : honest) EXPECT_TRUE(references.contains(target)) << target;
  // The troll's are lines of the dialogues, not only the partners': some are user lines.
  EXPECT_TRUE(std::any_of(troll.begin(), troll.end(), [&](const std::string& t) { return !references.contains(t); }));
  for (const std::string& target : troll) {
    EXPECT_TRUE(references.contains(target) || target.starts_with("hello !") || target.starts_with("nice .")) << target;
  }
}

TEST(SimulatorTest, UsersSayWhyTheyRatedDownByWhatTheyCanSee) {
  TempDir dir;
  // Sixteen lines and as many complaints: the toy pool's 13 replies run out, and the bot
  // repeats itself.
  clients::SimulatorOptions options{.complaints = {"hm"},
                                    .conversations = 1,
                                    .max_user_lines = 16,
                                    .poor_reply_f1 = 1.01,
                                    .thumbs_rate = 1,
                                    .reason_rate = 1,
                                    .users = 1};
  clients::SimulatedDialogue dialogue;
  for (int i = 0; i < 16; ++i) {
    dialogue.lines.push_back(i % 2 == 0 ? "what colour is your car ?" : "where is your house ?");
    dialogue.lines.push_back("red .");
  }
  options.dialogues.push_back(dialogue);
  auto report = run_against_a_server(dir, options, {"--rating-request-share", "0"});
  ASSERT_OK(report);
  EXPECT_EQ(report->errors, 0);
  EXPECT_EQ(report->thumbs_down, 16) << "every answer is poor";
  EXPECT_EQ(report->repetitive_reasons + report->off_topic_reasons, report->thumbs_down);
  EXPECT_GT(report->repetitive_reasons, 0);
  EXPECT_GT(report->off_topic_reasons, 0);
  // An answer may repeat both ways: at most their sum.
  EXPECT_LE(report->repetitive_reasons, report->repeated_answers + report->repeated_questions);
  auto store = store::Store::open({.path = dir.str("store"), .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  std::map<std::string, int> reasons;
  ASSERT_OK((*store)->scan_transcripts({}, [&](const Conversation&, const std::vector<Turn>& turns) {
    std::set<std::string> said;
    for (const Turn& t : turns) {
      if (t.speaker != Speaker::kBot || t.phase != Phase::kNormal || !t.thumbs_up) continue;
      EXPECT_FALSE(*t.thumbs_up);
      EXPECT_TRUE(t.dislike_reason.has_value()) << t.text;
      if (!t.dislike_reason) continue;
      ++reasons[std::string(dislike_reason_name(*t.dislike_reason))];
      if (!said.insert(t.text).second) {
        EXPECT_EQ(t.dislike_reason, DislikeReason::kRepetitive) << t.text;
      }
    }
    return true;
  }));
  EXPECT_EQ(reasons["repetitive"], report->repetitive_reasons);
  EXPECT_EQ(reasons["off_topic"], report->off_topic_reasons);
}

}  // namespace
}  // namespace selffeed
