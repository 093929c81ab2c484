// selffeed::feedback: the self-feeding policy, as pure logic (no I/O, no model).
//
// Per conversation, a small state machine (paper section 1.6): NORMAL, then
// FEEDBACK_REQUESTED when the user seems unsatisfied, then NEWTOPIC_REQUESTED after the
// feedback, then NORMAL again. It decides what the bot says and which examples to harvest.
// The caller runs the models in between:
//
//   ModelRequest need = plan(state, user_text);          // what to score and rank
//   ... satisfaction = score(need.satisfaction_context); reply = rank(need.reply_context) ...
//   Outcome out = decide(state, user_text, satisfaction, reply, options);
//   persist(out.examples, out.next.serialize()); send(out.bot_text);
//
// Thread safety: free functions over values; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "selffeed/common/records.h"
#include "selffeed/common/status.h"

namespace selffeed::feedback {

struct PolicyOptions {
  // Feedback is requested when the satisfaction estimate is below this; the user's reply
  // is harvested as an HB example when it is above. Default: 0.5 (the paper's code).
  double satisfaction_threshold = 0.5;
  // "{}" is replaced by the user utterance the bot answered badly. Default: the wording
  // used to collect the paper's data.
  std::string feedback_request =
      "Oops! I think I messed up. Whether I messed up or not, what could I have said (in response to \"{}\")?";
  std::string thanks_new_topic = "Thanks! I'll try to remember that. Can you pick a new topic for us to talk about now?";
  // At most this many feedback requests in one conversation; 0: no limit. Past it, a reply
  // the estimate calls unsatisfied is answered as usual and harvested as nothing (it is
  // no imitation target either): the original code's "Oops! I think I messed up" on
  // almost every turn is what users complained of (ParlAI#2572).
  std::uint32_t max_feedback_requests = 0;
  // false: this turn may not ask, because a limit the caller keeps across conversations
  // (the user's requests in a day) is spent; an unsatisfied reply is answered as past
  // max_feedback_requests.
  bool may_ask = true;
  // At most this many rating requests in one conversation; 0: none. A rating request asks
  // the user to rate the bot's previous answer (thumbs), beside the reply to their message
  // (an answer or a feedback request), when the turn was judged and `rating_drawn` and may
  // ask.
  std::uint32_t max_rating_requests = 0;
  // The caller drew this turn for a rating request. A draw, not a rule about the reply: the
  // thumbs are the estimator's dev set in the wild, which a rule would bias (and replies the
  // labeling functions disagree on taught a worse model than a random sample, EVALUATION.md).
  bool rating_drawn = false;
};

enum class ReplyKind { kAnswer, kFeedbackRequest, kThanksNewTopic };
std::string_view reply_kind_name(ReplyKind kind);  // "answer", "feedback_request", "thanks_new_topic"

// Everything the policy remembers about one conversation; serialize() for the store.
struct State {
  Phase phase = Phase::kNormal;
  // Utterances since the last reset, oldest first; user and bot alternate, the bot's
  // last answer (if any) at the end. At most kRememberedUtterances: contexts use the last
  // two, and the rest only keeps the bot from repeating itself.
  static constexpr std::size_t kRememberedUtterances = 32;
  std::vector<std::string> history;
  // The bot's last answer, for the previous-response filter; survives resets.
  std::string last_bot_answer;
  // The bot's answers from before the last new topic (the history forgets them), the last
  // kRememberedUtterances: it does not give them again either.
  std::vector<std::string> earlier_answers;
  // Whether the conversation teaches the bot. false (the user said so in hello): nothing is
  // harvested, no satisfaction is estimated and the bot never asks for feedback; it
  // survives resets.
  bool learn = true;
  // The questions the bot asked in this conversation (questions_in its answers), the last
  // kRememberedUtterances of them; they survive resets: a new topic is no reason to ask a
  // person's name again.
  std::vector<std::string> asked_questions;
  // The name the bot first gave itself in this conversation (self_given_name of its
  // answers), or empty; it survives resets: the bot keeps one name.
  std::string bot_name;
  // The occupation it first gave itself (self_stated_occupation), or empty; likewise.
  std::string bot_occupation;
  // The bot's persona in this conversation (hello "persona"), or empty for the server's;
  // it survives resets.
  std::vector<std::string> persona;
  // FEEDBACK_REQUESTED only: the context up to and including the user utterance the bot
  // answered badly; the target of the FB example is the feedback that comes next.
  std::string feedback_context;
  // How often the bot asked for feedback in this conversation; survives resets.
  std::uint32_t feedback_requests = 0;
  // How often it asked the user to rate an answer (PolicyOptions::max_rating_requests);
  // survives resets.
  std::uint32_t rating_requests = 0;

  std::string serialize() const;
  // kInvalidArgument for text that serialize() did not produce.
  static Result<State> parse(std::string_view text);
  friend bool operator==(const State&, const State&) = default;
};

// What the models must compute for the user's next message.
struct ModelRequest {
  // Satisfaction of the user with the bot's previous answer: "__p2__ <bot> __p1__ <user>".
  std::optional<std::string> satisfaction_context;
  // Context to rank a reply for; empty when the bot's reply is a fixed prompt.
  std::optional<std::string> reply_context;
  std::string previous_reply;  // never offered again as the top answer
  // The conversation so far (State::earlier_answers, then State::history): replies that
  // repeat one of these are offered only when nothing else is left.
  std::vector<std::string> earlier_utterances;
  // State::asked_questions: replies that ask one of these again, likewise.
  std::vector<std::string> asked_questions;
  // State::bot_name and bot_occupation: replies that give the bot another name or
  // occupation, likewise.
  std::string bot_name;
  std::string bot_occupation;
  // false once the bot has answered in the conversation, unless the user's message greets:
  // replies that open with a greeting, likewise.
  bool may_greet = true;
  // State::persona: replies about these facts rank higher.
  std::vector<std::string> persona;
  // The bot's answers among the above: replies that contradict the pets, family or
  // favorites it gave itself there are offered only when nothing else is left.
  std::vector<std::string> own_answers;
};
ModelRequest plan(const State& state, std::string_view user_text);

struct Outcome {
  State next;
  ReplyKind kind = ReplyKind::kAnswer;
  std::string bot_text;  // what to send
  Phase user_turn_phase = Phase::kNormal;  // the phase the user's message arrived in
  // Harvested examples (kind, context, target, satisfaction filled in); the caller adds
  // ids, user, model version and time, and stores them with the turn.
  std::vector<Example> examples;
  // The estimate called for a feedback request, but the conversation had had
  // PolicyOptions::max_feedback_requests, or the turn might not ask (may_ask): answered
  // instead.
  bool request_held_back = false;
  // Besides the answer, the bot asks the user to rate its previous answer (the one this
  // message replied to).
  bool rating_requested = false;
};

// `satisfaction` must be set when plan() asked for it; `ranked_reply` when plan() asked
// for a reply. kInvalidArgument otherwise.
Result<Outcome> decide(const State& state, std::string_view user_text, std::optional<double> satisfaction,
                       std::optional<std::string> ranked_reply, const PolicyOptions& options);

// Starts a fresh topic without feedback (the user's "reset").
State reset(const State& state);

// The context a bot answer was chosen in, rebuilt from the transcript's turns before it
// (oldest first): the FB context of what the user says the bot could have said instead.
// A new topic or a feedback request (a bot turn not in the normal phase) cuts the history,
// as it did when the answer was chosen; a reset leaves no turn and so does not.
std::string answer_context(std::span<const Turn> before);

// The feedback to a feedback request comes this many turns after the answer it corrects:
// the answer, the user's reply, the bot's request, the feedback.
inline constexpr std::size_t kFeedbackTurnsAfterAnswer = 3;
// The turn of the answer an FB example corrects: it is kept at the feedback, or, for a
// suggestion, at the answer itself.
std::int64_t corrected_answer_turn(const Example& feedback);

// An answer the user would have had otherwise: in `context` the bot said `rejected`, and
// the user said it could have said `chosen`, in a suggest (`suggested`) or in answer to the
// bot's feedback request about it. What DPO-style fine-tuning reads.
struct PreferencePair {
  std::uint32_t answer_turn = 0;
  std::string context;
  std::string chosen;
  std::string rejected;
  std::string model_version;  // of the answer
  bool suggested = false;
  // Why the user rated the answer down, where they did and said.
  std::optional<DislikeReason> rejected_because;
};
// The pairs of one conversation's transcript (all its turns, in order): per answer, its
// latest suggestion and the feedback its request got, when they differ from the answer.
std::vector<PreferencePair> preference_pairs(std::span<const Turn> turns);

// The state with learning switched on or off. Switching it off drops a pending feedback
// request: the next message is answered, not taken as feedback that would not be kept.
State with_learning(const State& state, bool learn);

}  // namespace selffeed::feedback
