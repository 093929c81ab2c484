// The paper's regexes and the labeling functions: heuristics over the user's reply.
#include <re2/re2.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>

#include "selffeed/common/context.h"
#include "selffeed/dialogue/dialogue.h"
#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::satisfaction {
namespace {

// RE2 matches in time linear in the input: these run on untrusted user text.
RE2::Options case_insensitive() {
  RE2::Options options;
  options.set_case_sensitive(false);
  options.set_log_errors(false);
  return options;
}

// The six patterns of ParlAI's projects/self_feeding/feedback_classifier (paper 2.5).
const char* const kPaperPatterns[] = {
    R"(i .*(?:said|asked|told).*)",
    R"(((not|nt|n't).*mak.*sense)|(mak.*no .*sense))",
    R"(u(m|h)+\W)",
    R"(you.*what\?)",
    R"(what.*you (?:mean|refer|talk).*\?)",
    R"(what.*to do with.*\?)",
};

const std::set<std::string> kStopWords = {
    "i", "you", "a", "an", "the", "is", "are", "am", "to", "of", "and", "do", "it", "in", "my", "your", "me",
    "that", "what", "for", "on", "be", "have", "so", "?", ".", "!", ",", "'", "was", "with", "this", "how", "not",
    "but", "too", "we", "they", "he", "she", "at", "or", "just", "like", "i'm", "it's", "don't", "yes", "no"};

std::set<std::string> content_words(std::string_view text) {
  std::set<std::string> out;
  for (std::string& w : words_of(text)) {
    if (!kStopWords.count(w)) out.insert(std::move(w));
  }
  return out;
}

double overlap(const std::set<std::string>& a, const std::set<std::string>& b) {
  if (a.empty() || b.empty()) return 0;
  std::size_t common = 0;
  for (const std::string& w : a) common += b.count(w);
  return static_cast<double>(common) / static_cast<double>(std::min(a.size(), b.size()));
}

bool is_question(std::string_view text) { return text.find('?') != std::string_view::npos; }

// The user's previous utterance: the one the bot answered (last of history), if any.
const std::string* previous_user_utterance(const SatisfactionInput& in) {
  return in.history.empty() ? nullptr : &in.history.back();
}

std::vector<LabelingFunction> build() {
  std::vector<LabelingFunction> fs;
  fs.push_back({"paper_regex", "one of the paper's six complaint regexes matches the reply",
                [](const SatisfactionInput& in) {
                  return paper_regex_unsatisfied(in.user_reply) ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  fs.push_back({"confusion", "the reply expresses confusion or calls the bot out",
                [](const SatisfactionInput& in) {
                  static const RE2 re(
                      R"((^|\W)(what\s*\?|huh|wtf|\?\?|i don'?t understand|doesn'?t make sense|no sense|)"
                      R"(are you (a )?(bot|robot|stupid)|you'?re (a )?(bot|robot|stupid|dumb)|stupid|dumb|weird|)"
                      R"(nonsense|irrelevant|off topic|not what i asked))",
                      case_insensitive());
                  return RE2::PartialMatch(in.user_reply, re) ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  fs.push_back({"positive_reaction", "the reply reacts positively (laughs, agrees, compliments, thanks)",
                [](const SatisfactionInput& in) {
                  static const RE2 re(
                      R"((^|\W)(ha(ha)+|lol|cool|nice|great|awesome|wow|me too|same here|thanks?|thank you|)"
                      R"(sounds (good|fun|great|nice)|that'?s (good|great|nice|cool|awesome|interesting)|)"
                      R"(interesting|agree|exactly|of course|love that|:\)|:d)(\W|$))",
                      case_insensitive());
                  return RE2::PartialMatch(in.user_reply, re) ? Vote::kSatisfied : Vote::kAbstain;
                }});
  fs.push_back({"user_repeats_self", "the user repeats their previous message (the bot did not get it)",
                [](const SatisfactionInput& in) {
                  const std::string* prev = previous_user_utterance(in);
                  if (prev == nullptr) return Vote::kAbstain;
                  auto a = content_words(*prev), b = content_words(in.user_reply);
                  return a.size() >= 2 && overlap(a, b) >= 0.8 ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  fs.push_back({"bot_repeated", "the bot's answer repeats one of its earlier turns, or the user says so",
                [](const SatisfactionInput& in) {
                  static const RE2 re(R"(you (already|just) (said|told|asked)|(said|asked) that (already|before)|repeat)",
                                      case_insensitive());
                  if (RE2::PartialMatch(in.user_reply, re)) return Vote::kUnsatisfied;
                  // history ends with the user's message; the bot's earlier turns sit
                  // 2, 4, ... places back.
                  const std::string answer = dialogue::normalize_text(in.bot_reply);
                  for (std::size_t back = 2; back <= in.history.size(); back += 2) {
                    if (dialogue::normalize_text(in.history[in.history.size() - back]) == answer) return Vote::kUnsatisfied;
                  }
                  return Vote::kAbstain;
                }});
  fs.push_back({"minimal_reply", "the reply is only a question mark, 'hm', 'ok' or dots",
                [](const SatisfactionInput& in) {
                  static const RE2 re(R"(\s*(\?+|h+m+|o*k+a*y*|\.+|\?!+|u+h+|e+h+)\s*[.!?]*\s*)", case_insensitive());
                  return RE2::FullMatch(in.user_reply, re) ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  fs.push_back({"ignored_question", "the user had asked a question and the bot's answer shares no word with it",
                [](const SatisfactionInput& in) {
                  const std::string* prev = previous_user_utterance(in);
                  if (prev == nullptr || !is_question(*prev)) return Vote::kAbstain;
                  auto q = content_words(*prev);
                  if (q.empty()) return Vote::kAbstain;
                  return overlap(q, content_words(in.bot_reply)) == 0 ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  fs.push_back({"answers_bot_question", "the bot asked a question and the user answers it at some length",
                [](const SatisfactionInput& in) {
                  return is_question(in.bot_reply) && !is_question(in.user_reply) && words_of(in.user_reply).size() >= 4
                             ? Vote::kSatisfied
                             : Vote::kAbstain;
                }});
  fs.push_back({"follow_up_question", "the user asks a follow-up about what the bot said",
                [](const SatisfactionInput& in) {
                  if (!is_question(in.user_reply) || paper_regex_unsatisfied(in.user_reply)) return Vote::kAbstain;
                  return overlap(content_words(in.bot_reply), content_words(in.user_reply)) > 0 ? Vote::kSatisfied
                                                                                                 : Vote::kAbstain;
                }});
  fs.push_back({"engaged_reply", "a long reply (8+ words) that is not a complaint",
                [](const SatisfactionInput& in) {
                  return words_of(in.user_reply).size() >= 8 && !paper_regex_unsatisfied(in.user_reply)
                             ? Vote::kSatisfied
                             : Vote::kAbstain;
                }});
  fs.push_back({"why_what_opener", "the reply opens with 'what'/'why'/'who' although the bot asked nothing",
                [](const SatisfactionInput& in) {
                  static const RE2 re(R"(^\s*(what|why|who|how come)\b)", case_insensitive());
                  return !is_question(in.bot_reply) && RE2::PartialMatch(in.user_reply, re) ? Vote::kUnsatisfied
                                                                                              : Vote::kAbstain;
                }});
  fs.push_back({"evasive_answer", "the bot's answer dodges: it does not know, is not sure, or asks what was meant",
                [](const SatisfactionInput& in) {
                  static const RE2 re(
                      R"(\bi (do not|don'?t|dont) (know|understand)\b|\bnot sure\b|\bno idea\b|what do you mean)",
                      case_insensitive());
                  return RE2::PartialMatch(in.bot_reply, re) ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  fs.push_back({"user_leaves", "the user says goodbye or ends the chat right after this answer",
                [](const SatisfactionInput& in) {
                  static const RE2 re(R"(\b(bye|goodbye|see (you|ya))\b|^\s*[/\\](end|finish|exit)\b)",
                                      case_insensitive());
                  return RE2::PartialMatch(in.user_reply, re) ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  fs.push_back({"opening_turn", "one of the bot's first two answers (openers rarely go wrong, and users are fresh)",
                [](const SatisfactionInput& in) { return in.history.size() <= 2 ? Vote::kSatisfied : Vote::kAbstain; }});
  fs.push_back({"pleasantry", "the bot's answer greets the user or asks how they are (small talk rarely offends)",
                [](const SatisfactionInput& in) {
                  static const RE2 re(
                      R"(\b(hi|hello|hey|good (morning|afternoon|evening))\b|\bhow are (you|u)\b|)"
                      R"(\bhow (is|was) your (day|night|weekend)\b)",
                      case_insensitive());
                  return RE2::PartialMatch(in.bot_reply, re) ? Vote::kSatisfied : Vote::kAbstain;
                }});
  fs.push_back({"thumbs", "the user's explicit thumbs on the answer",
                [](const SatisfactionInput& in) {
                  if (!in.thumbs) return Vote::kAbstain;
                  return *in.thumbs == 1 ? Vote::kSatisfied : Vote::kUnsatisfied;
                }});
  fs.push_back({"model_uncertainty", "the dialogue model itself found the bot's answer unlikely (< 0.2)",
                [](const SatisfactionInput& in) {
                  if (!in.bot_confidence) return Vote::kAbstain;
                  return *in.bot_confidence < 0.2 ? Vote::kUnsatisfied : Vote::kAbstain;
                }});
  return fs;
}

}  // namespace

std::string satisfaction_context(const SatisfactionInput& in) {
  return format_context(std::vector<std::string>{in.bot_reply, in.user_reply});
}

bool paper_regex_unsatisfied(std::string_view user_reply) {
  static const std::vector<std::unique_ptr<RE2>> patterns = [] {
    std::vector<std::unique_ptr<RE2>> v;
    for (const char* p : kPaperPatterns) v.push_back(std::make_unique<RE2>(p, case_insensitive()));
    return v;
  }();
  for (const auto& re : patterns) {
    if (RE2::PartialMatch(user_reply, *re)) return true;
  }
  return false;
}

const std::vector<LabelingFunction>& labeling_functions() {
  static const std::vector<LabelingFunction> functions = build();
  return functions;
}

std::vector<Vote> apply_labeling_functions(const SatisfactionInput& in) {
  return apply_labeling_functions(labeling_functions(), in);
}

std::vector<Vote> apply_labeling_functions(std::span<const LabelingFunction> functions, const SatisfactionInput& in) {
  std::vector<Vote> votes;
  votes.reserve(functions.size());
  for (const LabelingFunction& f : functions) votes.push_back(f.apply(in));
  return votes;
}

std::vector<std::string> names_of(std::span<const LabelingFunction> functions) {
  std::vector<std::string> names;
  for (const LabelingFunction& f : functions) names.push_back(f.name);
  return names;
}

Result<LabelingFunction> pattern_labeling_function(std::string name, Vote vote, PatternField field,
                                                   const std::string& pattern) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      })) {
    return invalid_argument_error("labeling function name '" + name + "': use a-z, 0-9 and _");
  }
  if (vote == Vote::kAbstain) return invalid_argument_error("labeling function " + name + " must vote");
  auto re = std::make_shared<const RE2>(pattern, case_insensitive());
  if (!re->ok()) return invalid_argument_error("labeling function " + name + ": bad pattern: " + re->error());
  const bool on_reply = field == PatternField::kUserReply;
  std::string description = std::string("the pattern ") + pattern + " matches the " +
                            (on_reply ? "user's reply" : "bot's answer") + " (" +
                            (vote == Vote::kSatisfied ? "satisfied" : "unsatisfied") + ")";
  return LabelingFunction{std::move(name), std::move(description), [re, vote, on_reply](const SatisfactionInput& in) {
                            return RE2::PartialMatch(on_reply ? in.user_reply : in.bot_reply, *re) ? vote
                                                                                                  : Vote::kAbstain;
                          }};
}

Result<std::vector<LabelingFunction>> load_labeling_functions(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read labeling functions from " + path);
  std::set<std::string> names;
  for (const LabelingFunction& f : labeling_functions()) names.insert(f.name);
  std::vector<LabelingFunction> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string where = path + ":" + std::to_string(number) + ": ";
    std::istringstream fields(line);
    std::string name, vote, field;
    if (!(fields >> name) || name.starts_with('#')) continue;
    std::string pattern;
    if (!(fields >> vote >> field) || !std::getline(fields >> std::ws, pattern) || pattern.empty()) {
      return invalid_argument_error(where + "expected NAME VOTE FIELD PATTERN");
    }
    if (vote != "satisfied" && vote != "unsatisfied") {
      return invalid_argument_error(where + "the vote is satisfied or unsatisfied, not '" + vote + "'");
    }
    if (field != "reply" && field != "answer") {
      return invalid_argument_error(where + "the field is reply or answer, not '" + field + "'");
    }
    if (!names.insert(name).second) return invalid_argument_error(where + "a labeling function " + name + " exists");
    auto function = pattern_labeling_function(name, vote == "satisfied" ? Vote::kSatisfied : Vote::kUnsatisfied,
                                              field == "reply" ? PatternField::kUserReply : PatternField::kBotAnswer,
                                              pattern);
    if (!function.ok()) return invalid_argument_error(where + function.status().message());
    out.push_back(std::move(*function));
  }
  return out;
}

Result<std::vector<LabelingFunction>> labeling_functions_with(const std::string& path) {
  std::vector<LabelingFunction> functions = labeling_functions();
  if (path.empty()) return functions;
  SELFFEED_ASSIGN_OR_RETURN(std::vector<LabelingFunction> extra, load_labeling_functions(path));
  functions.insert(functions.end(), std::make_move_iterator(extra.begin()), std::make_move_iterator(extra.end()));
  return functions;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::string norm = dialogue::normalize_text(text);
  std::size_t start = 0;
  while (start < norm.size()) {
    std::size_t end = norm.find(' ', start);
    if (end == std::string::npos) end = norm.size();
    if (end > start) out.push_back(norm.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace selffeed::satisfaction
