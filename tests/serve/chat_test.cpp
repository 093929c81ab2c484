// The self-feeding loop through a real server on 127.0.0.1 and a real RocksDB directory:
// a scripted conversation, checked turn by turn and then in the store. The server uses the
// paper's regex satisfaction baseline, so the script decides which replies look unhappy.
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "selffeed/common/context.h"
#include "selffeed/feedback/policy.h"
#include "selffeed/store/store.h"
#include "server_process.h"

namespace selffeed {
namespace {

using nlohmann::json;
using testing::TempDir;

std::vector<Example> examples_of(store::Store& store, ExampleKind kind) {
  std::vector<Example> out;
  EXPECT_OK(store.scan_examples(kind, 0, [&](const Example& e) {
    out.push_back(e);
    return true;
  }));
  return out;
}

TEST(ChatTest, ScriptedConversationHarvestsHbFbAndSt) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  std::string conversation_id, bot1, bot2, bot5;
  const std::string msg1 = "hello ! what colour is your car ?";
  const std::string msg2 = "nice . where is your boat ?";
  const std::string msg3 = "what ? you are not making any sense";  // a paper regex: unsatisfied
  const std::string msg4 = "you could have said my boat is in the lake .";
  const std::string msg5 = "let us talk about kites . what colour is your kite ?";
  {
    auto server = testing::start_server(dir.str(), store_dir, {});
    ASSERT_TRUE(server);
    ASSERT_NE(server->port(), 0);
    auto client = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(client);
    auto& ws = **client;

    json welcome = testing::request(ws, {{"type", "hello"}, {"user_id", "alice"}, {"id", "h1"}});
    ASSERT_EQ(welcome["type"], "welcome") << welcome.dump();
    EXPECT_EQ(welcome["id"], "h1");
    EXPECT_EQ(welcome["resumed"], false);
    EXPECT_EQ(welcome["model_version"], "toy-v1");
    conversation_id = welcome["conversation_id"];

    // 1: the first message is never judged, just answered.
    json r1 = testing::request(ws, {{"type", "message"}, {"text", msg1}, {"id", "m1"}});
    ASSERT_EQ(r1["type"], "reply") << r1.dump();
    EXPECT_EQ(r1["id"], "m1");
    EXPECT_EQ(r1["kind"], "answer");
    EXPECT_EQ(r1["user_turn"], 0);
    EXPECT_EQ(r1["turn"], 1);
    EXPECT_TRUE(r1["satisfaction"].is_null());
    EXPECT_EQ(r1["harvested"], json::array());
    bot1 = r1["text"];

    // 2: satisfied -> the user's reply is kept as an HB example.
    json r2 = testing::request(ws, {{"type", "message"}, {"text", msg2}});
    ASSERT_EQ(r2["type"], "reply") << r2.dump();
    EXPECT_EQ(r2["kind"], "answer");
    EXPECT_EQ(r2["satisfaction"], 1.0);
    EXPECT_EQ(r2["harvested"], json::array({"HB"}));
    bot2 = r2["text"];
    EXPECT_NE(bot2, bot1) << "the previous-response filter must not repeat the last answer";

    // 3: unsatisfied -> the paper's feedback request, quoting what the bot answered badly.
    json r3 = testing::request(ws, {{"type", "message"}, {"text", msg3}});
    ASSERT_EQ(r3["type"], "reply") << r3.dump();
    EXPECT_EQ(r3["kind"], "feedback_request");
    EXPECT_EQ(r3["satisfaction"], 0.0);
    EXPECT_EQ(r3["text"], "Oops! I think I messed up. Whether I messed up or not, what could I have said (in "
                          "response to \"" + msg2 + "\")?");
    EXPECT_EQ(r3["harvested"], json::array());

    // 4: the answer is kept as FB; thanks and a new topic.
    json r4 = testing::request(ws, {{"type", "message"}, {"text", msg4}});
    ASSERT_EQ(r4["type"], "reply") << r4.dump();
    EXPECT_EQ(r4["kind"], "thanks_new_topic");
    EXPECT_EQ(r4["text"], "Thanks! I'll try to remember that. Can you pick a new topic for us to talk about now?");
    EXPECT_EQ(r4["harvested"], json::array({"FB"}));

    // 5: the new topic starts from a reset history and is answered, not judged.
    json r5 = testing::request(ws, {{"type", "message"}, {"text", msg5}});
    ASSERT_EQ(r5["type"], "reply") << r5.dump();
    EXPECT_EQ(r5["kind"], "answer");
    EXPECT_TRUE(r5["satisfaction"].is_null());
    EXPECT_EQ(r5["turn"], 9);
    bot5 = r5["text"];

    // Thumbs down on the bot's second answer.
    json rated = testing::request(ws, {{"type", "rate"}, {"turn", 3}, {"value", "down"}});
    ASSERT_EQ(rated["type"], "rated") << rated.dump();
    EXPECT_EQ(rated["turn"], 3);
    json bad_rate = testing::request(ws, {{"type", "rate"}, {"turn", 2}, {"value", "up"}});
    EXPECT_EQ(bad_rate["code"], "unknown_turn") << "turn 2 is the user's";

    // The public stats count what was harvested.
    auto stats = clients::http_request("GET", server->http_url("/stats"));
    ASSERT_OK(stats);
    json s = json::parse(stats->body);
    EXPECT_EQ(s["harvested"], json({{"HB", 1}, {"FB", 1}, {"ST", 1}}));
    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_turns_total 5"), std::string::npos) << metrics->body;
    EXPECT_NE(metrics->body.find("selffeed_turns_not_learning_total 0"), std::string::npos);
    // The toy pool always has an answer that no rule holds back.
    EXPECT_NE(metrics->body.find("selffeed_answers_held_back_total 0"), std::string::npos) << metrics->body;
    EXPECT_NE(metrics->body.find("selffeed_feedback_requests_total 1"), std::string::npos);
    EXPECT_NE(metrics->body.find("selffeed_model_info{version=\"toy-v1\"} 1"), std::string::npos);
    // The labeling functions on the two judged replies: "nice ." and the complaint.
    EXPECT_NE(metrics->body.find("selffeed_labeling_function_votes_total{function=\"positive_reaction\",vote=\"satisfied\"} 1"),
              std::string::npos) << metrics->body;
    EXPECT_NE(metrics->body.find("selffeed_labeling_function_votes_total{function=\"paper_regex\",vote=\"unsatisfied\"} 1"),
              std::string::npos);

    // A reconnecting client resumes the conversation with its turns.
    ws.close();
    auto again = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(again);
    json resumed = testing::request(**again, {{"type", "hello"}, {"conversation_id", conversation_id}});
    ASSERT_EQ(resumed["type"], "welcome") << resumed.dump();
    EXPECT_EQ(resumed["resumed"], true);
    EXPECT_EQ(resumed["user_id"], "alice");
    ASSERT_EQ(resumed["turns"].size(), 10u);
    EXPECT_EQ(resumed["turns"][9]["text"], bot5);
    EXPECT_EQ(server->stop(SIGTERM), 0) << "a clean exit on SIGTERM";
  }

  // lf-report beside the training data: the labeling functions on the two replies the
  // server judged, and against the thumbs down on the answer to the second.
  {
    std::string wild = "[";
    for (int i = 0; i < 10; ++i) {  // some of them in the train split, which the label model is fitted on
      wild += std::string(i ? "," : "") + R"({"dialog": [{"sender_class": "Human", "text": "hi"},)" +
              R"( {"sender_class": "Bot", "text": "i like cats", "evaluation_score": 1},)" +
              R"( {"sender_class": "Human", "text": "me too!"}]})";
    }
    std::ofstream(dir.str("wild.json")) << wild << "]";
    const std::string line = std::string(SELFFEED_BINARY) + " --log-level warn lf-report --labelled " +
                             dir.str("wild.json") + " --store " + store_dir + " > " + dir.str("lf.md") + " 2>&1";
    ASSERT_EQ(std::system(line.c_str()), 0) << testing::read_file(dir.str("lf.md"));
    const std::string report = testing::read_file(dir.str("lf.md"));
    EXPECT_NE(report.find("coverage on the 2 replies the server judged"), std::string::npos) << report;
    // A function's row of the table: it ends with its coverage there and its agreement
    // with the thumbs.
    auto row = [&](const std::string& function) {
      const std::size_t at = report.find("| " + function + " |");
      return at == std::string::npos ? std::string() : report.substr(at, report.find('\n', at) - at);
    };
    // paper_regex fires on the complaint, whose answer got the thumbs down; positive_reaction
    // on "nice .", whose answer nobody rated.
    EXPECT_TRUE(row("paper_regex").ends_with("| 0.500 | 1.000 (1) |")) << report;
    EXPECT_TRUE(row("positive_reaction").ends_with("| 0.500 | - (0) |")) << report;
  }

  auto opened = store::Store::open({.path = store_dir});
  ASSERT_OK(opened);
  store::Store& store = **opened;

  const auto hb = examples_of(store, ExampleKind::kHB);
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(hb[0].context, "__p2__ " + msg1 + " __p1__ " + bot1);  // the two utterances before the reply
  EXPECT_EQ(hb[0].target, msg2);
  EXPECT_EQ(hb[0].satisfaction, 1.0);
  EXPECT_EQ(hb[0].user_id, "alice");
  EXPECT_EQ(hb[0].conversation_id, conversation_id);
  EXPECT_EQ(hb[0].turn_index, 2);
  EXPECT_EQ(hb[0].model_version, "toy-v1");

  const auto fb = examples_of(store, ExampleKind::kFB);
  ASSERT_EQ(fb.size(), 1u);
  // Up to and including the user utterance the bot answered badly (the paper's FB context).
  EXPECT_EQ(fb[0].context, "__p2__ " + bot1 + " __p1__ " + msg2);
  EXPECT_EQ(fb[0].target, msg4);
  EXPECT_EQ(fb[0].turn_index, 6);
  EXPECT_EQ(fb[0].user_id, "alice");

  const auto st = examples_of(store, ExampleKind::kST);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].target, "0");
  EXPECT_EQ(st[0].context, "__p2__ " + bot2 + " __p1__ " + msg3);  // the rated turn and the user's answer to it
  EXPECT_EQ(st[0].turn_index, 3);
  EXPECT_EQ(st[0].source, "thumbs");

  auto turns = store.get_turns(conversation_id);
  ASSERT_OK(turns);
  ASSERT_EQ(turns->size(), 10u);
  EXPECT_EQ((*turns)[4].text, msg3);
  EXPECT_EQ((*turns)[4].satisfaction, 0.0);
  EXPECT_EQ((*turns)[5].phase, Phase::kFeedbackRequested);
  EXPECT_EQ((*turns)[6].phase, Phase::kFeedbackRequested) << "the feedback arrives while it is requested";
  EXPECT_EQ((*turns)[7].phase, Phase::kNewTopicRequested);
  EXPECT_EQ((*turns)[9].speaker, Speaker::kBot);

  // After the thanks the history was reset: only the new topic remains.
  auto conversation = store.get_conversation(conversation_id);
  ASSERT_OK(conversation);
  auto state = feedback::State::parse(conversation->state);
  ASSERT_OK(state);
  EXPECT_EQ(state->phase, Phase::kNormal);
  EXPECT_EQ(state->history, (std::vector<std::string>{msg5, bot5}));
}

// A user who says "learn": false is answered like everyone else, but never judged, never
// asked for feedback, and nothing of the conversation becomes training data; the choice is
// stored with the conversation and can be changed by a later hello.
TEST(ChatTest, AConversationThatDoesNotTeachTheBotIsAnsweredAndHarvestsNothing) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  const std::string complaint = "what ? you are not making any sense";  // a paper regex: unsatisfied
  std::string conversation_id;
  {
    auto server = testing::start_server(dir.str(), store_dir, {});
    ASSERT_TRUE(server);
    auto client = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(client);
    json welcome = testing::request(**client, {{"type", "hello"}, {"user_id", "dora"}, {"learn", false}});
    ASSERT_EQ(welcome["type"], "welcome") << welcome.dump();
    EXPECT_EQ(welcome["learn"], false);
    conversation_id = welcome["conversation_id"];
    for (const std::string text : {"hello ! what colour is your car ?", "nice . where is your boat ?", complaint.c_str()}) {
      json r = testing::request(**client, {{"type", "message"}, {"text", text}});
      ASSERT_EQ(r["type"], "reply") << r.dump();
      EXPECT_EQ(r["kind"], "answer") << "never asks for feedback";
      EXPECT_TRUE(r["satisfaction"].is_null()) << "never judged";
      EXPECT_EQ(r["harvested"], json::array());
    }
    json rated = testing::request(**client, {{"type", "rate"}, {"turn", 1}, {"value", "down"}});
    EXPECT_EQ(rated["code"], "not_learning") << rated.dump();
    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_turns_not_learning_total 3"), std::string::npos) << metrics->body;
    json bad = testing::request(**client, {{"type", "hello"}, {"learn", "no"}});
    EXPECT_EQ(bad["code"], "invalid_message") << bad.dump();
    (*client)->close();

    // Resumed without saying: still off. Then switched on: the next complaint is heard.
    auto again = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(again);
    json resumed = testing::request(**again, {{"type", "hello"}, {"conversation_id", conversation_id}});
    EXPECT_EQ(resumed["learn"], false) << resumed.dump();
    json on = testing::request(**again, {{"type", "hello"}, {"conversation_id", conversation_id}, {"learn", true}});
    EXPECT_EQ(on["learn"], true) << on.dump();
    json asked = testing::request(**again, {{"type", "message"}, {"text", complaint}});
    EXPECT_EQ(asked["kind"], "feedback_request") << asked.dump();

    // The terminal client's --no-learn: said at connect, and its thumbs are refused.
    std::istringstream lines("hello ! what colour is your car ?\n/bad\n/quit\n");
    std::ostringstream shown;
    EXPECT_EQ(clients::run_terminal_chat(server->ws_url(), {.user_id = "erin", .learn = false}, lines, shown), 0);
    EXPECT_NE(shown.str().find("learning off"), std::string::npos) << shown.str();
    EXPECT_NE(shown.str().find("not_learning"), std::string::npos) << shown.str();
    EXPECT_EQ(server->stop(SIGTERM), 0);
  }
  auto opened = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(opened);
  for (ExampleKind kind : kAllExampleKinds) EXPECT_TRUE(examples_of(**opened, kind).empty()) << example_kind_name(kind);
  auto turns = (*opened)->get_turns(conversation_id);
  ASSERT_OK(turns);
  EXPECT_EQ(turns->size(), 8u) << "the conversation itself is kept, to resume it";
}

// One client, however many conversations or user ids it opens, teaches the bot at most
// --max-examples-per-address-per-hour examples an hour; past it, it is answered without
// being judged, and other addresses still teach.
TEST(ChatTest, OneAddressTeachesAtMostItsHourlyBudget) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"), {"--max-examples-per-address-per-hour", "2"});
  ASSERT_TRUE(server);
  auto from = [&](const char* address, const char* user) {
    auto client = clients::WsClient::connect(server->ws_url(), {.local_address = address});
    EXPECT_OK(client);
    EXPECT_EQ(testing::request(**client, {{"type", "hello"}, {"user_id", user}})["type"], "welcome");
    return std::move(*client);
  };
  auto say = [](clients::WsClient& ws, const std::string& text) {
    json r = testing::request(ws, {{"type", "message"}, {"text", text}});
    EXPECT_EQ(r["type"], "reply") << r.dump();
    return r;
  };
  const std::string opening = "hello ! what colour is your car ?", happy = "nice . where is your boat ?";
  const std::string complaint = "what ? you are not making any sense";  // a paper regex: unsatisfied

  // A feedback request made while the address still had budget...
  auto asked = from("127.0.0.2", "mallory");
  say(*asked, opening);
  EXPECT_EQ(say(*asked, complaint)["kind"], "feedback_request");
  // ...then the same address spends its budget under another user id: an HB and a thumbs down.
  auto other = from("127.0.0.2", "mallory-2");
  say(*other, opening);
  EXPECT_EQ(say(*other, happy)["harvested"], json::array({"HB"}));
  EXPECT_EQ(testing::request(*other, {{"type", "rate"}, {"turn", 1}, {"value", "down"}})["type"], "rated");
  // The answer to the request is still kept: the user was asked.
  EXPECT_EQ(say(*asked, "you could have said my car is red .")["harvested"], json::array({"FB"}));
  // Nothing more from this address: not judged, not asked, thumbs refused.
  json not_judged = say(*other, complaint);
  EXPECT_EQ(not_judged["kind"], "answer");
  EXPECT_TRUE(not_judged["satisfaction"].is_null()) << not_judged.dump();
  EXPECT_EQ(not_judged["harvested"], json::array());
  EXPECT_EQ(testing::request(*other, {{"type", "rate"}, {"turn", 3}, {"value", "up"}})["code"], "teaching_budget_spent");
  auto third = from("127.0.0.2", "mallory-3");
  say(*third, opening);
  EXPECT_EQ(say(*third, happy)["harvested"], json::array()) << "a new user id does not bring new budget";

  auto elsewhere = from("127.0.0.3", "nina");
  say(*elsewhere, opening);
  EXPECT_EQ(say(*elsewhere, happy)["harvested"], json::array({"HB"})) << "another address still teaches";

  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_over_teaching_budget_total 4"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("selffeed_harvested_examples_total{kind=\"HB\"} 2"), std::string::npos);
}

// serve --max-feedback-requests: one conversation is asked at most that often, across a new
// topic and a reconnect; past it, a complaint is answered and learned from not at all.
TEST(ChatTest, AConversationIsAskedForFeedbackAtMostTheLimit) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"), {"--max-feedback-requests", "1"});
  ASSERT_TRUE(server);
  const std::string complaint = "what ? you are not making any sense";  // a paper regex: unsatisfied
  auto open = [&](const std::string& conversation) {
    auto client = clients::WsClient::connect(server->ws_url());
    EXPECT_OK(client);
    const json hello = {{"type", "hello"}, {"user_id", "ann"}, {"conversation_id", conversation}};
    EXPECT_EQ(testing::request(**client, hello)["type"], "welcome");
    return std::move(*client);
  };
  auto say = [](clients::WsClient& ws, const std::string& text) {
    json r = testing::request(ws, {{"type", "message"}, {"text", text}});
    EXPECT_EQ(r["type"], "reply") << r.dump();
    return r;
  };
  {
    auto ws = open("ann-1");
    say(*ws, "hello ! what colour is your car ?");
    EXPECT_EQ(say(*ws, complaint)["kind"], "feedback_request");
    EXPECT_EQ(say(*ws, "you could have said my car is red .")["harvested"], json::array({"FB"}));
    say(*ws, "let us talk about boats .");
    const json held = say(*ws, complaint);
    EXPECT_EQ(held["kind"], "answer") << held.dump();
    EXPECT_LT(held["satisfaction"].get<double>(), 0.5) << "judged, and found wanting";
    EXPECT_EQ(held["harvested"], json::array()) << "a complaint is no imitation target";
  }
  {
    auto again = open("ann-1");  // the count is part of the stored conversation
    EXPECT_EQ(say(*again, complaint)["kind"], "answer");
  }
  auto fresh = open("ann-2");
  say(*fresh, "hello ! what colour is your car ?");
  EXPECT_EQ(say(*fresh, complaint)["kind"], "feedback_request") << "a new conversation may be asked";

  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_feedback_requests_total 2"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("selffeed_feedback_requests_held_back_total 2"), std::string::npos) << metrics->body;
}

// serve --rating-request-share (here every judged answer) and --max-rating-requests (1 by
// default): the bot answers and asks the user to rate the answer they replied to, once per
// conversation; the thumbs become an ST example of that very reply.
TEST(ChatTest, TheBotAsksToRateTheAnswerAJudgedReplyRepliedToOncePerConversation) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  const std::string opener = "hello ! tell me about your car .", judged = "hm";
  const std::string twice = "i really like long drives along the coast in the summer";
  std::string ann_conversation;
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--rating-request-share", "1", "--admin-token", "secret"});
    ASSERT_TRUE(server);
    auto say = [](clients::WsClient& ws, const std::string& text) {
      json r = testing::request(ws, {{"type", "message"}, {"text", text}});
      EXPECT_EQ(r["type"], "reply") << r.dump();
      return r;
    };
    auto ws = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(ws);
    const json welcome = testing::request(**ws, {{"type", "hello"}, {"user_id", "ann"}});
    ASSERT_EQ(welcome["type"], "welcome");
    ann_conversation = welcome["conversation_id"];
    EXPECT_TRUE(say(**ws, opener)["rating_request"].is_null()) << "nothing judged";
    const json asked = say(**ws, judged);
    EXPECT_EQ(asked["kind"], "answer") << asked.dump();
    EXPECT_EQ(asked["rating_request"], 1) << "the bot's first answer, which 'hm' replied to";
    EXPECT_EQ(asked["harvested"], json::array({"HB"})) << "harvested as without the request";
    EXPECT_TRUE(say(**ws, twice)["rating_request"].is_null());
    const json again = say(**ws, twice);
    EXPECT_TRUE(again["rating_request"].is_null()) << "this conversation was asked once: " << again.dump();
    const json rated = testing::request(**ws, {{"type", "rate"}, {"turn", 1}, {"value", "down"}});
    ASSERT_EQ(rated["type"], "rated") << rated.dump();

    std::string bobs_conversation;
    {
      auto other = clients::WsClient::connect(server->ws_url());
      ASSERT_OK(other);
      const json bobs_welcome = testing::request(**other, {{"type", "hello"}, {"user_id", "bob"}});
      ASSERT_EQ(bobs_welcome["type"], "welcome");
      bobs_conversation = bobs_welcome["conversation_id"];
      say(**other, opener);
      const json complained = say(**other, "what ? you are not making any sense");  // a paper regex
      EXPECT_EQ(complained["kind"], "feedback_request") << complained.dump();
      EXPECT_EQ(complained["rating_request"], 1) << "another conversation is asked too, beside a feedback request";
    }
    // Bob rates the answer later, from another connection: still a rating the bot asked for.
    auto later = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(later);
    const json resumed =
        testing::request(**later, {{"type", "hello"}, {"user_id", "bob"}, {"conversation_id", bobs_conversation}});
    ASSERT_EQ(resumed["type"], "welcome");
    ASSERT_EQ(resumed["turns"].size(), 4u);
    EXPECT_EQ(resumed["turns"][3]["rating_request"], 1) << "the request, for a client that resumes: " << resumed.dump();
    EXPECT_FALSE(resumed["turns"][1].contains("rating_request"));
    ASSERT_EQ(testing::request(**later, {{"type", "rate"}, {"turn", 1}, {"value", "up"}})["type"], "rated");

    // The terminal client shows the request, rates that answer, says what it could have been,
    // and deletes the conversation.
    std::istringstream lines(
        "hello ! tell me about your car .\nhm\n/bad repetitive\n/instead my car is red .\n/delete\n/quit\n");
    std::ostringstream shown;
    EXPECT_EQ(clients::run_terminal_chat(server->ws_url(), {.user_id = "cat"}, lines, shown), 0);
    for (const std::string expected : {"(the bot asks how its answer before this one was",
                                       "(rating of turn 1 stored, because repetitive)",
                                       "(what the bot could have said at turn 1 stored)",
                                       "(conversation deleted: 4 turns and 3 training examples are gone"}) {
      EXPECT_NE(shown.str().find(expected), std::string::npos) << expected << " in:\n" << shown.str();
    }
    EXPECT_NE(shown.str().rfind("connected: conversation"), shown.str().find("connected: conversation"))
        << "a new conversation after the deletion:\n" << shown.str();

    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_rating_requests_total 3"), std::string::npos) << metrics->body;
    EXPECT_NE(metrics->body.find("selffeed_requested_ratings_total 3"), std::string::npos) << metrics->body;
    auto alerts = clients::http_request("GET", server->http_url("/admin/alerts"), "", "Bearer secret");
    ASSERT_OK(alerts);
    const json requested = json::parse(alerts->body)["thumbs"]["requested"];
    EXPECT_EQ(requested["up"], 1) << "bob's";
    EXPECT_EQ(requested["down"], 2) << "ann's and the terminal user's";
  }
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--rating-request-share", "1", "--max-rating-requests", "0"});
    ASSERT_TRUE(server);
    auto ws = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(ws);
    ASSERT_EQ(testing::request(**ws, {{"type", "hello"}})["type"], "welcome");
    testing::request(**ws, {{"type", "message"}, {"text", opener}});
    const json r = testing::request(**ws, {{"type", "message"}, {"text", judged}});
    EXPECT_TRUE(r["rating_request"].is_null()) << r.dump();
  }
  auto store = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  const std::vector<Example> thumbs = examples_of(**store, ExampleKind::kST);
  ASSERT_EQ(thumbs.size(), 2u) << "ann's and bob's";
  const Example& anns = thumbs[0].user_id == "ann" ? thumbs[0] : thumbs[1];
  EXPECT_EQ(anns.target, "0");
  EXPECT_NE(anns.context.find("__p1__ " + judged), std::string::npos)
      << "the rated answer with the reply that was judged: " << anns.context;
  // The request is part of the transcript: the bot's reply to "hm" named the answer.
  auto turns = (*store)->get_turns(ann_conversation, 0);
  ASSERT_OK(turns);
  ASSERT_GE(turns->size(), 6u);
  EXPECT_EQ((*turns)[3].rating_request, 1u);
  EXPECT_EQ((*turns)[5].rating_request, std::nullopt);
}

// A user rates an answer, then rates it again the other way: every rating is kept as an ST
// example, but the later one is the rating that stands, once, wherever it is read.
TEST(ChatTest, AUserWhoChangesTheirMindAboutAnAnswerCountsOnceWithTheLaterRating) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  std::string conversation;
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--rating-request-share", "1", "--admin-token", "secret"});
    ASSERT_TRUE(server);
    auto ws = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(ws);
    const json welcome = testing::request(**ws, {{"type", "hello"}, {"user_id", "ann"}});
    ASSERT_EQ(welcome["type"], "welcome");
    conversation = welcome["conversation_id"];
    testing::request(**ws, {{"type", "message"}, {"text", "hello ! tell me about your car ."}});
    ASSERT_EQ(testing::request(**ws, {{"type", "message"}, {"text", "hm"}})["rating_request"], 1);
    for (const char* value : {"up", "down", "down"}) {
      const json rated = testing::request(**ws, {{"type", "rate"}, {"turn", 1}, {"value", value}});
      ASSERT_EQ(rated["type"], "rated") << rated.dump();
    }
    // The answer to "hm", rated before the user replies to it.
    ASSERT_EQ(testing::request(**ws, {{"type", "rate"}, {"turn", 3}, {"value", "down"}})["type"], "rated");

    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_requested_ratings_total 1"), std::string::npos) << metrics->body;
    auto alerts = clients::http_request("GET", server->http_url("/admin/alerts"), "", "Bearer secret");
    ASSERT_OK(alerts);
    const json thumbs = json::parse(alerts->body)["thumbs"];
    EXPECT_EQ(thumbs["up"], 0) << thumbs.dump();
    EXPECT_EQ(thumbs["down"], 1) << thumbs.dump();
    EXPECT_EQ(thumbs["requested"]["down"], 1) << thumbs.dump();
    auto report = clients::http_request("GET", server->http_url("/admin/models/report"), "", "Bearer secret");
    ASSERT_OK(report);
    const json version = json::parse(report->body)["versions"][0];
    EXPECT_EQ(version["thumbs_up"], 0) << version.dump();
    EXPECT_EQ(version["thumbs_down_per_answer"]["count"], 2) << "turns 1 and 3: " << version.dump();
    EXPECT_EQ(version["requested_thumbs_down"]["of"], 1) << version.dump();

    // Another connection (another device) sees the ratings that stand; when the user replies
    // there to the answer rated before, the alerts take that rating too.
    auto other = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(other);
    const json resumed =
        testing::request(**other, {{"type", "hello"}, {"user_id", "ann"}, {"conversation_id", conversation}});
    ASSERT_EQ(resumed["type"], "welcome");
    EXPECT_EQ(resumed["turns"][1]["rating"], "down") << resumed.dump();
    EXPECT_EQ(resumed["turns"][3]["rating"], "down") << resumed.dump();
    EXPECT_FALSE(resumed["turns"][2].contains("rating")) << "the user's turn";
    ASSERT_EQ(testing::request(**other, {{"type", "message"}, {"text", "ok"}})["type"], "reply");
    alerts = clients::http_request("GET", server->http_url("/admin/alerts"), "", "Bearer secret");
    ASSERT_OK(alerts);
    EXPECT_EQ(json::parse(alerts->body)["thumbs"]["down"], 2) << alerts->body;
  }
  auto store = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  EXPECT_EQ(examples_of(**store, ExampleKind::kST).size(), 4u) << "every rating given is kept";
  auto turns = (*store)->get_turns(conversation, 1);
  ASSERT_OK(turns);
  ASSERT_FALSE(turns->empty());
  EXPECT_EQ(turns->front().thumbs_up, false);
  std::ostringstream transcripts;
  ASSERT_OK((*store)->export_transcripts(transcripts));
  EXPECT_EQ(json::parse(transcripts.str())["turns"][1]["rating"], "down") << transcripts.str();
}

// A user says what the bot could have said instead of one of its answers: an FB example
// in the context the answer was chosen in, as after a feedback request; said again, the
// later suggestion is the one the turn keeps. The bot's requests take none.
TEST(ChatTest, AUserSaysWhatTheBotCouldHaveSaidInsteadOfAnAnswer) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  std::string conversation;
  std::vector<std::uint64_t> seqs;
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
    ASSERT_TRUE(server);
    auto ws = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(ws);
    const json welcome = testing::request(**ws, {{"type", "hello"}, {"user_id", "ann"}});
    ASSERT_EQ(welcome["type"], "welcome");
    conversation = welcome["conversation_id"];
    auto say = [&](const std::string& text) {
      json r = testing::request(**ws, {{"type", "message"}, {"text", text}});
      EXPECT_EQ(r["type"], "reply") << r.dump();
      return r;
    };
    auto suggest = [&](std::int64_t turn, const std::string& text) {
      return testing::request(**ws, {{"type", "suggest"}, {"turn", turn}, {"text", text}, {"id", "s"}});
    };
    say("hello ! tell me about your car .");                                     // turns 0, 1
    ASSERT_EQ(say("hm")["turn"], 3);                                               // 2, 3
    EXPECT_EQ(say("what ? you are not making any sense")["kind"], "feedback_request");  // 4, 5
    EXPECT_EQ(say("you could have said my car is red .")["kind"], "thanks_new_topic");  // 6, 7
    ASSERT_EQ(say("let us talk about kites .")["turn"], 9);                      // 8, 9

    for (const std::string text : {"i drive a blue car .", "my car is blue ."}) {
      const json suggested = suggest(3, text);
      ASSERT_EQ(suggested["type"], "suggested") << suggested.dump();
      EXPECT_EQ(suggested["turn"], 3);
      EXPECT_EQ(suggested["id"], "s");
      seqs.push_back(suggested["example_seq"]);
    }
    ASSERT_EQ(suggest(9, "i love kites !")["type"], "suggested");
    EXPECT_EQ(suggest(5, "no")["code"], "not_an_answer") << "the feedback request";
    EXPECT_EQ(suggest(2, "no")["code"], "unknown_turn") << "the user's own turn";
    EXPECT_EQ(suggest(10, "no")["code"], "unknown_turn") << "not there yet";

    auto other = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(other);
    const json resumed =
        testing::request(**other, {{"type", "hello"}, {"user_id", "ann"}, {"conversation_id", conversation}});
    ASSERT_EQ(resumed["type"], "welcome");
    EXPECT_EQ(resumed["turns"][3]["suggestion"], "my car is blue .") << resumed.dump();
    EXPECT_FALSE(resumed["turns"][1].contains("suggestion"));

    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_suggestions_total 3"), std::string::npos) << metrics->body;
    auto report = clients::http_request("GET", server->http_url("/admin/models/report"), "", "Bearer secret");
    ASSERT_OK(report);
    const json suggested = json::parse(report->body)["versions"][0]["suggested_per_answer"];
    EXPECT_EQ(suggested["count"], 2) << "answers 3 and 9, once each: " << suggested.dump();
    EXPECT_EQ(suggested["of"], 3) << "answers 1, 3 and 9";

    // The preference pairs over HTTP, as `store pairs` writes them below.
    for (const auto& [query, lines] : {std::pair{"?user=ann", 3}, std::pair{"?user=bob", 0}}) {
      auto pairs = clients::http_request("GET", server->http_url(std::string("/admin/pairs") + query), "", "Bearer secret");
      ASSERT_OK(pairs);
      EXPECT_EQ(pairs->status, 200) << pairs->body;
      EXPECT_EQ(std::count(pairs->body.begin(), pairs->body.end(), '\n'), lines) << query << ": " << pairs->body;
    }
  }
  auto store = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  auto turns = (*store)->get_turns(conversation, 0);
  ASSERT_OK(turns);
  ASSERT_EQ(turns->size(), 10u);
  std::vector<Example> suggestions;
  for (const Example& e : examples_of(**store, ExampleKind::kFB)) {
    if (e.source == "suggestion") suggestions.push_back(e);
  }
  ASSERT_EQ(suggestions.size(), 3u) << "every suggestion is kept";
  EXPECT_EQ(suggestions[0].seq, seqs[0]);
  EXPECT_EQ(suggestions[1].seq, seqs[1]);
  const std::vector<std::string> answer_3 = {(*turns)[1].text, "hm"};
  EXPECT_EQ(suggestions[1].context, format_context(answer_3)) << "the answer's context, as it was chosen";
  EXPECT_EQ(suggestions[1].target, "my car is blue .");
  EXPECT_EQ(suggestions[1].turn_index, 3);
  EXPECT_EQ(suggestions[1].user_id, "ann");
  EXPECT_EQ(suggestions[2].context, format_context(std::vector<std::string>{"let us talk about kites ."}))
      << "a new topic started after the thanks";
  EXPECT_EQ((*turns)[3].suggestion, "my car is blue .");
  EXPECT_EQ((*turns)[9].suggestion, "i love kites !");

  // As preference pairs: answer 3 twice (the feedback its request got, the latest
  // suggestion), answer 9 once.
  const std::string out = dir.str("pairs.jsonl");
  const std::string line = std::string(SELFFEED_BINARY) + " --log-level warn store pairs --store " + store_dir +
                           " --out " + out + " 2> " + dir.str("pairs.log");
  ASSERT_EQ(std::system(line.c_str()), 0) << testing::read_file(dir.str("pairs.log"));
  std::istringstream lines(testing::read_file(out));
  std::vector<json> pairs;
  for (std::string l; std::getline(lines, l);) pairs.push_back(json::parse(l));
  ASSERT_EQ(pairs.size(), 3u) << testing::read_file(out);
  EXPECT_EQ(pairs[0]["turn"], 3);
  EXPECT_EQ(pairs[0]["source"], "feedback");
  EXPECT_EQ(pairs[0]["chosen"], "you could have said my car is red .");
  EXPECT_EQ(pairs[0]["rejected"], (*turns)[3].text);
  EXPECT_EQ(pairs[0]["context"], format_context(answer_3));
  EXPECT_EQ(pairs[0]["user_id"], "ann");
  EXPECT_EQ(pairs[1]["source"], "suggestion");
  EXPECT_EQ(pairs[1]["chosen"], "my car is blue .");
  EXPECT_EQ(pairs[2]["turn"], 9);
  EXPECT_EQ(pairs[2]["chosen"], "i love kites !");
  EXPECT_EQ(pairs[2]["rejected"], (*turns)[9].text);
}

// A reset leaves no turn of its own, but the transcript keeps where the topic ended: what
// the user says the next answer could have been is kept in the context that answer was
// chosen in, which starts after the reset.
TEST(ChatTest, ASuggestionAfterANewTopicHasTheNewTopicsContext) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  std::string conversation;
  {
    auto server = testing::start_server(dir.str(), store_dir, {});
    ASSERT_TRUE(server);
    auto ws = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(ws);
    const json welcome = testing::request(**ws, {{"type", "hello"}, {"user_id", "ann"}});
    conversation = welcome["conversation_id"];
    ASSERT_EQ(testing::request(**ws, {{"type", "message"}, {"text", "hello ! tell me about your car ."}})["turn"], 1);
    ASSERT_EQ(testing::request(**ws, {{"type", "reset"}})["type"], "reset_done");
    ASSERT_EQ(testing::request(**ws, {{"type", "reset"}})["type"], "reset_done") << "twice: the same end";
    ASSERT_EQ(testing::request(**ws, {{"type", "message"}, {"text", "do you like dogs ?"}})["turn"], 3);
    ASSERT_EQ(testing::request(**ws, {{"type", "suggest"}, {"turn", 3}, {"text", "i love dogs ."}})["type"],
              "suggested");
  }
  auto store = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  auto turns = (*store)->get_turns(conversation, 0);
  ASSERT_OK(turns);
  ASSERT_EQ(turns->size(), 4u);
  EXPECT_TRUE((*turns)[1].ends_topic) << "the bot's answer before the reset";
  EXPECT_FALSE((*turns)[3].ends_topic);
  std::vector<Example> suggestions;
  for (const Example& e : examples_of(**store, ExampleKind::kFB)) suggestions.push_back(e);
  ASSERT_EQ(suggestions.size(), 1u);
  EXPECT_EQ(suggestions[0].context, "__p1__ do you like dogs ?");
}

// A thumbs down may say why (rate's "reason"): the reason of the rating that stands is kept
// with the answer, shown on resuming, counted by the models report and the metrics, and
// carried by the preference pairs.
TEST(ChatTest, AUserSaysWhyTheyRatedAnAnswerDown) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  std::string conversation;
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
    ASSERT_TRUE(server);
    auto ws = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(ws);
    const json welcome = testing::request(**ws, {{"type", "hello"}, {"user_id", "ann"}});
    ASSERT_EQ(welcome["type"], "welcome");
    conversation = welcome["conversation_id"];
    for (const std::string text : {"hello ! tell me about your car .", "nice .", "and your dog ?"}) {
      ASSERT_EQ(testing::request(**ws, {{"type", "message"}, {"text", text}})["type"], "reply");
    }  // answers 1, 3, 5
    auto rate = [&](std::int64_t turn, const std::string& value, json reason) {
      json m = {{"type", "rate"}, {"turn", turn}, {"value", value}};
      if (!reason.is_null()) m["reason"] = std::move(reason);
      return testing::request(**ws, m);
    };
    const json rated = rate(1, "down", "repetitive");
    ASSERT_EQ(rated["type"], "rated") << rated.dump();
    EXPECT_EQ(rated["reason"], "repetitive");
    EXPECT_TRUE(rate(3, "down", nullptr)["reason"].is_null());
    const json unknown = rate(3, "down", "boring");
    EXPECT_EQ(unknown["code"], "invalid_message") << unknown.dump();
    EXPECT_NE(unknown["message"].get<std::string>().find("off_topic, nonsensical"), std::string::npos)
        << unknown.dump();
    EXPECT_EQ(rate(3, "down", 4)["code"], "invalid_message");
    EXPECT_EQ(rate(5, "up", "other")["code"], "invalid_message") << "a reason goes with a thumbs down";
    // A changed mind: the later reason stands, and a thumbs up takes the reason away.
    ASSERT_EQ(rate(1, "down", "off_topic")["reason"], "off_topic");
    ASSERT_EQ(rate(3, "down", "inappropriate")["type"], "rated");
    ASSERT_EQ(rate(5, "down", "other")["type"], "rated");
    ASSERT_EQ(rate(5, "up", nullptr)["type"], "rated");
    ASSERT_EQ(testing::request(**ws, {{"type", "suggest"}, {"turn", 1}, {"text", "my car is red ."}})["type"],
              "suggested");

    auto other = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(other);
    const json resumed =
        testing::request(**other, {{"type", "hello"}, {"user_id", "ann"}, {"conversation_id", conversation}});
    ASSERT_EQ(resumed["type"], "welcome");
    EXPECT_EQ(resumed["turns"][1]["reason"], "off_topic") << resumed.dump();
    EXPECT_EQ(resumed["turns"][3]["reason"], "inappropriate");
    EXPECT_EQ(resumed["turns"][5]["rating"], "up");
    EXPECT_FALSE(resumed["turns"][5].contains("reason"));

    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    for (const std::string line : {"selffeed_dislike_reasons_total{reason=\"off_topic\"} 1",
                                   "selffeed_dislike_reasons_total{reason=\"repetitive\"} 1",
                                   "selffeed_dislike_reasons_total{reason=\"nonsensical\"} 0"}) {
      EXPECT_NE(metrics->body.find(line), std::string::npos) << line << " in:\n" << metrics->body;
    }
    auto report = clients::http_request("GET", server->http_url("/admin/models/report"), "", "Bearer secret");
    ASSERT_OK(report);
    const json version = json::parse(report->body)["versions"][0];
    EXPECT_EQ(version["dislike_reasons"], json({{"off_topic", 1}, {"inappropriate", 1}})) << version.dump();
    EXPECT_EQ(version["thumbs_down_per_answer"]["count"], 2);
    auto pairs = clients::http_request("GET", server->http_url("/admin/pairs"), "", "Bearer secret");
    ASSERT_OK(pairs);
    const json pair = json::parse(pairs->body);
    EXPECT_EQ(pair["turn"], 1) << pairs->body;
    EXPECT_EQ(pair["reason"], "off_topic");
  }
  auto store = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  auto turns = (*store)->get_turns(conversation, 0);
  ASSERT_OK(turns);
  ASSERT_EQ(turns->size(), 6u);
  EXPECT_EQ((*turns)[1].dislike_reason, DislikeReason::kOffTopic);
  EXPECT_EQ((*turns)[3].dislike_reason, DislikeReason::kInappropriate);
  EXPECT_EQ((*turns)[5].dislike_reason, std::nullopt);
  EXPECT_EQ((*turns)[5].thumbs_up, true);
  EXPECT_EQ(examples_of(**store, ExampleKind::kST).size(), 6u) << "every rating given is kept";
}

// Users report an answer as inappropriate; the operator finds it in the review queue and
// withdraws it: no version offers it again, across restarts, until it is given back.
TEST(ChatTest, TheOperatorWithdrawsAReplyUsersReportedAndTheBotStopsSayingIt) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  const std::string opener = "hello ! tell me about your car .";
  // A new conversation of `user` that says the opener: the bot's answer.
  auto answer_of = [&](clients::LocalServer& server, const std::string& user, const char* reason) {
    auto ws = clients::WsClient::connect(server.ws_url());
    EXPECT_OK(ws);
    if (!ws.ok()) return std::string();
    EXPECT_EQ(testing::request(**ws, {{"type", "hello"}, {"user_id", user}})["type"], "welcome");
    const json reply = testing::request(**ws, {{"type", "message"}, {"text", opener}});
    EXPECT_EQ(reply["turn"], 1) << reply.dump();
    if (reason) {
      EXPECT_EQ(testing::request(**ws, {{"type", "rate"}, {"turn", 1}, {"value", "down"}, {"reason", reason}})["type"],
                "rated");
    }
    return reply.value("text", "");
  };
  auto admin = [&](clients::LocalServer& server, const std::string& method, const std::string& path,
                   const std::string& body = "") {
    auto response = clients::http_request(method, server.http_url(path), body, "Bearer secret");
    EXPECT_OK(response);
    return response.ok() ? std::pair{response->status, json::parse(response->body, nullptr, false)}
                         : std::pair{0, json()};
  };
  std::string reported;
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret", "--reported-alert-users", "2"});
    ASSERT_TRUE(server);
    reported = answer_of(*server, "ann", "inappropriate");
    EXPECT_TRUE(admin(*server, "GET", "/admin/alerts").second["alerts"].empty()) << "one user reported it";
    ASSERT_FALSE(reported.empty());
    ASSERT_EQ(answer_of(*server, "bob", "inappropriate"), reported) << "the same context, the same answer";
    ASSERT_EQ(answer_of(*server, "bob", "other"), reported);
    const json alerts = admin(*server, "GET", "/admin/alerts").second["alerts"];
    ASSERT_EQ(alerts.size(), 1u) << alerts.dump();
    EXPECT_EQ(alerts[0]["alert"], "reply_reported_inappropriate");
    EXPECT_EQ(alerts[0]["subject"], reported);
    EXPECT_EQ(alerts[0]["now"], 2);

    auto [status, queue] = admin(*server, "GET", "/admin/replies/disliked?reason=inappropriate");
    ASSERT_EQ(status, 200) << queue.dump();
    ASSERT_EQ(queue["replies"].size(), 1u) << queue.dump();
    const json& entry = queue["replies"][0];
    EXPECT_EQ(entry["text"], reported);
    EXPECT_EQ(entry["thumbs_down"], 2);
    EXPECT_EQ(entry["users"], 2);
    EXPECT_EQ(entry["reasons"], json({{"inappropriate", 2}}));
    EXPECT_EQ(entry["withdrawn"], false);
    EXPECT_EQ(entry["from_pool"], true) << "the toy bundle has no persona";
    EXPECT_EQ(admin(*server, "GET", "/admin/replies/disliked").second["replies"][0]["thumbs_down"], 3) << "any reason";
    EXPECT_TRUE(admin(*server, "GET", "/admin/replies/disliked?min_users=3").second["replies"].empty());
    EXPECT_EQ(admin(*server, "GET", "/admin/replies/disliked?reason=boring").first, 400);
    EXPECT_EQ(admin(*server, "GET", "/admin/replies/disliked?min_users=many").first, 400);

    EXPECT_EQ(admin(*server, "POST", "/admin/replies/withdraw", "{}").first, 400);
    auto [withdrew, done] = admin(*server, "POST", "/admin/replies/withdraw", json({{"text", reported}}).dump());
    ASSERT_EQ(withdrew, 200) << done.dump();
    EXPECT_EQ(done["changed"], true);
    EXPECT_EQ(done["in_live_pool"], true);
    EXPECT_GE(done["live_replies_withdrawn"], 1);
    EXPECT_EQ(admin(*server, "POST", "/admin/replies/withdraw", json({{"text", reported}}).dump()).second["changed"],
              false);
    EXPECT_TRUE(admin(*server, "GET", "/admin/alerts").second["alerts"].empty()) << "withdrawn: reviewed";
    const std::string instead = answer_of(*server, "cy", nullptr);
    EXPECT_FALSE(instead.empty());
    EXPECT_NE(instead, reported);
    // A user id with a space and a slash, as the operator's page sends it: URL-encoded.
    answer_of(*server, "cy / 2", nullptr);
    auto [deleted, gone] = admin(*server, "DELETE", "/admin/users/cy%20%2F%202");
    EXPECT_EQ(deleted, 200) << gone.dump();
    EXPECT_EQ(gone["user_id"], "cy / 2");
    EXPECT_EQ(gone["conversations"], 1);
  }
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret", "--reported-alert-users", "2"});
    ASSERT_TRUE(server);
    EXPECT_NE(answer_of(*server, "dan", nullptr), reported) << "withdrawn across a restart";
    EXPECT_EQ(admin(*server, "GET", "/admin/replies/disliked").second["replies"][0]["withdrawn"], true);
    auto [restored, done] = admin(*server, "POST", "/admin/replies/restore", json({{"text", reported}}).dump());
    ASSERT_EQ(restored, 200) << done.dump();
    EXPECT_EQ(done["changed"], true);
    EXPECT_EQ(answer_of(*server, "eve", nullptr), reported) << "given back";
    // Given back, it alerts again: the reports were read from the store at start.
    EXPECT_EQ(admin(*server, "GET", "/admin/alerts").second["alerts"].size(), 1u);
    // Ann's data deleted, her report goes with it: one user left, under the threshold.
    EXPECT_EQ(admin(*server, "DELETE", "/admin/users/ann").first, 200);
    EXPECT_TRUE(admin(*server, "GET", "/admin/alerts").second["alerts"].empty()) << "ann's report went with her";
  }
  // The same queue offline.
  const std::string line = std::string(SELFFEED_BINARY) + " --log-level warn store disliked --store " + store_dir +
                           " --reason inappropriate > " + dir.str("disliked.json") + " 2> " + dir.str("disliked.log");
  ASSERT_EQ(std::system(line.c_str()), 0) << testing::read_file(dir.str("disliked.log"));
  const json offline = json::parse(testing::read_file(dir.str("disliked.json")));
  ASSERT_EQ(offline["replies"].size(), 1u) << offline.dump();
  EXPECT_EQ(offline["replies"][0]["text"], reported);
  EXPECT_EQ(offline["replies"][0]["withdrawn"], false);
}

// A user takes a conversation back (delete_conversation): its turns and examples leave the
// store, their other conversations and everyone else's stay, and the server's counts follow
// once what the models learned from it was checked.
TEST(ChatTest, AUserDeletesAConversationAndNothingOfItIsKept) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  {
    auto server = testing::start_server(dir.str(), store_dir, {"--rating-request-share", "0"});
    ASSERT_TRUE(server);
    auto open = [&](const json& hello) {
      auto client = clients::WsClient::connect(server->ws_url());
      EXPECT_OK(client);
      EXPECT_EQ(testing::request(**client, hello)["type"], "welcome");
      return std::move(*client);
    };
    auto chat = [](clients::WsClient& ws) {
      EXPECT_EQ(testing::request(ws, {{"type", "message"}, {"text", "hello ! what colour is your car ?"}})["type"],
                "reply");
      const json liked = testing::request(ws, {{"type", "message"}, {"text", "nice . where is your boat ?"}});
      EXPECT_EQ(liked["harvested"], json::array({"HB"})) << liked.dump();
    };
    auto nobody = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(nobody);
    EXPECT_EQ(testing::request(**nobody, {{"type", "delete_conversation"}})["code"], "no_conversation");

    auto ann = open({{"type", "hello"}, {"user_id", "ann"}, {"conversation_id", "ann-1"}});
    chat(*ann);
    ASSERT_EQ(testing::request(*ann, {{"type", "rate"}, {"turn", 1}, {"value", "up"}})["type"], "rated");
    auto kept = open({{"type", "hello"}, {"user_id", "ann"}, {"conversation_id", "ann-2"}});
    chat(*kept);
    auto anonymous = open({{"type", "hello"}});
    chat(*anonymous);

    const json deleted = testing::request(*ann, {{"type", "delete_conversation"}, {"id", "d1"}});
    ASSERT_EQ(deleted["type"], "conversation_deleted") << deleted.dump();
    EXPECT_EQ(deleted["id"], "d1");
    EXPECT_EQ(deleted["conversation_id"], "ann-1");
    EXPECT_EQ(deleted["turns"], 4);
    EXPECT_EQ(deleted["examples"], 2) << "the HB example and the thumbs";
    EXPECT_EQ(testing::request(*ann, {{"type", "message"}, {"text", "hi"}})["code"], "no_conversation");
    const json again = testing::request(*ann, {{"type", "hello"}, {"user_id", "ann"}, {"conversation_id", "ann-1"}});
    EXPECT_EQ(again["resumed"], false) << again.dump();
    EXPECT_EQ(again["turns"], json::array());
    EXPECT_EQ(testing::request(*anonymous, {{"type", "delete_conversation"}})["examples"], 1);

    // /stats follows once the admin thread has checked the models.
    json harvested;
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto stats = clients::http_request("GET", server->http_url("/stats"));
      ASSERT_OK(stats);
      harvested = json::parse(stats->body)["harvested"];
      if (harvested["HB"] == 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(harvested, json({{"HB", 1}, {"FB", 0}, {"ST", 0}})) << "ann-2's reply alone";
    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_conversations_deleted_total 2"), std::string::npos) << metrics->body;
  }
  auto store = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  ASSERT_OK(store);
  const std::vector<Example> hb = examples_of(**store, ExampleKind::kHB);
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(hb[0].conversation_id, "ann-2");
  EXPECT_TRUE(examples_of(**store, ExampleKind::kST).empty());
  EXPECT_EQ((*store)->deleted_examples()->seqs.size(), 3u);
  EXPECT_FALSE(*(*store)->is_user_deleted("ann"));
}

// serve --max-feedback-requests-per-user: a user is asked at most that often in a day,
// whatever conversations they open, also after a restart (the store says when they were
// asked); other users and anonymous conversations are not held back by it.
TEST(ChatTest, AUserIsAskedForFeedbackAtMostTheLimitADayAcrossConversationsAndRestarts) {
  TempDir dir;
  const std::string complaint = "what ? you are not making any sense";  // a paper regex: unsatisfied
  auto say = [](clients::WsClient& ws, const std::string& text) {
    json r = testing::request(ws, {{"type", "message"}, {"text", text}});
    EXPECT_EQ(r["type"], "reply") << r.dump();
    return r;
  };
  // A new conversation of `user` (anonymous when empty): its first message, then a complaint.
  auto complain_in_new_conversation = [&](clients::LocalServer& server, const std::string& user) {
    auto client = clients::WsClient::connect(server.ws_url());
    EXPECT_OK(client);
    json hello = {{"type", "hello"}};
    if (!user.empty()) hello["user_id"] = user;
    EXPECT_EQ(testing::request(**client, hello)["type"], "welcome");
    say(**client, "hello ! what colour is your car ?");
    const json reply = say(**client, complaint);
    if (reply["kind"] == "feedback_request") {
      EXPECT_EQ(say(**client, "you could have said my car is red .")["harvested"], json::array({"FB"}));
    } else {
      EXPECT_EQ(reply["harvested"], json::array()) << "a complaint is no imitation target";
    }
    return reply["kind"].get<std::string>();
  };
  const std::vector<std::string> limit = {"--max-feedback-requests-per-user", "2"};
  {
    auto server = testing::start_server(dir.str(), dir.str("store"), limit);
    ASSERT_TRUE(server);
    EXPECT_EQ(complain_in_new_conversation(*server, "ann"), "feedback_request");
    EXPECT_EQ(complain_in_new_conversation(*server, "ann"), "feedback_request");
    EXPECT_EQ(complain_in_new_conversation(*server, "ann"), "answer") << "ann's third request of the day";
    EXPECT_EQ(complain_in_new_conversation(*server, "bob"), "feedback_request");
    for (int i = 0; i < 3; ++i) EXPECT_EQ(complain_in_new_conversation(*server, ""), "feedback_request");
    auto metrics = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_feedback_requests_held_back_total 1"), std::string::npos) << metrics->body;
  }
  auto server = testing::start_server(dir.str(), dir.str("store"), limit);
  ASSERT_TRUE(server);
  EXPECT_EQ(complain_in_new_conversation(*server, "ann"), "answer") << "the store remembers ann's two";
  EXPECT_EQ(complain_in_new_conversation(*server, "bob"), "feedback_request");
  EXPECT_EQ(complain_in_new_conversation(*server, "bob"), "answer");
}

// The label model on live traffic: the labeling functions' votes on the last
// --label-model-window judged replies, refitted without labels.
TEST(ChatTest, TheLabelModelRelearnsTheLabelingFunctionsOnTheLatestJudgedReplies) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"), {"--admin-token", "secret", "--label-model-window", "4"});
  ASSERT_TRUE(server);
  auto admin = [&](const std::string& path) {
    auto reply = clients::http_request("GET", server->http_url(path), "", "Bearer secret");
    EXPECT_OK(reply);
    return json::parse(reply->body);
  };
  EXPECT_EQ(admin("/admin/labeling-functions?refit=1"), json({{"fitted", false}}));
  auto ws = clients::WsClient::connect(server->ws_url());
  ASSERT_OK(ws);
  ASSERT_EQ(testing::request(**ws, {{"type", "hello"}})["type"], "welcome");
  for (const std::string text : {"hello ! what colour is your car ?", "nice . where is your boat ?", "cool , thanks !",
                                 "haha yes", "do you like dogs ?", "i love them"}) {
    ASSERT_EQ(testing::request(**ws, {{"type", "message"}, {"text", text}})["type"], "reply");
  }
  const json fit = admin("/admin/labeling-functions?refit=1");
  ASSERT_EQ(fit["fitted"], true) << fit.dump();
  EXPECT_EQ(fit["replies"], 4) << "the window";
  EXPECT_EQ(fit["seen"], 5) << "every message but the first is judged";
  EXPECT_TRUE(fit["degenerate"].is_boolean());
  EXPECT_EQ(admin("/admin/labeling-functions"), fit) << "the latest fit, without refitting";
  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  std::size_t voted = 0;
  for (const json& f : fit["functions"]) {
    const double coverage = f["coverage"];
    EXPECT_TRUE(coverage == 0 || coverage == 0.25 || coverage == 0.5 || coverage == 0.75 || coverage == 1) << f.dump();
    if (coverage > 0) ++voted;
    EXPECT_NE(metrics->body.find("selffeed_labeling_function_coverage{function=\"" + f["name"].get<std::string>() + "\"}"),
              std::string::npos);
  }
  EXPECT_GT(voted, 0u) << fit.dump();
  EXPECT_EQ(admin("/admin/labeling-functions?refit=yes")["error"], "invalid_argument");
}

// Users who stop reacting with pleasure and start answering "hm": the labeling functions'
// coverage moves between two blocks of judged replies, and the server says so; among them
// one the operator wrote (serve --labeling-functions).
TEST(ChatTest, AlertsWhenTheUsersRepliesDriftAndForgetsItWhenTheOperatorAcceptsIt) {
  TempDir dir;
  std::ofstream(dir.str("functions.txt")) << "# the operator's own\nsays_hm unsatisfied reply ^hm$\n";
  auto server = testing::start_server(dir.str(), dir.str("store"),
                                      {"--admin-token", "secret", "--drift-block", "20", "--drift-min-shift", "0.5", "--rate",
                                       "1000", "--burst", "1000", "--labeling-functions", dir.str("functions.txt")});
  ASSERT_TRUE(server);
  auto admin = [&](const std::string& method, const std::string& path) {
    auto reply = clients::http_request(method, server->http_url(path), "", "Bearer secret");
    EXPECT_OK(reply);
    return json::parse(reply->body);
  };
  json alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["blocks"], 0);
  EXPECT_TRUE(alerts["reference"].is_null()) << alerts.dump();
  auto ws = clients::WsClient::connect(server->ws_url());
  ASSERT_OK(ws);
  ASSERT_EQ(testing::request(**ws, {{"type", "hello"}})["type"], "welcome");
  auto say = [&](const std::string& text) {
    json reply = testing::request(**ws, {{"type", "message"}, {"text", text}});
    EXPECT_EQ(reply["kind"], "answer") << text << ": " << reply.dump();
  };
  say("hello ! what colour is your car ?");  // not judged
  const std::vector<std::string> things = {"dogs", "cats", "kites", "boats", "cars"};
  for (int i = 0; i < 20; ++i) say("haha yes , i like " + things[i % 5] + " too , thanks ! number " + std::to_string(i));
  alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["blocks"], 1);
  EXPECT_EQ(alerts["reference"]["replies"], 20);
  EXPECT_EQ(alerts["reference"]["coverage"]["positive_reaction"], 1.0) << alerts.dump();
  EXPECT_EQ(alerts["alerts"], json::array());

  for (int i = 0; i < 20; ++i) say("hm");
  alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["blocks"], 2);
  EXPECT_EQ(alerts["latest"]["coverage"]["minimal_reply"], 1.0) << alerts.dump();
  std::set<std::string> fired;
  for (const json& alert : alerts["alerts"]) {
    EXPECT_EQ(alert["alert"], "labeling_function_coverage") << alert.dump();
    EXPECT_FALSE(alert["message"].get<std::string>().empty());
    fired.insert(alert["subject"]);
  }
  EXPECT_TRUE(fired.contains("positive_reaction") && fired.contains("minimal_reply") && fired.contains("says_hm"))
      << alerts.dump();
  EXPECT_EQ(alerts["reference"]["coverage"]["says_hm"], 0.0);
  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_alert{alert=\"labeling_function_coverage\",subject=\"minimal_reply\"} 1"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("selffeed_labeling_function_votes_total{function=\"says_hm\",vote=\"unsatisfied\"} 20"),
            std::string::npos);
  // Yield per model version: every reply after the first was judged, the happy ones kept.
  EXPECT_NE(metrics->body.find("selffeed_judged_replies_total{version=\"toy-v1\"} 40"), std::string::npos);
  EXPECT_NE(metrics->body.find("selffeed_harvested_examples_by_version_total{version=\"toy-v1\",kind=\"HB\"} 40"),
            std::string::npos)
      << metrics->body;

  EXPECT_EQ(admin("POST", "/admin/alerts/rebase"), json({{"rebased", true}}));
  alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["alerts"], json::array());
  EXPECT_TRUE(alerts["reference"].is_null());
  for (int i = 0; i < 20; ++i) say("hm");
  alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["reference"]["coverage"]["minimal_reply"], 1.0) << "the present is the reference";
  EXPECT_EQ(alerts["alerts"], json::array());

  // Thumbs on answers the users replied to: the estimator's dev set in the wild.
  EXPECT_EQ(testing::request(**ws, {{"type", "rate"}, {"turn", 1}, {"value", "up"}})["type"], "rated");
  EXPECT_EQ(testing::request(**ws, {{"type", "rate"}, {"turn", 3}, {"value", "down"}})["type"], "rated");
  alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["thumbs"]["up"], 1);
  EXPECT_EQ(alerts["thumbs"]["down"], 1);
  EXPECT_EQ(alerts["thumbs"]["auc"], 0.5) << "the regex estimator scored both replies 1: a tie";
  // A thumbs on the last answer before the reply counts once the reply is judged.
  EXPECT_EQ(testing::request(**ws, {{"type", "rate"}, {"turn", 121}, {"value", "up"}})["type"], "rated");
  EXPECT_EQ(admin("GET", "/admin/alerts")["thumbs"]["up"], 1) << "nothing judged it yet";
  say("hm");
  alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["thumbs"]["up"], 2) << alerts["thumbs"].dump();
  EXPECT_EQ(admin("GET", "/admin/alerts/rebase")["error"], "not_found");

  // A restart keeps the reference: the first block after it is compared with the "hm" one.
  ws->reset();
  server.reset();
  server = testing::start_server(dir.str(), dir.str("store"),
                                 {"--admin-token", "secret", "--drift-block", "20", "--drift-min-shift", "0.5", "--rate",
                                  "1000", "--burst", "1000", "--labeling-functions", dir.str("functions.txt")});
  ASSERT_TRUE(server);
  alerts = admin("GET", "/admin/alerts");
  EXPECT_EQ(alerts["blocks"], 0);
  EXPECT_EQ(alerts["reference"]["coverage"]["minimal_reply"], 1.0) << alerts.dump();
  ws = clients::WsClient::connect(server->ws_url());
  ASSERT_OK(ws);
  ASSERT_EQ(testing::request(**ws, {{"type", "hello"}})["type"], "welcome");
  say("hello ! what colour is your car ?");
  for (int i = 0; i < 20; ++i) say("haha yes , i like " + things[i % 5] + " too , thanks ! number " + std::to_string(i));
  alerts = admin("GET", "/admin/alerts");
  fired.clear();
  for (const json& alert : alerts["alerts"]) fired.insert(alert["subject"]);
  EXPECT_TRUE(fired.contains("positive_reaction") && fired.contains("minimal_reply")) << alerts.dump();
}

// The bot's persona: the server's (serve --persona) unless a hello gives the conversation
// its own; it is stored with the conversation, shown in the welcome, and its facts lead the
// ranking when the bundle weighs them.
TEST(ChatTest, ThePersonaOfTheServerOrOfTheConversationLeadsTheAnswers) {
  TempDir dir;
  const std::string command = std::string(SELFFEED_SOURCE_DIR) + "/tests/testing/make_toy_bundle.sh " +
                              SELFFEED_BINARY + " " + dir.str("toy") + " --persona-weight 100";
  ASSERT_EQ(std::system(command.c_str()), 0);
  std::ofstream(dir.str("persona.txt")) << "my boat is yellow .\n\n  i live near the lamp .  \n";
  auto server = clients::LocalServer::start({.binary = SELFFEED_BINARY,
                                             .bundle = dir.str("toy/run/bundle"),
                                             .store = dir.str("store"),
                                             .work_dir = dir.str(),
                                             .extra_args = {"--satisfaction", "regex", "--persona", dir.str("persona.txt")}});
  ASSERT_OK(server);
  const std::vector<std::string> server_persona = {"my boat is yellow .", "i live near the lamp ."};
  const std::string question = "hello ! what colour is your car ?";

  auto client = clients::WsClient::connect((*server)->ws_url());
  ASSERT_OK(client);
  json welcome = testing::request(**client, {{"type", "hello"}});
  EXPECT_EQ(welcome["persona"], server_persona) << welcome.dump();
  json reply = testing::request(**client, {{"type", "message"}, {"text", question}});
  EXPECT_EQ(reply["text"], "my boat is yellow .") << reply.dump();

  // A conversation of its own persona keeps it when resumed without one.
  json own = testing::request(**client, {{"type", "hello"}, {"persona", {"my kite is black ."}}});
  EXPECT_EQ(own["persona"], json({"my kite is black ."})) << own.dump();
  const std::string conversation_id = own["conversation_id"];
  reply = testing::request(**client, {{"type", "message"}, {"text", question}});
  EXPECT_EQ(reply["text"], "my kite is black .") << reply.dump();
  json resumed = testing::request(**client, {{"type", "hello"}, {"conversation_id", conversation_id}});
  EXPECT_EQ(resumed["persona"], json({"my kite is black ."})) << resumed.dump();
  // An empty one gives the conversation the server's back.
  json cleared = testing::request(**client, {{"type", "hello"}, {"conversation_id", conversation_id}, {"persona", json::array()}});
  EXPECT_EQ(cleared["persona"], server_persona) << cleared.dump();

  for (const json& bad : {json{{"type", "hello"}, {"persona", "my kite is black ."}},
                          json{{"type", "hello"}, {"persona", {"ok", ""}}},
                          json{{"type", "hello"}, {"persona", {std::string(501, 'a')}}},
                          json{{"type", "hello"}, {"persona", std::vector<std::string>(33, "i sing .")}}}) {
    json refused = testing::request(**client, {bad});
    EXPECT_EQ(refused["code"], "invalid_message") << refused.dump();
  }
  reply = testing::request(**client, {{"type", "message"}, {"text", question}});
  EXPECT_EQ(reply["type"], "reply") << "the session survives a refused hello: " << reply.dump();
  // The terminal client says who the bot is.
  std::istringstream lines("/quit\n");
  std::ostringstream shown;
  EXPECT_EQ(clients::run_terminal_chat((*server)->ws_url(), {}, lines, shown), 0);
  EXPECT_NE(shown.str().find("the bot: my boat is yellow . i live near the lamp ."), std::string::npos) << shown.str();
  EXPECT_EQ((*server)->stop(SIGTERM), 0);

  // A persona file the server cannot use stops it with a message that names the file.
  for (const std::string& contents : {std::string("\n \n"), std::string(501, 'a') + "\n", std::string("\xff\n")}) {
    std::ofstream(dir.str("bad_persona.txt"), std::ios::trunc) << contents;
    auto refused = clients::LocalServer::start({.binary = SELFFEED_BINARY,
                                                .bundle = dir.str("toy/run/bundle"),
                                                .store = dir.str("store2"),
                                                .work_dir = dir.str(),
                                                .extra_args = {"--persona", dir.str("bad_persona.txt")}});
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("bad_persona.txt"), std::string::npos) << refused.status().to_string();
  }
}

}  // namespace
}  // namespace selffeed
