#include "selffeed/feedback/policy.h"

#include <iterator>

#include <nlohmann/json.hpp>

#include "selffeed/common/context.h"

namespace selffeed::feedback {
namespace {

std::vector<std::string> with(std::vector<std::string> history, std::string_view text) {
  history.emplace_back(text);
  return history;
}

// Keeps the last State::kRememberedUtterances elements.
void keep_recent(std::vector<std::string>& items) {
  if (items.size() > State::kRememberedUtterances) {
    items.erase(items.begin(), items.end() - static_cast<std::ptrdiff_t>(State::kRememberedUtterances));
  }
}

// The bot's answers in a topic's history: every second utterance, ending with the last.
std::vector<std::string> answers_in(const std::vector<std::string>& history) {
  std::vector<std::string> answers;
  for (std::size_t i = history.size() % 2 == 0 ? 1 : 0; i < history.size(); i += 2) answers.push_back(history[i]);
  return answers;
}

// Drops the history for a new topic; the bot's answers in it move to earlier_answers.
void start_new_topic(State& state) {
  std::ranges::move(answers_in(state.history), std::back_inserter(state.earlier_answers));
  keep_recent(state.earlier_answers);
  state.history.clear();
}

std::string fill(const std::string& pattern, std::string_view value) {
  std::string out = pattern;
  if (std::size_t at = out.find("{}"); at != std::string::npos) out.replace(at, 2, value);
  return out;
}

}  // namespace

std::string_view reply_kind_name(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kAnswer: return "answer";
    case ReplyKind::kFeedbackRequest: return "feedback_request";
    case ReplyKind::kThanksNewTopic: return "thanks_new_topic";
  }
  return "unknown";
}

std::string State::serialize() const {
  return nlohmann::json{{"phase", phase_name(phase)},
                        {"history", history},
                        {"last_bot_answer", last_bot_answer},
                        {"earlier_answers", earlier_answers},
                        {"asked_questions", asked_questions},
                        {"bot_name", bot_name},
                        {"bot_occupation", bot_occupation},
                        {"persona", persona},
                        {"learn", learn},
                        {"feedback_context", feedback_context},
                        {"feedback_requests", feedback_requests},
                        {"rating_requests", rating_requests}}
      .dump();
}

Result<State> State::parse(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument_error("policy state is not a JSON object");
  State s;
  try {
    std::optional<Phase> phase = parse_phase(j.at("phase").get<std::string>());
    if (!phase) return invalid_argument_error("policy state has an unknown phase");
    s.phase = *phase;
    s.history = j.at("history").get<std::vector<std::string>>();
    s.last_bot_answer = j.at("last_bot_answer").get<std::string>();
    // Absent from the states that servers before them stored.
    s.earlier_answers = j.value("earlier_answers", std::vector<std::string>{});
    s.asked_questions = j.value("asked_questions", std::vector<std::string>{});
    s.bot_name = j.value("bot_name", std::string());
    s.bot_occupation = j.value("bot_occupation", std::string());
    s.persona = j.value("persona", std::vector<std::string>{});
    s.learn = j.value("learn", true);
    s.feedback_context = j.at("feedback_context").get<std::string>();
    s.feedback_requests = j.value("feedback_requests", std::uint32_t{0});
    s.rating_requests = j.value("rating_requests", std::uint32_t{0});
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument_error(std::string("malformed policy state: ") + e.what());
  }
  return s;
}

ModelRequest plan(const State& state, std::string_view user_text) {
  ModelRequest r;
  r.previous_reply = state.last_bot_answer;
  r.asked_questions = state.asked_questions;
  r.bot_name = state.bot_name;
  r.bot_occupation = state.bot_occupation;
  r.persona = state.persona;
  r.own_answers = state.earlier_answers;
  std::ranges::move(answers_in(state.history), std::back_inserter(r.own_answers));
  r.may_greet = state.last_bot_answer.empty() || opens_with_greeting(user_text);
  switch (state.phase) {
    case Phase::kFeedbackRequested:
      break;  // the message is the feedback; the reply is the fixed thanks prompt
    case Phase::kNewTopicRequested:
    case Phase::kRatingRequested:
      r.reply_context = format_context(std::vector<std::string>{std::string(user_text)});
      r.earlier_utterances = state.earlier_answers;
      break;
    case Phase::kNormal:
      r.reply_context = format_context(with(state.history, user_text));
      r.earlier_utterances = state.earlier_answers;
      r.earlier_utterances.insert(r.earlier_utterances.end(), state.history.begin(), state.history.end());
      // Never on the first message: there is no bot answer to be unhappy with.
      if (state.learn && !state.history.empty()) {
        r.satisfaction_context = format_context(std::vector<std::string>{state.history.back(), std::string(user_text)});
      }
      break;
  }
  return r;
}

Result<Outcome> decide(const State& state, std::string_view user_text, std::optional<double> satisfaction,
                       std::optional<std::string> ranked_reply, const PolicyOptions& options) {
  const ModelRequest need = plan(state, user_text);
  if (need.satisfaction_context && !satisfaction) return invalid_argument_error("a satisfaction score is required");
  if (need.reply_context && !ranked_reply) return invalid_argument_error("a ranked reply is required");

  Outcome out;
  out.user_turn_phase = state.phase;
  out.next = state;
  auto answer = [&](std::vector<std::string> history) {
    out.kind = ReplyKind::kAnswer;
    out.bot_text = *ranked_reply;
    history.push_back(*ranked_reply);
    keep_recent(history);
    for (std::string_view q : questions_in(*ranked_reply)) out.next.asked_questions.emplace_back(q);
    keep_recent(out.next.asked_questions);
    if (out.next.bot_name.empty()) out.next.bot_name = self_given_name(*ranked_reply);
    if (out.next.bot_occupation.empty()) out.next.bot_occupation = self_stated_occupation(*ranked_reply);
    out.next.phase = Phase::kNormal;
    out.next.history = std::move(history);
    out.next.last_bot_answer = *ranked_reply;
    out.next.feedback_context.clear();
  };

  switch (state.phase) {
    case Phase::kFeedbackRequested: {
      // The paper's FEEDBACK example: the context before the mistake, the feedback as
      // target. The bad answer, the complaint and the request are not in it.
      out.examples.push_back(
          Example{.kind = ExampleKind::kFB, .context = state.feedback_context, .target = std::string(user_text)});
      out.kind = ReplyKind::kThanksNewTopic;
      out.bot_text = options.thanks_new_topic;
      out.next.phase = Phase::kNewTopicRequested;
      start_new_topic(out.next);
      out.next.feedback_context.clear();
      return out;
    }
    case Phase::kNewTopicRequested:
    case Phase::kRatingRequested:
      answer({std::string(user_text)});
      return out;
    case Phase::kNormal:
      break;
  }

  // Whatever the estimate says: the ratings of the answers it called unsatisfied are the
  // ones that tell whether its feedback requests were right.
  if (satisfaction && options.rating_drawn && options.may_ask && state.rating_requests < options.max_rating_requests) {
    out.rating_requested = true;
    ++out.next.rating_requests;
  }
  const bool unsatisfied = satisfaction && *satisfaction < options.satisfaction_threshold;
  const bool conversation_asked_enough =
      options.max_feedback_requests > 0 && state.feedback_requests >= options.max_feedback_requests;
  if (unsatisfied && (!options.may_ask || conversation_asked_enough)) {
    out.request_held_back = true;
    answer(with(state.history, user_text));
    return out;
  }
  if (unsatisfied) {
    // history ends with the bad answer; everything before it is the FB context.
    std::vector<std::string> before(state.history.begin(), state.history.end() - 1);
    out.kind = ReplyKind::kFeedbackRequest;
    out.bot_text = fill(options.feedback_request, before.empty() ? std::string_view() : std::string_view(before.back()));
    out.next.phase = Phase::kFeedbackRequested;
    out.next.feedback_context = format_context(before);
    ++out.next.feedback_requests;
    return out;
  }
  if (satisfaction && *satisfaction > options.satisfaction_threshold) {
    // HB example: imitate the user's reply to the bot's answer.
    out.examples.push_back(Example{.kind = ExampleKind::kHB,
                                   .context = format_context(state.history),
                                   .target = std::string(user_text),
                                   .satisfaction = *satisfaction});
  }
  answer(with(state.history, user_text));
  return out;
}

std::string answer_context(std::span<const Turn> before) {
  std::vector<std::string> history;
  for (auto it = before.rbegin(); it != before.rend() && history.size() < kDefaultHistorySize; ++it) {
    if ((it->speaker == Speaker::kBot && it->phase != Phase::kNormal) || it->ends_topic) break;
    history.insert(history.begin(), it->text);
  }
  return format_context(history);
}

std::int64_t corrected_answer_turn(const Example& feedback) {
  if (feedback.source == kFromSuggestion) return feedback.turn_index;
  return feedback.turn_index - static_cast<std::int64_t>(kFeedbackTurnsAfterAnswer);
}

std::vector<PreferencePair> preference_pairs(std::span<const Turn> turns) {
  std::vector<PreferencePair> out;
  for (std::size_t i = 0; i < turns.size(); ++i) {
    const Turn& answer = turns[i];
    if (answer.speaker != Speaker::kBot || answer.phase != Phase::kNormal) continue;
    auto add = [&](const std::string& chosen, bool suggested) {
      if (chosen == answer.text) return;
      out.push_back({.answer_turn = answer.index,
                     .context = answer_context(turns.first(i)),
                     .chosen = chosen,
                     .rejected = answer.text,
                     .model_version = answer.model_version,
                     .suggested = suggested,
                     .rejected_because = answer.thumbs_up && !*answer.thumbs_up ? answer.dislike_reason
                                                                               : std::nullopt});
    };
    const std::size_t feedback = i + kFeedbackTurnsAfterAnswer;
    if (feedback < turns.size() && turns[feedback - 1].speaker == Speaker::kBot &&
        turns[feedback - 1].phase == Phase::kFeedbackRequested && turns[feedback].speaker == Speaker::kUser) {
      add(turns[feedback].text, false);
    }
    if (answer.suggestion) add(*answer.suggestion, true);
  }
  return out;
}

State reset(const State& state) {
  State s;
  s.history = state.history;
  s.earlier_answers = state.earlier_answers;
  start_new_topic(s);
  s.last_bot_answer = state.last_bot_answer;
  s.asked_questions = state.asked_questions;
  s.bot_name = state.bot_name;
  s.bot_occupation = state.bot_occupation;
  s.persona = state.persona;
  s.learn = state.learn;
  s.feedback_requests = state.feedback_requests;
  s.rating_requests = state.rating_requests;
  return s;
}

State with_learning(const State& state, bool learn) {
  State s = state;
  s.learn = learn;
  if (!learn && s.phase == Phase::kFeedbackRequested) {
    s.phase = Phase::kNormal;
    s.feedback_context.clear();
  }
  return s;
}

}  // namespace selffeed::feedback
