#include "selffeed/clients/simulator.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "selffeed/clients/clients.h"
#include "selffeed/common/context.h"

namespace selffeed::clients {
namespace {

using nlohmann::json;
constexpr auto kReplyTimeout = std::chrono::seconds(30);
constexpr auto kRateLimitedPause = std::chrono::milliseconds(250);
constexpr int kRateLimitedRetries = 40;

// A question as its lower-cased words, so that "What do you do?" and "what do you do ?" match.
std::string question_words(std::string_view question) {
  std::string joined;
  for (const std::string& w : lower_words(question)) joined += (joined.empty() ? "" : " ") + w;
  return joined;
}

// One simulated user: conversations i, i + users, i + 2 users, ...
class SimulatedUser {
 public:
  SimulatedUser(const SimulatorOptions& options, int index) : o_(options), index_(index), rng_(options.seed * 7919 + index) {}

  SimulationReport run() {
    for (int c = index_; c < o_.conversations; c += o_.users) {
      if (!converse(o_.dialogues[(o_.first_dialogue + static_cast<std::size_t>(c)) % o_.dialogues.size()], c)) {
        ++report_.errors;
      }
      ++report_.conversations;
    }
    return report_;
  }
  double f1_sum() const { return f1_sum_; }
  int judged() const { return judged_; }

 private:
  // Sends one request and returns the server's answer; nullopt when the connection failed.
  // A message the server dropped for the rate limit is sent again after a pause, as a
  // person would retype it.
  std::optional<json> exchange(WsClient& ws, const json& request) {
    for (int attempt = 0; attempt <= kRateLimitedRetries; ++attempt) {
      if (!ws.send_text(request.dump()).ok()) return std::nullopt;
      auto frame = ws.read(kReplyTimeout);
      if (!frame.ok()) return std::nullopt;
      json answer = json::parse(*frame, nullptr, false);
      if (!answer.is_object()) return std::nullopt;
      if (answer.value("type", "") != "error" || answer.value("code", "") != "rate_limited") return answer;
      ++report_.rate_limited;
      std::this_thread::sleep_for(kRateLimitedPause);
    }
    return std::nullopt;
  }

  // Says `text`; counts what the reply harvested.
  std::optional<json> say(WsClient& ws, const std::string& text) {
    auto reply = exchange(ws, {{"type", "message"}, {"text", text}});
    if (!reply || (*reply)["type"] != "reply") return std::nullopt;
    ++report_.user_messages;
    for (const auto& kind : (*reply)["harvested"]) {
      if (kind == "HB") ++report_.harvested_hb;
      if (kind == "FB") ++report_.harvested_fb;
    }
    return reply;
  }

  // Thumbs up or down on a bot turn, a thumbs down with `reason` when not empty; whether
  // the server kept it.
  bool rate(WsClient& ws, const json& turn, const char* value, const std::string& reason) {
    json message = {{"type", "rate"}, {"turn", turn}, {"value", value}};
    if (!reason.empty()) message["reason"] = reason;
    auto rated = exchange(ws, message);
    if (!rated || (*rated)["type"] != "rated") return false;
    if (reason == "repetitive") ++report_.repetitive_reasons;
    if (reason == "off_topic") ++report_.off_topic_reasons;
    return true;
  }

  // What the bot could have said instead of the answer at `turn`; whether the server kept it.
  bool suggest(WsClient& ws, std::int64_t turn, const std::string& text) {
    auto suggested = exchange(ws, {{"type", "suggest"}, {"turn", turn}, {"text", text}});
    return suggested && (*suggested)["type"] == "suggested";
  }

  bool converse(const SimulatedDialogue& dialogue, int number) {
    auto client = WsClient::connect(o_.url);
    if (!client.ok()) return false;
    WsClient& ws = **client;
    const int user_ids = o_.user_ids > 0 ? o_.user_ids : std::max(1, o_.users * 4);
    const int user_number = number % user_ids;
    const bool troll = user_number < o_.troll_user_ids;
    const std::string user = o_.user_prefix + (troll ? "-troll-" : "-") + std::to_string(user_number);
    json hello = {{"type", "hello"}, {"user_id", user}};
    if (!o_.conversation_prefix.empty()) {
      const std::size_t dialogue_number = o_.first_dialogue + static_cast<std::size_t>(number);
      hello["conversation_id"] = o_.conversation_prefix + "-" + std::to_string(dialogue_number);
    }
    if (o_.partner_persona && !dialogue.partner_persona.empty()) hello["persona"] = dialogue.partner_persona;
    auto welcome = exchange(ws, hello);
    if (!welcome || (*welcome)["type"] != "welcome") return false;
    std::uniform_int_distribution<std::size_t> pick(0, o_.complaints.size() - 1);
    std::uniform_real_distribution<double> coin(0, 1);
    // What the user teaches for the partner's line `reference`: a troll, any line of any dialogue.
    std::uniform_int_distribution<std::size_t> any_dialogue(0, o_.dialogues.size() - 1);
    auto teach = [&](const std::string& reference) -> const std::string& {
      if (!troll) return reference;
      const std::vector<std::string>& lines = o_.dialogues[any_dialogue(rng_)].lines;
      if (lines.empty()) return reference;
      ++report_.junk_taught;
      return lines[std::uniform_int_distribution<std::size_t>(0, lines.size() - 1)(rng_)];
    };

    std::string pending_reference;  // the reference of the line the bot answered last
    std::set<std::string> answered;  // the bot's answers so far in this conversation
    std::set<std::string> asked;     // and the questions in them
    std::string bot_name;            // the first name the bot gave itself
    std::string bot_occupation;      // and the first occupation
    std::map<std::int64_t, bool> poor_at;  // the bot's answers by turn: whether each was poor
    std::set<std::int64_t> repeated_at;    // the bot's answers that repeat it (an answer or a question)
    std::set<std::int64_t> rated;          // turns the user gave a thumbs already
    auto rate_once = [&](std::int64_t turn, const char* value) {
      if (!rated.insert(turn).second) return false;
      std::string reason;
      if (std::string_view(value) == "down" && o_.reason_rate > 0 && coin(rng_) < o_.reason_rate) {
        reason = repeated_at.contains(turn) ? "repetitive" : "off_topic";
      }
      return rate(ws, turn, value, reason);
    };
    // A reply may ask to rate one of the bot's answers before it.
    auto answer_rating_request = [&](const json& reply) {
      const json& requested = reply.contains("rating_request") ? reply["rating_request"] : json();
      if (!requested.is_number_integer()) return;
      const auto poor = poor_at.find(requested.get<std::int64_t>());
      if (poor == poor_at.end()) return;
      ++report_.rating_requests;
      if (rate_once(poor->first, poor->second ? "down" : "up")) {
        ++(poor->second ? report_.thumbs_down : report_.thumbs_up);
      }
    };
    int answers_here = 0;
    int said = 0;
    for (std::size_t i = 0; i + 1 < dialogue.lines.size() && said < o_.max_user_lines; i += 2, ++said) {
      auto reply = say(ws, dialogue.lines[i]);
      if (!reply) return false;
      answer_rating_request(*reply);
      const std::string& reference = dialogue.lines[i + 1];
      // A feedback request is answered with what the partner said to the line it quotes.
      while ((*reply)["kind"] == "feedback_request") {
        ++report_.feedback_requests;
        reply = say(ws, teach(pending_reference.empty() ? reference : pending_reference));
        if (!reply) return false;
      }
      if ((*reply)["kind"] == "thanks_new_topic") continue;  // the next line opens the new topic
      pending_reference = reference;
      ++report_.answers;
      const std::string& text = (*reply)["text"].get_ref<const std::string&>();
      const std::int64_t turn = (*reply)["turn"];
      const bool answered_again = !answered.insert(text).second;
      if (answered_again) ++report_.repeated_answers;
      bool asked_again = false;
      for (std::string_view q : questions_in(text)) asked_again |= !asked.insert(question_words(q)).second;
      if (asked_again) ++report_.repeated_questions;
      if (answered_again || asked_again) repeated_at.insert(turn);
      if (++answers_here > 1 && opens_with_greeting(text) && !opens_with_greeting(dialogue.lines[i])) {
        ++report_.greetings_mid_conversation;
      }
      if (const std::string name = self_given_name(text); !name.empty()) {
        if (bot_name.empty()) bot_name = name;
        if (name != bot_name) ++report_.renamed_bot;
      }
      if (const std::string occupation = self_stated_occupation(text); !occupation.empty()) {
        if (bot_occupation.empty()) bot_occupation = occupation;
        if (occupation != bot_occupation) ++report_.changed_occupation;
      }
      const double f1 = token_f1(text, reference);
      f1_sum_ += f1;
      ++judged_;
      poor_at[turn] = f1 < o_.poor_reply_f1;
      if (f1 >= o_.poor_reply_f1) {
        if (o_.thumbs_up_rate > 0 && coin(rng_) < o_.thumbs_up_rate && rate_once(turn, "up")) ++report_.thumbs_up;
        continue;
      }
      ++report_.poor_replies;
      if (coin(rng_) < o_.thumbs_rate && rate_once(turn, "down")) {
        ++report_.thumbs_down;
        if (o_.suggest_rate > 0 && coin(rng_) < o_.suggest_rate && suggest(ws, turn, teach(reference))) {
          ++report_.suggestions;
        }
      }
      ++report_.complaints;
      auto reaction = say(ws, o_.complaints[pick(rng_)]);
      if (!reaction) return false;
      answer_rating_request(*reaction);
      if ((*reaction)["kind"] == "feedback_request") {
        ++report_.feedback_requests;
        if (!say(ws, teach(reference))) return false;  // what the partner said to the line the bot fumbled
      } else if ((*reaction)["kind"] == "answer") {
        // The answer to the complaint is a second try at the same line: judged against the
        // same reference, so that the user can rate it when asked (the server's requests are
        // a sample of all answers; leaving these unrated would bias it).
        const std::string& retry = (*reaction)["text"].get_ref<const std::string&>();
        poor_at[(*reaction)["turn"].get<std::int64_t>()] = token_f1(retry, reference) < o_.poor_reply_f1;
      }
    }
    ws.close();
    return true;
  }

  const SimulatorOptions& o_;
  const int index_;
  std::mt19937_64 rng_;
  SimulationReport report_;
  double f1_sum_ = 0;
  int judged_ = 0;
};

}  // namespace

Result<SimulationReport> run_simulation(const SimulatorOptions& options) {
  if (options.dialogues.empty()) return invalid_argument_error("the simulator needs dialogues");
  if (options.complaints.empty()) return invalid_argument_error("the simulator needs dissatisfied reactions");
  const int users = std::max(1, options.users);
  std::vector<SimulatedUser> simulated;
  for (int u = 0; u < users; ++u) simulated.emplace_back(options, u);
  std::vector<SimulationReport> reports(static_cast<std::size_t>(users));
  std::vector<std::thread> threads;
  for (int u = 0; u < users; ++u) {
    threads.emplace_back([&, u] { reports[static_cast<std::size_t>(u)] = simulated[static_cast<std::size_t>(u)].run(); });
  }
  for (auto& t : threads) t.join();
  SimulationReport total;
  double f1_sum = 0;
  int judged = 0;
  for (int u = 0; u < users; ++u) {
    const SimulationReport& r = reports[static_cast<std::size_t>(u)];
    total.conversations += r.conversations;
    total.user_messages += r.user_messages;
    total.poor_replies += r.poor_replies;
    total.answers += r.answers;
    total.repeated_answers += r.repeated_answers;
    total.repeated_questions += r.repeated_questions;
    total.greetings_mid_conversation += r.greetings_mid_conversation;
    total.renamed_bot += r.renamed_bot;
    total.changed_occupation += r.changed_occupation;
    total.rate_limited += r.rate_limited;
    total.complaints += r.complaints;
    total.feedback_requests += r.feedback_requests;
    total.thumbs_down += r.thumbs_down;
    total.thumbs_up += r.thumbs_up;
    total.rating_requests += r.rating_requests;
    total.suggestions += r.suggestions;
    total.junk_taught += r.junk_taught;
    total.repetitive_reasons += r.repetitive_reasons;
    total.off_topic_reasons += r.off_topic_reasons;
    total.harvested_hb += r.harvested_hb;
    total.harvested_fb += r.harvested_fb;
    total.errors += r.errors;
    f1_sum += simulated[static_cast<std::size_t>(u)].f1_sum();
    judged += simulated[static_cast<std::size_t>(u)].judged();
  }
  total.mean_reply_f1 = judged > 0 ? f1_sum / judged : 0;
  if (total.errors == total.conversations && total.conversations > 0) {
    return unavailable_error("every simulated conversation failed; is the server at " + options.url + " running?");
  }
  return total;
}

}  // namespace selffeed::clients
