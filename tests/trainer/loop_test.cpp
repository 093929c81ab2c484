// The learning loop's pure parts: what is read from the store for retraining, and the
// promotion gate's decision rule.
#include <algorithm>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "selffeed/common/hash.h"
#include "selffeed/satisfaction/satisfaction.h"
#include "selffeed/store/store.h"
#include "selffeed/trainer/trainer.h"
#include "testing.h"

namespace selffeed::trainer {
namespace {

Example example(ExampleKind kind, const std::string& user, const std::string& target,
                const std::string& conversation = "") {
  return Example{.kind = kind, .context = "__p2__ hi __p1__ hello", .target = target, .conversation_id = conversation,
                 .user_id = user, .source = "server"};
}

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> seqs) {
  std::sort(seqs.begin(), seqs.end());
  return seqs;
}

std::vector<std::pair<std::string, std::string>> texts(const std::vector<RankingExample>& examples) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : examples) out.emplace_back(e.context, e.target);
  return out;
}

// The conversations among c0..c49 whose FNV-1a 64 is 0 modulo 10: the gate's.
const std::set<std::string> kHeldOutConversations = {"c4", "c13", "c19", "c24", "c40"};

TEST(HarvestedTest, DeletedUsersAreSkippedAndEveryTenthConversationIsHeldOut) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  for (int i = 1; i <= 20; ++i) {  // seqs 1..20: HB on odd seqs, FB on even ones, 4 a conversation: c1..c5
    writes.examples.push_back(example(i % 2 ? ExampleKind::kHB : ExampleKind::kFB, "alice", "t" + std::to_string(i),
                                      "c" + std::to_string((i - 1) / 4 + 1)));
  }
  writes.examples.push_back(example(ExampleKind::kST, "alice", "1"));      // seq 21: a thumbs-up
  writes.examples.push_back(example(ExampleKind::kST, "alice", "maybe"));  // seq 22: not a label
  ASSERT_OK((*store)->commit(writes));
  ASSERT_OK((*store)->delete_user("mallory"));
  // Arrive after the deletion (say, re-imported): the tombstone still keeps them out.
  ASSERT_OK((*store)->add_example(example(ExampleKind::kHB, "mallory", "secret")));
  ASSERT_OK((*store)->add_example(example(ExampleKind::kST, "mallory", "0")));

  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  EXPECT_EQ(sorted(harvested->dialogue_seqs), (std::vector<std::uint64_t>{1, 3, 5, 7, 9, 11, 17, 19}));
  EXPECT_EQ(sorted(harvested->feedback_seqs), (std::vector<std::uint64_t>{2, 4, 6, 8, 10, 12, 18, 20}));
  EXPECT_EQ(harvested->dialogue_held_out, 2u);        // c4's HB: seqs 13 and 15, not learned either
  ASSERT_EQ(harvested->feedback_holdout.size(), 2u);  // c4's FB: seqs 14 and 16
  std::set<std::string> held_out;
  for (const auto& e : harvested->feedback_holdout) held_out.insert(e.target);
  EXPECT_EQ(held_out, (std::set<std::string>{"t14", "t16"}));
  EXPECT_EQ(harvested->satisfaction_seqs, std::vector<std::uint64_t>{21});
  EXPECT_EQ(harvested->thumbs.targets, std::vector<double>{1.0});
  EXPECT_EQ(harvested->thumbs.contexts, std::vector<std::string>{"__p2__ hi __p1__ hello"});
  EXPECT_EQ(harvested->skipped_deleted_users, 2u);
  EXPECT_EQ(harvested->watermark, 24u);
  for (const auto& e : harvested->dialogue) EXPECT_NE(e.target, "secret");

  auto after = load_harvested(**store, HarvestGuard(), {.after_seq = 15});
  ASSERT_OK(after);
  EXPECT_EQ(sorted(after->dialogue_seqs), (std::vector<std::uint64_t>{17, 19}));
}

// A user who rates an answer before replying to it leaves a thumbs example without the
// reply; the estimator reads every answer with its reply, so the reply that came after, in
// the transcript, completes it. One still unanswered stays as it is, and so does an import.
TEST(HarvestedTest, ThumbsGivenBeforeTheReplyAreCompletedWithTheReplyThatCameAfter) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  auto turn = [](const std::string& conversation, std::uint32_t index, Speaker speaker, const std::string& text) {
    return Turn{.conversation_id = conversation, .index = index, .speaker = speaker, .text = text};
  };
  auto thumbs = [](const std::string& conversation, const std::string& bot_reply, const std::string& target) {
    return Example{.kind = ExampleKind::kST, .context = satisfaction::satisfaction_context({.bot_reply = bot_reply}),
                   .target = target, .conversation_id = conversation, .turn_index = 1, .user_id = conversation + "-user",
                   .source = "thumbs"};
  };
  store::WriteSet w;
  w.conversations = {{.id = "replied", .user_id = "replied-user"},
                     {.id = "left", .user_id = "left-user"},
                     {.id = "rated-after", .user_id = "rated-after-user"}};
  w.turns = {turn("replied", 0, Speaker::kUser, "hi"), turn("replied", 1, Speaker::kBot, "i love dogs ."),
             turn("replied", 2, Speaker::kUser, "me too , i have two !"), turn("left", 0, Speaker::kUser, "hey"),
             turn("left", 1, Speaker::kBot, "what do you do ?"), turn("rated-after", 0, Speaker::kUser, "yo"),
             turn("rated-after", 1, Speaker::kBot, "i fly kites ."), turn("rated-after", 2, Speaker::kUser, "cool !")};
  const std::string rated_after = satisfaction::satisfaction_context({.bot_reply = "i fly kites .", .user_reply = "cool !"});
  Example complete = thumbs("rated-after", "i fly kites .", "1");
  complete.context = rated_after;  // rated after the reply: nothing to complete
  w.examples = {thumbs("replied", "i love dogs .", "1"), thumbs("left", "what do you do ?", "0"),
                {.kind = ExampleKind::kST, .context = "__p2__ hi __p1__ ok", .target = "1", .source = "import:st.jsonl"},
                complete};
  ASSERT_OK((*store)->commit(w));

  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->thumbs_completed, 1u);
  const std::set<std::string> contexts(harvested->thumbs.contexts.begin(), harvested->thumbs.contexts.end());
  EXPECT_EQ(contexts, (std::set<std::string>{
                          satisfaction::satisfaction_context({.bot_reply = "i love dogs .", .user_reply = "me too , i have two !"}),
                          satisfaction::satisfaction_context({.bot_reply = "what do you do ?"}), "__p2__ hi __p1__ ok",
                          rated_after}));
}

// A user who said twice what the bot could have said instead of an answer: the later
// suggestion is the FB example trained on (or held out with its conversation).
TEST(HarvestedTest, OnlyTheLaterSuggestionForAnAnswerIsTrainedOn) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  auto suggestion = [](std::int64_t turn, const std::string& target) {
    return Example{.kind = ExampleKind::kFB, .context = "__p1__ hi", .target = target, .conversation_id = "c",
                   .turn_index = turn, .user_id = "ann", .source = "suggestion"};
  };
  ASSERT_OK((*store)->commit({.examples = {suggestion(1, "i like red ."), suggestion(3, "kites are fun .")}}));
  ASSERT_OK((*store)->commit({.examples = {suggestion(1, "i like blue .")}}));

  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->suggestions_superseded, 1u);
  EXPECT_EQ(harvested->thumbs_superseded, 0u);
  std::set<std::string> targets;
  for (const auto& e : harvested->feedback) targets.insert(e.target);
  for (const auto& e : harvested->feedback_holdout) targets.insert(e.target);
  EXPECT_EQ(targets, (std::set<std::string>{"i like blue .", "kites are fun ."}));
}

// The same example twice from one user (here a suggestion repeating the answer the bot's
// feedback request got, in the same context) is trained on once; another user's is not
// their repeat.
TEST(HarvestedTest, AnExampleItsUserGaveTwiceIsTrainedOnce) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  auto fb = [](const std::string& conversation, const std::string& user, std::int64_t turn, const std::string& source) {
    return Example{.kind = ExampleKind::kFB, .context = "__p1__ what colour is your car ?", .target = "my car is red .",
                   .conversation_id = conversation, .turn_index = turn, .user_id = user, .source = source};
  };
  const std::string ann = "c1", bob = "c3";  // conversations no gate holds out
  ASSERT_NE(fnv1a64(ann) % kFeedbackHoldoutEvery, 0u);
  ASSERT_NE(fnv1a64(bob) % kFeedbackHoldoutEvery, 0u);
  ASSERT_OK((*store)->commit({.examples = {fb(ann, "ann", 4, "server"), fb(ann, "ann", 1, "suggestion"),
                                          fb(bob, "bob", 4, "server")}}));
  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->repeated_by_their_teacher, 1u);
  ASSERT_EQ(harvested->feedback.size(), 2u) << "ann's once, bob's";
  EXPECT_EQ(harvested->feedback_seqs.size(), 2u);
}

// A user who changed their mind rated one answer twice: the later rating is trained on, the
// earlier one only counted. A rating of another turn, or an import, is left alone.
TEST(HarvestedTest, OnlyTheLaterRatingOfAnAnswerRatedTwiceIsTrainedOn) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  auto thumbs = [](std::int64_t turn, const std::string& target) {
    return Example{.kind = ExampleKind::kST, .context = "__p2__ answer " + std::to_string(turn) + " __p1__ ok",
                   .target = target, .conversation_id = "c", .turn_index = turn, .user_id = "ann", .source = "thumbs"};
  };
  const Example imported{.kind = ExampleKind::kST, .context = "__p2__ answer 1 __p1__ ok", .target = "1",
                         .source = "import:st.jsonl"};
  ASSERT_OK((*store)->commit({.examples = {thumbs(1, "1"), thumbs(3, "1"), imported}}));  // seqs 1-3
  ASSERT_OK((*store)->commit({.examples = {thumbs(1, "0")}}));                             // seq 4

  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->thumbs_superseded, 1u);
  std::vector<std::uint64_t> seqs = harvested->satisfaction_seqs;
  std::sort(seqs.begin(), seqs.end());
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{2, 3, 4}));
  std::multiset<std::pair<std::string, double>> trained;
  for (std::size_t i = 0; i < harvested->thumbs.contexts.size(); ++i) {
    trained.insert({harvested->thumbs.contexts[i], harvested->thumbs.targets[i]});
  }
  EXPECT_EQ(trained, (std::multiset<std::pair<std::string, double>>{
                         {"__p2__ answer 1 __p1__ ok", 0.0}, {"__p2__ answer 1 __p1__ ok", 1.0}, {"__p2__ answer 3 __p1__ ok", 1.0}}));
}

// Concurrent conversations commit their turns in whatever order they come, and that order
// decides the seqs. The same harvest must give the same training data, in the same order,
// and the same gate examples: whole conversations, drawn by their id.
TEST(HarvestedTest, TheHarvestDoesNotDependOnTheOrderItWasCommittedIn) {
  std::vector<Example> turns;  // conversation by conversation
  for (int c = 0; c < 50; ++c) {
    const std::string conversation = "c" + std::to_string(c);
    for (int t = 0; t < 3; ++t) {
      const std::string context = "__p2__ turn " + std::to_string(t) + " of " + conversation + " __p1__ hello";
      const std::string reply = conversation + " reply " + std::to_string(t);
      for (auto [kind, target] : {std::pair{ExampleKind::kHB, reply}, std::pair{ExampleKind::kFB, reply + " instead"},
                                  std::pair{ExampleKind::kST, std::to_string(t % 2)}}) {
        turns.push_back(Example{.kind = kind, .context = context, .target = target, .conversation_id = conversation,
                                .turn_index = t, .user_id = "user" + std::to_string(c % 7), .source = "server"});
      }
    }
  }
  testing::TempDir dir;
  std::vector<HarvestedExamples> loaded;
  for (const bool interleaved : {false, true}) {
    store::WriteSet writes;
    if (interleaved) {  // turn by turn across the conversations, the last one first
      for (int t = 0; t < 3; ++t) {
        for (int c = 49; c >= 0; --c) {
          for (int k = 0; k < 3; ++k) writes.examples.push_back(turns[(c * 3 + t) * 3 + k]);
        }
      }
    } else {
      writes.examples = turns;
    }
    auto store = store::Store::open({.path = dir.str(interleaved ? "interleaved" : "in-order")});
    ASSERT_OK(store);
    ASSERT_OK((*store)->commit(writes));
    auto harvested = load_harvested(**store, HarvestGuard(), {.max_per_user = 1000});
    ASSERT_OK(harvested);
    loaded.push_back(std::move(*harvested));
  }
  const HarvestedExamples& a = loaded[0];
  const HarvestedExamples& b = loaded[1];
  EXPECT_EQ(texts(a.dialogue), texts(b.dialogue));
  EXPECT_EQ(texts(a.feedback), texts(b.feedback));
  EXPECT_EQ(texts(a.feedback_holdout), texts(b.feedback_holdout));
  EXPECT_EQ(a.thumbs.contexts, b.thumbs.contexts);
  EXPECT_EQ(a.thumbs.targets, b.thumbs.targets);

  EXPECT_EQ(a.feedback_holdout.size(), 3 * kHeldOutConversations.size());
  EXPECT_EQ(a.dialogue_held_out, 3 * kHeldOutConversations.size());
  EXPECT_EQ(a.feedback.size(), 150 - a.feedback_holdout.size());
  EXPECT_EQ(a.dialogue.size(), 150 - a.dialogue_held_out);
  const auto conversation_of = [](const RankingExample& e) { return e.target.substr(0, e.target.find(' ')); };
  for (const auto& e : a.feedback_holdout) EXPECT_TRUE(kHeldOutConversations.contains(conversation_of(e))) << e.target;
  for (const auto* trained : {&a.dialogue, &a.feedback}) {
    for (const auto& e : *trained) EXPECT_FALSE(kHeldOutConversations.contains(conversation_of(e))) << e.target;
  }
}

// An import has no conversation: its FB examples are drawn for the gate by their text, and
// its HB examples, which no gate example shares a conversation with, are all learned.
TEST(HarvestedTest, AnImportsFeedbackIsDrawnByItsTextAndItsDialogueIsLearned) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;  // "imported 9" and "imported 10" are texts the draw holds out; "imported 11" is not
  writes.examples.push_back(example(ExampleKind::kHB, "", "imported 9"));
  writes.examples.push_back(example(ExampleKind::kFB, "", "imported 10"));
  writes.examples.push_back(example(ExampleKind::kFB, "", "imported 11"));
  ASSERT_OK((*store)->commit(writes));

  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->dialogue_seqs, std::vector<std::uint64_t>{1});
  EXPECT_EQ(harvested->dialogue_held_out, 0u);
  ASSERT_EQ(harvested->feedback_holdout.size(), 1u);
  EXPECT_EQ(harvested->feedback_holdout[0].target, "imported 10");
  EXPECT_EQ(harvested->feedback_seqs, std::vector<std::uint64_t>{3});
}

// No one user outweighs the others: past the cap, a user's HB and FB examples are not
// learned, and which ones are learned does not depend on the order they were committed in;
// users without an id count per conversation; the held-out conversation's FB and the
// thumbs are kept, and its examples do not count toward the cap.
TEST(HarvestedTest, OneUserTeachesAtMostTheCap) {
  testing::TempDir dir;
  std::vector<HarvestedExamples> capped;
  for (const bool reversed : {false, true}) {
    auto store = store::Store::open({.path = dir.str(reversed ? "reversed" : "in-order")});
    ASSERT_OK(store);
    store::WriteSet writes;
    for (int n = 1; n <= 30; ++n) {  // the flood, HB on odd n, FB on even n; t21..t30 are c13's, the gate's
      const int i = reversed ? 31 - n : n;
      writes.examples.push_back(example(i % 2 ? ExampleKind::kHB : ExampleKind::kFB, "troll", "t" + std::to_string(i),
                                        i <= 20 ? "troll-chat" : "c13"));
    }
    writes.examples.push_back(example(ExampleKind::kHB, "alice", "a"));
    for (const char* conversation : {"c1", "c2"}) {  // no user id
      for (const char* turn : {" 1", " 2"}) {
        writes.examples.push_back(example(ExampleKind::kHB, "", conversation + std::string(turn), conversation));
      }
    }
    writes.examples.push_back(example(ExampleKind::kST, "troll", "1"));
    ASSERT_OK((*store)->commit(writes));

    auto harvested = load_harvested(**store, HarvestGuard(), {.max_per_user = 5});
    ASSERT_OK(harvested);
    capped.push_back(std::move(*harvested));

    auto uncapped = load_harvested(**store, HarvestGuard());
    ASSERT_OK(uncapped);
    EXPECT_EQ(uncapped->dialogue.size() + uncapped->feedback.size(), 20u + 5u);
    EXPECT_EQ(uncapped->over_the_user_cap, 0u);
  }
  std::set<std::string> learned;
  for (const auto* trained : {&capped[0].dialogue, &capped[0].feedback}) {
    for (const auto& e : *trained) learned.insert(e.target);
  }
  EXPECT_EQ(learned.size(), 5u + 5u);
  for (const char* other : {"a", "c1 1", "c1 2", "c2 1", "c2 2"}) EXPECT_TRUE(learned.contains(other)) << other;
  for (const auto& e : capped[0].feedback_holdout) EXPECT_FALSE(learned.contains(e.target));
  EXPECT_EQ(capped[0].feedback_holdout.size(), 5u);  // c13's FB: for the gate, not learned
  EXPECT_EQ(capped[0].dialogue_held_out, 5u);        // c13's HB
  EXPECT_EQ(capped[0].over_the_user_cap, 20u - 5u);
  EXPECT_EQ(capped[0].thumbs.targets, std::vector<double>{1.0});

  EXPECT_EQ(texts(capped[0].dialogue), texts(capped[1].dialogue));
  EXPECT_EQ(texts(capped[0].feedback), texts(capped[1].feedback));
  EXPECT_EQ(capped[1].over_the_user_cap, 20u - 5u);
}

TEST(HarvestGuardTest, RefusesPersonalDataAndBlockedWords) {
  const HarvestGuard guard;
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"write me at Jane.Doe+chat@example.co.uk", "email address"},
      {"my site is https://example.org/about", "web address"},
      {"look me up on www.example.net", "web address"},
      {"search facebook.com for me", "web address"},
      {"call me at 555-123-4567 tonight", "phone number"},
      {"my number is +44 20 7946 0958", "phone number"},
      {"(555) 123 4567", "phone number"},
      {"you are a FUCKING idiot !", "blocked word"},
      {"what a load of bullshit", "blocked word"}};
  for (const auto& [text, why] : refused) {
    const auto refusal = guard.refusal(text);
    ASSERT_TRUE(refusal.has_value()) << text;
    EXPECT_EQ(*refusal, why) << text;
  }
  for (const std::string text : {"i like dogs . do you ?", "i was born in 1990 and moved in 2005 .",
                                  "i have 3 kids and 2 dogs", "my email is private , sorry", "shitake mushrooms ! dickens !",
                                  "i scored 1,000 points", "so . com on , it is 5 . 30", ""}) {
    EXPECT_FALSE(guard.refusal(text).has_value()) << text << ": " << guard.refusal(text).value_or("");
  }
  // A stranger's text: long runs that almost match are matched in linear time (RE2).
  std::string almost_a_number;
  for (int i = 0; i < 50000; ++i) almost_a_number += "1a";
  EXPECT_FALSE(guard.refusal(almost_a_number).has_value());
  EXPECT_EQ(guard.refusal(std::string(100000, '@') + "x.com"), "web address");
}

TEST(HarvestGuardTest, RedactionReplacesWhatTheGuardRefusesAsPersonalDataAndNothingElse) {
  EXPECT_EQ(redact_personal_data("write me at Jane.Doe+chat@example.co.uk or jd@mail.com !"),
            "write me at [email address] or [email address] !");
  EXPECT_EQ(redact_personal_data("see https://example.org/about?x=1 and www.example.net/a/b ."),
            "see [web address] and [web address] .");
  EXPECT_EQ(redact_personal_data("search facebook.com/jane for me"), "search [web address] for me");
  EXPECT_EQ(redact_personal_data("call 555-123-4567 or +44 20 7946 0958 , not (555) 123 4567"),
            "call [phone number] or [phone number] , not ([phone number]");
  const HarvestGuard guard;
  for (const std::string text : {"i like dogs . do you ?", "i was born in 1990 and moved in 2005 .",
                                  "my email is private , sorry", "what a load of bullshit", "so . com on , it is 5 . 30",
                                  "__p2__ hi there __p1__ hello", ""}) {
    EXPECT_EQ(redact_personal_data(text), text) << "nothing personal in it";
  }
  // What is redacted is no longer refused as personal data.
  for (const std::string text : {"mail jd@mail.com", "at https://example.org/x", "dial 555 123 4567"}) {
    EXPECT_TRUE(guard.refusal(text).has_value()) << text;
    EXPECT_FALSE(guard.refusal(redact_personal_data(text)).has_value()) << redact_personal_data(text);
  }
  // Linear time on a stranger's long text, as the guard.
  std::string almost_a_number;
  for (int i = 0; i < 50000; ++i) almost_a_number += "1a";
  EXPECT_EQ(redact_personal_data(almost_a_number), almost_a_number);
}

TEST(HarvestGuardTest, AnOperatorsListReplacesTheBuiltInWords) {
  testing::TempDir dir;
  const std::string path = dir.str("blocklist.txt");
  std::ofstream(path) << "# our list\nDogs\n\ncats  # and these\n";
  auto guard = HarvestGuard::from_file(path);
  ASSERT_OK(guard);
  EXPECT_EQ(guard->refusal("I like dogs!"), "blocked word");
  EXPECT_EQ(guard->refusal("cats ?"), "blocked word");
  EXPECT_FALSE(guard->refusal("oh shit").has_value());
  EXPECT_EQ(guard->refusal("call 555 123 4567"), "phone number");  // personal data is always refused

  std::ofstream(dir.str("two.txt")) << "two words\n";
  EXPECT_EQ(HarvestGuard::from_file(dir.str("two.txt")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HarvestGuard::from_file(dir.str("absent.txt")).status().code(), StatusCode::kNotFound);
}

// What the guard refuses stays in the store but is never trained on.
TEST(HarvestedTest, RepliesTheGuardRefusesAreCountedNotReturned) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  writes.examples.push_back(example(ExampleKind::kHB, "alice", "i like dogs ."));
  writes.examples.push_back(example(ExampleKind::kHB, "alice", "call me : 555 123 4567"));
  writes.examples.push_back(example(ExampleKind::kFB, "troll", "say fuck off"));
  writes.examples.push_back(example(ExampleKind::kFB, "troll", "go to www.example.com"));
  writes.examples.push_back(example(ExampleKind::kFB, "bob", "you could have asked about my dogs ."));
  ASSERT_OK((*store)->commit(writes));
  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  ASSERT_EQ(harvested->dialogue.size(), 1u);
  EXPECT_EQ(harvested->dialogue[0].target, "i like dogs .");
  ASSERT_EQ(harvested->feedback.size(), 1u);
  EXPECT_EQ(harvested->feedback[0].target, "you could have asked about my dogs .");
  EXPECT_EQ(harvested->refused, (std::map<std::string, std::size_t>{
                                    {"blocked word", 1}, {"phone number", 1}, {"web address", 1}}));
  EXPECT_EQ(harvested->watermark, 5u);
}

// A newer estimator judges the harvest again: what it calls unsatisfied is not imitated,
// and the cap counts what is left; feedback and thumbs are what the users said, not judged.
TEST(HarvestedTest, ANewerEstimatorLeavesOutTheRepliesItCallsUnsatisfied) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  for (const char* reply : {"i like dogs .", "that is boring", "so boring , bye", "me too !"}) {
    writes.examples.push_back(example(ExampleKind::kHB, "alice", reply));
  }
  writes.examples.push_back(example(ExampleKind::kFB, "alice", "you could have said something less boring"));
  writes.examples.push_back(example(ExampleKind::kST, "alice", "0"));
  ASSERT_OK((*store)->commit(writes));
  std::vector<std::string> judged;
  const HarvestOptions::Judge bored_is_unhappy = [&](std::span<const std::string> contexts) {
    std::vector<double> scores;
    for (const std::string& c : contexts) {
      judged.push_back(c);
      scores.push_back(c.find("boring") == std::string::npos ? 0.9 : 0.2);
    }
    return Result<std::vector<double>>(scores);
  };
  auto harvested = load_harvested(**store, HarvestGuard(), {.max_per_user = 2, .rejudge = bored_is_unhappy});
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->rejudged_unsatisfied, 2u);
  std::set<std::string> learned;
  for (const auto& e : harvested->dialogue) learned.insert(e.target);
  EXPECT_EQ(learned, (std::set<std::string>{"i like dogs .", "me too !"}));
  EXPECT_EQ(harvested->feedback.size(), 0u) << "over the cap of 2, after the re-judged are gone";
  EXPECT_EQ(harvested->over_the_user_cap, 1u);
  EXPECT_EQ(harvested->thumbs.targets.size(), 1u);
  ASSERT_EQ(judged.size(), 4u) << "HB only";
  // What the estimator reads: the bot's answer (the end of the HB context), then the reply.
  EXPECT_TRUE(std::count(judged.begin(), judged.end(), "__p2__ hello __p1__ that is boring")) << judged[0];

  const HarvestOptions::Judge broken = [](std::span<const std::string>) {
    return Result<std::vector<double>>(std::vector<double>{0.5});
  };
  EXPECT_EQ(load_harvested(**store, HarvestGuard(), {.rejudge = broken}).status().code(), StatusCode::kInternal);
}

// A troll's clean-looking replies are still a troll's; a spammer's "k" teaches nothing.
TEST(HarvestedTest, NothingIsLearnedFromUsersWhoSwearOrRepeatThemselvesThisOften) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  const auto said = [&](const std::string& user, const std::vector<std::string>& replies) {
    for (std::size_t i = 0; i < replies.size(); ++i) {
      // Conversations c1..c3: none of them the gate's.
      writes.examples.push_back(example(i % 2 ? ExampleKind::kFB : ExampleKind::kHB, user, replies[i],
                                        "c" + std::to_string(i % 3 + 1)));
    }
  };
  // 2 of 6 with a blocked word: a third.
  said("troll", {"suck my dick", "playboy", "i like to fuck", "kiska", "what ?", "you are a gay"});
  // 4 of 6 the same words as before: "Ok", "ok .", "OK!" are one reply.
  said("spammer", {"hello", "Ok", "ok .", "OK!", "k", "ok"});
  // 1 of 6 (under a fifth), and all different.
  said("grumpy", {"oh shit , i forgot", "i like dogs", "i have a cat", "i live in ohio", "i am a nurse", "yes i do"});
  // Too few to judge: 2 of 4.
  said("newcomer", {"fuck", "shit", "i like tea", "i like coffee"});
  // No repeats: other scripts are words too, and replies of punctuation only are compared as written.
  said("ivan", {"Привет", "Ты работаешь?", ")", "?!", "...", ":-("});
  writes.examples.push_back(example(ExampleKind::kST, "troll", "1"));  // their thumbs go too
  writes.examples.push_back(example(ExampleKind::kST, "grumpy", "0"));
  ASSERT_OK((*store)->commit(writes));

  auto harvested = load_harvested(**store, HarvestGuard());
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->untrusted, (std::vector<std::string>{"spammer", "troll"}));
  EXPECT_EQ(harvested->examples_of_the_untrusted, 4u + 6u + 1u) << "the troll's clean four and thumbs, all the spammer's";
  EXPECT_EQ(harvested->refused.at("blocked word"), 2u + 1u + 2u);
  std::multiset<std::string> learned;
  for (const auto* list : {&harvested->dialogue, &harvested->feedback}) {
    for (const RankingExample& e : *list) learned.insert(e.target);
  }
  EXPECT_EQ(learned, (std::multiset<std::string>{"i like dogs", "i have a cat", "i live in ohio", "i am a nurse", "yes i do",
                                                  "i like tea", "i like coffee", "Привет", "Ты работаешь?", ")", "?!",
                                                  "...", ":-("}));
  EXPECT_EQ(harvested->thumbs.targets, std::vector<double>{0.0}) << "grumpy's thumbs only";

  // Each rule can be turned off (a share above 1), and the bar of examples moved.
  auto lenient = load_harvested(**store, HarvestGuard(), {.trust = {.max_blocked_share = 1.5}});
  ASSERT_OK(lenient);
  EXPECT_EQ(lenient->untrusted, std::vector<std::string>{"spammer"});
  auto strict = load_harvested(**store, HarvestGuard(),
                               {.trust = {.min_examples = 4, .max_blocked_share = 0.16, .max_repeated_share = 1.5}});
  ASSERT_OK(strict);
  EXPECT_EQ(strict->untrusted, (std::vector<std::string>{"grumpy", "newcomer", "troll"}));
  auto off = load_harvested(**store, HarvestGuard(), {.trust = {.max_blocked_share = 2, .max_repeated_share = 2}});
  ASSERT_OK(off);
  EXPECT_TRUE(off->untrusted.empty());
  EXPECT_EQ(off->examples_of_the_untrusted, 0u);
  EXPECT_EQ(off->dialogue.size() + off->feedback.size(), learned.size() + 4u + 6u) << "the troll's four and the spammer's six";
}

// A troll who answers feedback requests with lines from elsewhere writes clean words; the
// model trained from tells: it ranks such feedback as it would any reply of its pool.
TEST(HarvestedTest, NothingIsLearnedFromAUserWhoseFeedbackTheModelRanksAsAnyReply) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  const auto taught = [&](const std::string& user, int relevant, int junk) {
    for (int i = 0; i < relevant + junk; ++i) {
      const std::string target = (i < junk ? "junk " : "fine ") + std::to_string(i);
      writes.examples.push_back(example(ExampleKind::kFB, user, target, "c" + std::to_string(i % 3 + 1)));
    }
  };
  taught("honest", 9, 1);
  taught("troll", 4, 6);     // mean rank (6 x 0.6 + 4 x 0.1) / 10 = 0.4
  taught("newcomer", 0, 9);  // too few to judge
  taught("heavy", 60, 0);    // judged by 50 of them
  writes.examples.push_back(example(ExampleKind::kHB, "troll", "i like dogs", "c1"));  // goes with them
  ASSERT_OK((*store)->commit(writes));
  std::vector<dialogue::TextPair> judged;
  const HarvestOptions::Relevance junk_ranks_low = [&](std::span<const dialogue::TextPair> feedback) {
    std::vector<double> ranks;
    for (const dialogue::TextPair& pair : feedback) {
      judged.push_back(pair);
      ranks.push_back(pair.target.starts_with("junk") ? 0.6 : 0.1);
    }
    return Result<std::vector<double>>(ranks);
  };
  auto harvested = load_harvested(**store, HarvestGuard(), {.relevance = junk_ranks_low});
  ASSERT_OK(harvested);
  EXPECT_EQ(harvested->untrusted, std::vector<std::string>{"troll"});
  EXPECT_EQ(harvested->untrusted_for_irrelevant_feedback, 1u);
  EXPECT_EQ(harvested->examples_of_the_untrusted, 11u);
  EXPECT_EQ(harvested->feedback.size(), 10u + 9u + 60u);
  EXPECT_TRUE(harvested->dialogue.empty());
  ASSERT_EQ(judged.size(), 10u + 10u + 50u) << "the FB examples of those with ten or more, at most 50 each";
  ASSERT_EQ(harvested->teachers.size(), 4u);
  const TeacherTrust& troll = harvested->teachers[3];
  EXPECT_EQ(troll.teacher, "troll");
  EXPECT_FALSE(troll.trusted);
  EXPECT_EQ(troll.replies, 11u);
  EXPECT_EQ(troll.feedback, 10u);
  ASSERT_TRUE(troll.feedback_rank.has_value());
  EXPECT_NEAR(*troll.feedback_rank, 0.4, 1e-12);
  const TeacherTrust& newcomer = harvested->teachers[2];
  EXPECT_EQ(newcomer.teacher, "newcomer");
  EXPECT_TRUE(newcomer.trusted);
  EXPECT_FALSE(newcomer.feedback_rank.has_value()) << "nine are too few to judge";
  EXPECT_EQ(judged[0].context, "__p2__ hi __p1__ hello");

  auto lenient =
      load_harvested(**store, HarvestGuard(), {.trust = {.max_feedback_rank = 0.45}, .relevance = junk_ranks_low});
  ASSERT_OK(lenient);
  EXPECT_TRUE(lenient->untrusted.empty());
  auto strict = load_harvested(**store, HarvestGuard(), {.trust = {.min_feedback = 9}, .relevance = junk_ranks_low});
  ASSERT_OK(strict);
  EXPECT_EQ(strict->untrusted, (std::vector<std::string>{"newcomer", "troll"}));
  auto unjudged = load_harvested(**store, HarvestGuard());
  ASSERT_OK(unjudged);
  EXPECT_TRUE(unjudged->untrusted.empty()) << "no judge, no rule";

  const HarvestOptions::Relevance broken = [](std::span<const dialogue::TextPair>) {
    return Result<std::vector<double>>(std::vector<double>{0.5});
  };
  EXPECT_EQ(load_harvested(**store, HarvestGuard(), {.relevance = broken}).status().code(), StatusCode::kInternal);
}

// The gate is not scored on the held-out feedback of a troll its candidate's retraining
// did not learn from either.
TEST(GateTest, TheHeldOutFeedbackOfDistrustedUsersIsLeftOut) {
  testing::TempDir dir;
  auto store = store::Store::open({.path = dir.str("store")});
  ASSERT_OK(store);
  store::WriteSet writes;
  for (int i = 0; i < 30; ++i) {
    writes.examples.push_back(example(ExampleKind::kFB, "honest", "fine " + std::to_string(i), i % 2 ? "c4" : "c13"));
  }
  for (int i = 0; i < 20; ++i) {
    writes.examples.push_back(example(ExampleKind::kFB, "troll", "junk " + std::to_string(i), i % 2 ? "c24" : "c40"));
  }
  ASSERT_OK((*store)->commit(writes));
  auto everyone = feedback_gate_set(**store);
  ASSERT_OK(everyone);
  EXPECT_EQ(everyone->size(), 50u);
  auto trusted = feedback_gate_set(**store, {"troll", "someone gone"});
  ASSERT_OK(trusted);
  ASSERT_EQ(trusted->size(), 30u);
  for (const RankingExample& e : *trusted) EXPECT_TRUE(e.target.starts_with("fine")) << e.target;
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
