#include "selffeed/feedback/policy.h"

#include <gtest/gtest.h>

namespace selffeed::feedback {
namespace {

const PolicyOptions kOptions;

Outcome step(const State& s, const std::string& user, std::optional<double> sat, const std::string& reply,
             const PolicyOptions& options = kOptions) {
  ModelRequest need = plan(s, user);
  auto out = decide(s, user, need.satisfaction_context ? sat : std::nullopt,
                    need.reply_context ? std::optional<std::string>(reply) : std::nullopt, options);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return std::move(out).value();
}

TEST(PolicyTest, NeverAsksForFeedbackOnTheFirstMessage) {
  State s;
  ModelRequest need = plan(s, "hi");
  EXPECT_FALSE(need.satisfaction_context.has_value());
  EXPECT_EQ(need.reply_context, "__p1__ hi");
  Outcome out = step(s, "hi", std::nullopt, "hello! how are you?");
  EXPECT_EQ(out.kind, ReplyKind::kAnswer);
  EXPECT_EQ(out.bot_text, "hello! how are you?");
  EXPECT_TRUE(out.examples.empty());
  EXPECT_EQ(out.next.history, (std::vector<std::string>{"hi", "hello! how are you?"}));
}

// The ranker is told the conversation so far, so that the bot does not repeat itself; the
// policy remembers only the last State::kRememberedUtterances of it.
TEST(PolicyTest, TheRankerSeesTheConversationSoFarUpToAWindow) {
  State s;
  for (int i = 0; i < 40; ++i) {
    const std::string user = "line " + std::to_string(i);
    ModelRequest need = plan(s, user);
    EXPECT_EQ(need.earlier_utterances, s.history);
    s = step(s, user, 0.5, "answer " + std::to_string(i)).next;
  }
  ASSERT_EQ(s.history.size(), State::kRememberedUtterances);
  EXPECT_EQ(s.history.front(), "line 24");
  EXPECT_EQ(s.history.back(), "answer 39");
  EXPECT_EQ(plan(s, "next").reply_context, "__p2__ answer 39 __p1__ next");
}

// A new topic clears the history but not the bot's memory of what it answered: the ranker
// still sees those answers, so the bot does not give them again.
TEST(PolicyTest, AnswersFromBeforeANewTopicAreNotGivenAgain) {
  State s = step(State{}, "hi", std::nullopt, "hello ! i like dogs .").next;
  s = step(s, "me too", 0.9, "i have two of them .").next;
  const Outcome complaint = step(s, "what ?", 0.1, "unused");
  const Outcome thanks = step(complaint.next, "say you love dogs", std::nullopt, "");
  ASSERT_EQ(thanks.kind, ReplyKind::kThanksNewTopic);
  const std::vector<std::string> before = {"hello ! i like dogs .", "i have two of them ."};
  EXPECT_TRUE(thanks.next.history.empty());
  EXPECT_EQ(thanks.next.earlier_answers, before);
  EXPECT_EQ(plan(thanks.next, "cars").earlier_utterances, before);

  const State s2 = step(thanks.next, "cars", std::nullopt, "i drive a truck .").next;
  EXPECT_EQ(plan(s2, "nice").earlier_utterances,
            (std::vector<std::string>{"hello ! i like dogs .", "i have two of them .", "cars", "i drive a truck ."}));
  // Of those, what the bot said itself: what it gave itself there it keeps.
  EXPECT_EQ(plan(s2, "nice").own_answers,
            (std::vector<std::string>{"hello ! i like dogs .", "i have two of them .", "i drive a truck ."}));
  EXPECT_EQ(State::parse(s2.serialize()).value(), s2);
  const State after_reset = reset(s2);
  EXPECT_TRUE(after_reset.history.empty());
  EXPECT_EQ(after_reset.earlier_answers,
            (std::vector<std::string>{"hello ! i like dogs .", "i have two of them .", "i drive a truck ."}));
}

// The bot asks nothing twice in a conversation: the ranker is told what it asked, also
// before the last new topic.
TEST(PolicyTest, TheRankerIsToldTheQuestionsTheBotAsked) {
  State s = step(State{}, "hi", std::nullopt, "hello ! what is your name ? mine is walt .").next;
  s = step(s, "i'm ann", 0.9, "nice . do you work ? where ?").next;
  const std::vector<std::string> asked = {"what is your name ?", "do you work ?", "where ?"};
  EXPECT_EQ(s.asked_questions, asked);
  EXPECT_EQ(plan(s, "i teach").asked_questions, asked);
  EXPECT_EQ(State::parse(s.serialize()).value(), s);

  State after_reset = reset(s);
  EXPECT_TRUE(after_reset.history.empty());
  EXPECT_EQ(plan(after_reset, "let's talk about cars").asked_questions, asked);
  // After feedback the bot asks for a new topic: that prompt is no question it asked.
  Outcome complaint = step(s, "what ?", 0.1, "unused");
  Outcome thanks = step(complaint.next, "where do you teach ?", std::nullopt, "");
  EXPECT_EQ(thanks.kind, ReplyKind::kThanksNewTopic);
  EXPECT_EQ(plan(thanks.next, "cars").asked_questions, asked);

  for (int i = 0; i < 40; ++i) s = step(s, "ok", 0.9, "really ? why " + std::to_string(i) + " ?").next;
  ASSERT_EQ(s.asked_questions.size(), State::kRememberedUtterances);
  EXPECT_EQ(s.asked_questions.back(), "why 39 ?");
}

// The bot keeps the first name it gave itself, across new topics, and greets only before
// its first answer or when the user greets again.
TEST(PolicyTest, TheRankerIsToldTheBotsNameAndWhenItMayGreet) {
  EXPECT_TRUE(plan(State{}, "what do you do ?").may_greet);
  State s = step(State{}, "hi", std::nullopt, "hello ! i'm a nurse . you ?").next;
  EXPECT_TRUE(s.bot_name.empty());
  EXPECT_FALSE(plan(s, "i teach").may_greet);
  EXPECT_TRUE(plan(s, "Hello? are you there").may_greet);
  s = step(s, "what is your name ?", 0.9, "my name is Walt . yours ?").next;
  EXPECT_EQ(s.bot_name, "walt");
  s = step(s, "ann", 0.9, "my name is kim , by the way").next;  // served when nothing else was left
  EXPECT_EQ(s.bot_name, "walt");
  EXPECT_EQ(plan(s, "ok").bot_name, "walt");
  EXPECT_EQ(State::parse(s.serialize()).value(), s);

  EXPECT_EQ(s.bot_occupation, "nurse");  // its first answer: "hello ! i'm a nurse . you ?"
  s = step(s, "i paint", 0.9, "i am a teacher too").next;  // served when nothing else was left
  EXPECT_EQ(s.bot_occupation, "nurse");
  EXPECT_EQ(plan(s, "ok").bot_occupation, "nurse");
  EXPECT_EQ(State::parse(s.serialize()).value(), s);

  const State after_reset = reset(s);
  EXPECT_EQ(plan(after_reset, "let's talk about cars").bot_name, "walt");
  EXPECT_EQ(plan(after_reset, "let's talk about cars").bot_occupation, "nurse");
  EXPECT_FALSE(plan(after_reset, "let's talk about cars").may_greet);
}

TEST(PolicyTest, TheRankerIsToldTheConversationsPersonaThroughNewTopics) {
  State s;
  s.persona = {"i have two dogs .", "i bake bread ."};
  EXPECT_EQ(plan(s, "hi").persona, s.persona);
  s = step(s, "hi", std::nullopt, "hello ! i bake bread .").next;
  EXPECT_EQ(State::parse(s.serialize()).value(), s);
  EXPECT_EQ(plan(reset(s), "let's talk about cars").persona, s.persona);
  EXPECT_TRUE(plan(State{}, "hi").persona.empty());
}

// A state stored by a server from before earlier_answers, asked_questions, learn,
// bot_name and persona still loads.
TEST(PolicyTest, AStateOfAnOlderServerLoads) {
  auto s = State::parse(R"({"phase":"normal","history":["hi","hello"],"last_bot_answer":"hello","feedback_context":""})");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->history, (std::vector<std::string>{"hi", "hello"}));
  EXPECT_TRUE(s->earlier_answers.empty());
  EXPECT_TRUE(s->asked_questions.empty());
  EXPECT_TRUE(s->bot_name.empty());
  EXPECT_TRUE(s->persona.empty());
  EXPECT_TRUE(s->learn);
  EXPECT_EQ(s->feedback_requests, 0u);
}

// A user who does not want to teach the bot is never judged, never asked and never
// harvested; the choice is part of the stored state.
TEST(PolicyTest, AConversationThatDoesNotLearnHarvestsNothing) {
  State s;
  s.learn = false;
  s = step(s, "hi", std::nullopt, "hello ! do you like dogs ?").next;
  ModelRequest need = plan(s, "what ? that makes no sense");
  EXPECT_FALSE(need.satisfaction_context.has_value());
  EXPECT_TRUE(need.reply_context.has_value());
  Outcome out = step(s, "what ? that makes no sense", std::nullopt, "i like cats .");
  EXPECT_EQ(out.kind, ReplyKind::kAnswer);
  EXPECT_TRUE(out.examples.empty());
  EXPECT_FALSE(out.next.learn);
  EXPECT_FALSE(reset(out.next).learn);
  EXPECT_FALSE(State::parse(out.next.serialize())->learn);

  // Switched off after the bot asked for feedback: the request is dropped, and the next
  // message is answered rather than thanked for and not kept.
  State asked = step(step(State{}, "hi", std::nullopt, "hello").next, "what ?", 0.1, "unused").next;
  ASSERT_EQ(asked.phase, Phase::kFeedbackRequested);
  const State off = with_learning(asked, false);
  EXPECT_FALSE(off.learn);
  EXPECT_EQ(off.phase, Phase::kNormal);
  EXPECT_TRUE(off.feedback_context.empty());
  EXPECT_EQ(off.history, asked.history);
  Outcome answered = step(off, "say hi back", std::nullopt, "hi !");
  EXPECT_EQ(answered.kind, ReplyKind::kAnswer);
  EXPECT_TRUE(answered.examples.empty());
  // Switched on again, the conversation is judged and harvested as before.
  EXPECT_TRUE(plan(with_learning(answered.next, true), "what ?").satisfaction_context.has_value());
  EXPECT_EQ(with_learning(asked, true), asked);
}

TEST(PolicyTest, SatisfiedReplyBecomesAnHbExample) {
  State s = step(State{}, "have you been to france?", std::nullopt, "yes! it is beautiful.").next;
  ModelRequest need = plan(s, "what did you like most?");
  EXPECT_EQ(need.satisfaction_context, "__p2__ yes! it is beautiful. __p1__ what did you like most?");
  EXPECT_EQ(need.reply_context, "__p2__ yes! it is beautiful. __p1__ what did you like most?");
  EXPECT_EQ(need.previous_reply, "yes! it is beautiful.");
  Outcome out = step(s, "what did you like most?", 0.85, "the food.");
  EXPECT_EQ(out.kind, ReplyKind::kAnswer);
  ASSERT_EQ(out.examples.size(), 1u);
  const Example& hb = out.examples[0];
  EXPECT_EQ(hb.kind, ExampleKind::kHB);
  // The human is the responder being imitated: the bot's turn is its partner (__p1__).
  EXPECT_EQ(hb.context, "__p2__ have you been to france? __p1__ yes! it is beautiful.");
  EXPECT_EQ(hb.target, "what did you like most?");
  EXPECT_EQ(hb.satisfaction, 0.85);
}

TEST(PolicyTest, UnsatisfiedReplyAsksForFeedbackAndHarvestsThePapersContext) {
  // The paper's Figure 1.
  State s = step(State{}, "hi", std::nullopt, "have you been to france?").next;
  s = step(s, "yes i have! it's beautiful.", 0.85, "lol. i never eat them!").next;
  Outcome complaint = step(s, "what are you talking about?", 0.10, "unused");
  EXPECT_EQ(complaint.kind, ReplyKind::kFeedbackRequest);
  EXPECT_EQ(complaint.bot_text,
            "Oops! I think I messed up. Whether I messed up or not, what could I have said (in response to \"yes i "
            "have! it's beautiful.\")?");
  EXPECT_TRUE(complaint.examples.empty());  // the complaint is never an HB example
  EXPECT_EQ(complaint.next.phase, Phase::kFeedbackRequested);

  // While a request is pending, nothing is scored: the message is the feedback.
  ModelRequest need = plan(complaint.next, "maybe ask me about french food?");
  EXPECT_FALSE(need.satisfaction_context.has_value());
  EXPECT_FALSE(need.reply_context.has_value());
  Outcome fb = step(complaint.next, "maybe ask me about french food?", std::nullopt, "");
  EXPECT_EQ(fb.kind, ReplyKind::kThanksNewTopic);
  EXPECT_EQ(fb.bot_text, "Thanks! I'll try to remember that. Can you pick a new topic for us to talk about now?");
  EXPECT_EQ(fb.user_turn_phase, Phase::kFeedbackRequested);
  ASSERT_EQ(fb.examples.size(), 1u);
  EXPECT_EQ(fb.examples[0].kind, ExampleKind::kFB);
  // Up to and including the user utterance the bot answered badly; not the bad answer,
  // the complaint or the request.
  EXPECT_EQ(fb.examples[0].context, "__p2__ have you been to france? __p1__ yes i have! it's beautiful.");
  EXPECT_EQ(fb.examples[0].target, "maybe ask me about french food?");
  EXPECT_TRUE(fb.next.history.empty());
  EXPECT_EQ(fb.next.phase, Phase::kNewTopicRequested);

  // The new topic starts a fresh context and is not judged.
  need = plan(fb.next, "let's talk about music");
  EXPECT_FALSE(need.satisfaction_context.has_value());
  EXPECT_EQ(need.reply_context, "__p1__ let's talk about music");
  Outcome topic = step(fb.next, "let's talk about music", std::nullopt, "i love jazz.");
  EXPECT_EQ(topic.kind, ReplyKind::kAnswer);
  EXPECT_EQ(topic.next.phase, Phase::kNormal);
  EXPECT_EQ(topic.next.history, (std::vector<std::string>{"let's talk about music", "i love jazz."}));
}

// Past PolicyOptions::max_feedback_requests the bot answers, and learns nothing from a reply
// it was unhappy with: neither a request nor an imitation target.
TEST(PolicyTest, AConversationIsAskedForFeedbackAtMostTheLimitThroughNewTopicsAndRestarts) {
  PolicyOptions capped;
  capped.max_feedback_requests = 2;
  State s = step(State{}, "hi", std::nullopt, "hello", capped).next;
  for (int ask = 1; ask <= 2; ++ask) {
    const Outcome asked = step(s, "what ?", 0.1, "unused", capped);
    ASSERT_EQ(asked.kind, ReplyKind::kFeedbackRequest);
    EXPECT_FALSE(asked.request_held_back);
    EXPECT_EQ(asked.next.feedback_requests, static_cast<std::uint32_t>(ask));
    const Outcome thanked = step(asked.next, "you could have said hi", std::nullopt, "unused", capped);
    ASSERT_EQ(thanked.examples.size(), 1u);
    // Saved and loaded between messages, as the server does, and the user resets once.
    auto loaded = State::parse(thanked.next.serialize());
    ASSERT_TRUE(loaded.ok());
    s = step(ask == 1 ? reset(*loaded) : *loaded, "let us talk about dogs", std::nullopt, "i love dogs", capped).next;
    EXPECT_EQ(s.feedback_requests, static_cast<std::uint32_t>(ask));
  }
  const Outcome held = step(s, "that makes no sense", 0.1, "sorry , dogs are great", capped);
  EXPECT_EQ(held.kind, ReplyKind::kAnswer);
  EXPECT_TRUE(held.request_held_back);
  EXPECT_EQ(held.bot_text, "sorry , dogs are great");
  EXPECT_TRUE(held.examples.empty()) << "an unhappy reply is no imitation target";
  EXPECT_EQ(held.next.feedback_requests, 2u);
  // Satisfied replies are still harvested.
  const Outcome liked = step(held.next, "yes they are", 0.9, "mine is called rex", capped);
  ASSERT_EQ(liked.examples.size(), 1u);
  EXPECT_EQ(liked.examples[0].kind, ExampleKind::kHB);
  EXPECT_FALSE(liked.request_held_back);
  // Without a limit (the default) it asks again.
  EXPECT_EQ(step(s, "that makes no sense", 0.1, "unused").kind, ReplyKind::kFeedbackRequest);
}

// The caller's own limit (the user's requests in a day, across conversations) stops a turn
// from asking, whatever the conversation has asked.
TEST(PolicyTest, ATurnThatMayNotAskIsAnsweredAndHarvestsNothing) {
  PolicyOptions spent;
  spent.may_ask = false;
  const State s = step(State{}, "hi", std::nullopt, "hello").next;
  const Outcome held = step(s, "that makes no sense", 0.1, "sorry , my mistake", spent);
  EXPECT_EQ(held.kind, ReplyKind::kAnswer);
  EXPECT_TRUE(held.request_held_back);
  EXPECT_EQ(held.bot_text, "sorry , my mistake");
  EXPECT_TRUE(held.examples.empty());
  EXPECT_EQ(held.next.feedback_requests, 0u);
  const Outcome liked = step(s, "ha , yes", 0.9, "great", spent);
  ASSERT_EQ(liked.examples.size(), 1u);
  EXPECT_EQ(liked.examples[0].kind, ExampleKind::kHB);
  EXPECT_FALSE(liked.request_held_back);
  EXPECT_EQ(step(s, "that makes no sense", 0.1, "unused").kind, ReplyKind::kFeedbackRequest);
}

// A judged turn the caller drew asks the user to rate the bot's previous answer beside the
// reply, a feedback request too, at most PolicyOptions::max_rating_requests times in a
// conversation, through resets and restarts.
TEST(PolicyTest, ADrawnTurnAsksForARatingUpToTheLimit) {
  PolicyOptions options;
  options.max_rating_requests = 2;
  options.rating_drawn = true;
  State s = step(State{}, "hi", std::nullopt, "hello", options).next;
  EXPECT_EQ(s.rating_requests, 0u) << "nothing was judged on the first message";
  PolicyOptions not_drawn = options;
  not_drawn.rating_drawn = false;
  EXPECT_FALSE(step(s, "yes i do", 0.7, "great", not_drawn).rating_requested);
  PolicyOptions spent = options;
  spent.may_ask = false;
  EXPECT_FALSE(step(s, "yes i do", 0.7, "great", spent).rating_requested) << "the user was asked enough today";
  const Outcome asked_feedback = step(s, "what ?", 0.1, "unused", options);
  EXPECT_EQ(asked_feedback.kind, ReplyKind::kFeedbackRequest);
  EXPECT_TRUE(asked_feedback.rating_requested) << "whether the estimate was right to ask";
  EXPECT_EQ(asked_feedback.next.rating_requests, 1u);
  EXPECT_EQ(step(asked_feedback.next, "you could have said hi", std::nullopt, "unused", options).next.rating_requests, 1u);

  const Outcome first = step(s, "yes i do , what ?", 0.7, "i like dogs", options);
  EXPECT_EQ(first.kind, ReplyKind::kAnswer);
  EXPECT_TRUE(first.rating_requested);
  ASSERT_EQ(first.examples.size(), 1u) << "the reply is harvested as it would be without the request";
  EXPECT_EQ(first.next.rating_requests, 1u);
  auto loaded = State::parse(reset(first.next).serialize());
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->rating_requests, 1u);
  s = step(*loaded, "let us talk about cats", std::nullopt, "i have a cat", options).next;
  const Outcome second = step(s, "hm , nice", 0.5, "what is yours called ?", options);
  EXPECT_TRUE(second.rating_requested) << "the threshold itself answers too";
  const Outcome third = step(second.next, "ok", 0.6, "mine is tom", options);
  EXPECT_FALSE(third.rating_requested);
  EXPECT_EQ(third.next.rating_requests, 2u);
  EXPECT_FALSE(step(s, "hm , nice", 0.5, "unused", kOptions).rating_requested) << "off by default";
}

TEST(PolicyTest, ThresholdIsStrictOnBothSides) {
  State s = step(State{}, "hi", std::nullopt, "hello").next;
  Outcome at = step(s, "ok", 0.5, "fine");
  EXPECT_EQ(at.kind, ReplyKind::kAnswer);
  EXPECT_TRUE(at.examples.empty());
  PolicyOptions strict{.satisfaction_threshold = 0.9};
  auto out = decide(s, "ok", 0.8, std::string("fine"), strict);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->kind, ReplyKind::kFeedbackRequest);
}

TEST(PolicyTest, MissingModelOutputsAreErrors) {
  State s = step(State{}, "hi", std::nullopt, "hello").next;
  EXPECT_EQ(decide(s, "ok", std::nullopt, std::string("x"), kOptions).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decide(s, "ok", 0.9, std::nullopt, kOptions).status().code(), StatusCode::kInvalidArgument);
}

TEST(PolicyTest, StateRoundTripsAndResetKeepsOnlyTheLastAnswerAndTheQuestionsAsked) {
  State s = step(State{}, "hi", std::nullopt, "hello . how are you ?").next;
  s = step(s, "what?", 0.1, "unused").next;
  auto parsed = State::parse(s.serialize());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, s);
  EXPECT_EQ(State::parse("{\"phase\": \"nope\"}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(State::parse("not json").status().code(), StatusCode::kInvalidArgument);
  State fresh = reset(s);
  EXPECT_EQ(fresh.phase, Phase::kNormal);
  EXPECT_TRUE(fresh.history.empty());
  EXPECT_TRUE(fresh.feedback_context.empty());
  EXPECT_EQ(fresh.last_bot_answer, "hello . how are you ?");
  EXPECT_EQ(fresh.asked_questions, std::vector<std::string>{"how are you ?"});
}

// The context of an earlier answer, from the transcript: the last two utterances before
// it, cut where the bot's thanks for feedback started a new topic.
TEST(AnswerContextTest, TheTurnsBeforeTheAnswerBackToANewTopic) {
  auto turn = [](Speaker speaker, std::string text, Phase phase = Phase::kNormal) {
    return Turn{.speaker = speaker, .text = std::move(text), .phase = phase};
  };
  const std::vector<Turn> talk = {turn(Speaker::kUser, "hi"), turn(Speaker::kBot, "hello !"),
                                  turn(Speaker::kUser, "do you like dogs ?")};
  EXPECT_EQ(answer_context(talk), "__p2__ hello ! __p1__ do you like dogs ?");
  EXPECT_EQ(answer_context(std::span<const Turn>(talk).first(1)), "__p1__ hi");
  EXPECT_EQ(answer_context({}), "__null__");
  const std::vector<Turn> after_feedback = {turn(Speaker::kUser, "you could have said hi", Phase::kFeedbackRequested),
                                            turn(Speaker::kBot, "thanks ! pick a new topic", Phase::kNewTopicRequested),
                                            turn(Speaker::kUser, "kites", Phase::kNewTopicRequested)};
  EXPECT_EQ(answer_context(after_feedback), "__p1__ kites");
  std::vector<Turn> after_reset = talk;
  after_reset[1].ends_topic = true;  // the user reset the conversation after the bot's "hello !"
  EXPECT_EQ(answer_context(after_reset), "__p1__ do you like dogs ?");
}

// Preference pairs from a transcript: an answer the bot asked feedback about, one the user
// suggested another answer for, and one nobody corrected.
TEST(PreferencePairsTest, EachAnswerCorrectedByFeedbackOrASuggestion) {
  auto turn = [](std::uint32_t index, Speaker speaker, std::string text, Phase phase = Phase::kNormal) {
    return Turn{.index = index, .speaker = speaker, .text = std::move(text), .phase = phase, .model_version = "v1"};
  };
  std::vector<Turn> turns = {turn(0, Speaker::kUser, "hi"),
                             turn(1, Speaker::kBot, "i like cheese ."),
                             turn(2, Speaker::kUser, "what ?"),
                             turn(3, Speaker::kBot, "oops ! what could i have said ?", Phase::kFeedbackRequested),
                             turn(4, Speaker::kUser, "hello !", Phase::kFeedbackRequested),
                             turn(5, Speaker::kBot, "thanks ! new topic ?", Phase::kNewTopicRequested),
                             turn(6, Speaker::kUser, "dogs", Phase::kNewTopicRequested),
                             turn(7, Speaker::kBot, "i have a cat ."),
                             turn(8, Speaker::kUser, "ok"),
                             turn(9, Speaker::kBot, "nice .")};
  turns[7].suggestion = "i love dogs !";
  turns[7].thumbs_up = false;
  turns[7].dislike_reason = DislikeReason::kOffTopic;
  turns[1].dislike_reason = DislikeReason::kOther;  // with no thumbs down: not a reason
  turns[9].suggestion = "nice .";  // the answer itself: no pair
  const std::vector<PreferencePair> pairs = preference_pairs(turns);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].answer_turn, 1u);
  EXPECT_EQ(pairs[0].context, "__p1__ hi");
  EXPECT_EQ(pairs[0].chosen, "hello !");
  EXPECT_EQ(pairs[0].rejected, "i like cheese .");
  EXPECT_FALSE(pairs[0].suggested);
  EXPECT_EQ(pairs[0].rejected_because, std::nullopt);
  EXPECT_EQ(pairs[1].answer_turn, 7u);
  EXPECT_EQ(pairs[1].context, "__p1__ dogs");
  EXPECT_EQ(pairs[1].chosen, "i love dogs !");
  EXPECT_EQ(pairs[1].model_version, "v1");
  EXPECT_TRUE(pairs[1].suggested);
  EXPECT_EQ(pairs[1].rejected_because, DislikeReason::kOffTopic);
}

}  // namespace
}  // namespace selffeed::feedback
