#include "selffeed/common/context.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <iterator>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace selffeed {
namespace {

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

bool is_word_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return std::isalnum(byte) || byte >= 0x80;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

// The lower-cased word that starts at `at` (letters, digits, UTF-8), or "".
std::string word_at(std::string_view text, std::size_t at) {
  std::string word;
  for (; at < text.size() && is_word_char(text[at]); ++at) word += lower(text[at]);
  return word;
}

// The lower-cased words of `text` (runs of letters, digits, apostrophes and UTF-8 bytes)
// and where each begins and ends in it.
struct SpannedWords {
  std::vector<std::string> words;
  std::vector<std::size_t> begins, ends;
};
SpannedWords spanned_words(std::string_view text) {
  SpannedWords out;
  for (std::size_t at = 0; at < text.size();) {
    if (!is_word_char(text[at]) && text[at] != '\'') {
      ++at;
      continue;
    }
    std::size_t end = at;
    while (end < text.size() && (is_word_char(text[end]) || text[end] == '\'')) ++end;
    out.words.push_back(lower(text.substr(at, end - at)));
    out.begins.push_back(at);
    out.ends.push_back(end);
    at = end;
  }
  return out;
}

// Whether `phrase` is at words[at...]: "i", "am" in "so i am a nurse" at 1.
bool phrase_at(std::span<const std::string> words, std::size_t at, std::span<const std::string_view> phrase) {
  if (at + phrase.size() > words.size()) return false;
  return std::equal(phrase.begin(), phrase.end(), words.begin() + static_cast<std::ptrdiff_t>(at));
}

using Phrases = std::vector<std::vector<std::string_view>>;

// The first of `phrases` at words[at...], or null.
const std::vector<std::string_view>* phrase_starting(std::span<const std::string> words, std::size_t at,
                                                     const Phrases& phrases) {
  for (const auto& phrase : phrases) {
    if (phrase_at(words, at, phrase)) return &phrase;
  }
  return nullptr;
}

}  // namespace

std::string format_context(std::span<const std::string> history, std::size_t history_size) {
  std::size_t n = std::min(history.size(), history_size);
  if (n == 0) return std::string(kNullContext);
  std::string out;
  for (std::size_t i = history.size() - n; i < history.size(); ++i) {
    // Distance from the end decides the tag: 0 -> __p1__, 1 -> __p2__, 2 -> __p1__ ...
    std::size_t from_end = history.size() - 1 - i;
    if (!out.empty()) out.push_back(' ');
    out.append(from_end % 2 == 0 ? kPartnerTag : kSelfTag);
    out.push_back(' ');
    out.append(history[i]);
  }
  return out;
}

std::vector<std::string> split_context(std::string_view context) {
  std::vector<std::string> utterances;
  if (context == kNullContext) return utterances;
  std::size_t pos = 0;
  auto next_tag = [&](std::size_t from) {
    std::size_t a = context.find(kPartnerTag, from);
    std::size_t b = context.find(kSelfTag, from);
    return std::min(a, b);
  };
  std::size_t tag = next_tag(0);
  if (tag == std::string_view::npos) {
    utterances.emplace_back(context);
    return utterances;
  }
  while (tag != std::string_view::npos) {
    pos = tag + kPartnerTag.size();  // both tags have the same length
    std::size_t end = next_tag(pos);
    utterances.emplace_back(
        trimmed(context.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos)));
    tag = end;
  }
  return utterances;
}

namespace {

const std::unordered_set<std::string_view> kQuestionWords = {"what", "where", "who",   "whose",
                                                             "why",  "how",   "which", "when"};

// Whether words[at...] open as a question does: "what do you do", "how long have you",
// "where's", "do you have"; not "what a day", "when i was young" or "do it now".
bool opens_as_question(std::span<const std::string> words, std::size_t at) {
  static const std::unordered_set<std::string_view> kAuxiliaries = {
      "do", "does", "did", "is", "are", "was", "were", "can", "could", "would", "will", "should", "have", "has", "am"};
  // What may follow a question word: an auxiliary, or "what kind", "how long", "how about".
  static const std::unordered_set<std::string_view> kAfterQuestionWord = {
      "kind", "type", "sort", "else", "about", "old", "many", "much", "long", "often", "time"};
  static const std::unordered_set<std::string_view> kSubjects = {"you", "u",  "your", "we",    "they",  "he",
                                                                  "she", "it", "there", "anyone", "anybody"};
  if (at + 2 > words.size()) return false;
  const std::string_view first = words[at], second = words[at + 1];
  if (first.ends_with("'s") && kQuestionWords.contains(first.substr(0, first.size() - 2))) return true;  // "where's"
  if (kQuestionWords.contains(first)) return kAuxiliaries.contains(second) || kAfterQuestionWord.contains(second);
  if (first == "do" && second == "it") return false;
  return kAuxiliaries.contains(first) && kSubjects.contains(second);
}

// Whether a sentence without a closing mark is a question: it opens as one does ("what do
// you do for a job", "do you have pets", "how long have you lived there"), also behind a
// greeting or "so", "and", "well", "oh" ("hi how are you", "hey so what do you do"); a
// clause after "but", "so" or "and" does ("i have two but what do you do for work"); or a
// question to the listener follows a statement ("pretty good how are you", "i'm good what
// about you"). Not "i know what you mean" or "i know what is best".
bool unmarked_question(std::string_view text) {
  static const std::unordered_set<std::string_view> kLeadIns = {"so", "and",   "well", "oh",    "ok",
                                                                "okay", "but", "hi",   "hey",   "hello"};
  static const std::unordered_set<std::string_view> kJoins = {"but", "so", "and"};
  static const std::unordered_set<std::string_view> kListener = {"you", "u", "your", "yourself"};
  // Words after which "is your" or "have your" goes on a statement ("that is your script",
  // "gonna have your own team").
  static const std::unordered_set<std::string_view> kNotBefore = {
      "i",    "we",   "they", "he",   "she",   "it",   "you",   "u",    "him",   "her",   "me",
      "them", "to",   "that", "this", "gonna", "wanna", "will", "would", "can", "could", "must", "should"};
  constexpr std::size_t kMaxLeadIns = 2;  // "hey so what do you do"
  const std::vector<std::string> words = lower_words(text);
  std::size_t at = 0;
  while (at < words.size() && at < kMaxLeadIns && kLeadIns.contains(words[at])) ++at;
  if (opens_as_question(words, at)) return true;
  for (std::size_t k = at + 1; k < words.size(); ++k) {
    if (kJoins.contains(words[k]) && opens_as_question(words, k + 1)) return true;
    // To the listener: "how are you", "what is your", "how about you", "do you"; not "i am
    // your girl", "that is it you have", "want me to do you".
    const std::size_t listener = kQuestionWords.contains(words[k]) ? k + 2 : k + 1;
    const bool to_the_listener = listener < words.size() && kListener.contains(words[listener]);
    if (to_the_listener && !kNotBefore.contains(words[k - 1]) && opens_as_question(words, k)) return true;
  }
  return false;
}

}  // namespace

std::vector<Sentence> sentences_of(std::string_view utterance) {
  std::vector<Sentence> sentences;
  auto add = [&](std::string_view text) {
    text = trimmed(text);
    // Marks alone ("?!", "...") are no sentence.
    if (text.find_first_not_of(".!? ") == std::string_view::npos) return;
    const bool marked = text.find_first_of(".!?") != std::string_view::npos;
    const bool question = text.find('?') != std::string_view::npos || (!marked && unmarked_question(text));
    sentences.push_back({.text = text, .question = question});
  };
  std::size_t start = 0;
  for (std::size_t i = 0; i < utterance.size(); ++i) {
    const char c = utterance[i];
    if (c != '.' && c != '!' && c != '?') continue;
    // "what ?!" and "really ??" are one sentence: it ends after its last mark.
    while (i + 1 < utterance.size() && (utterance[i + 1] == '.' || utterance[i + 1] == '?' || utterance[i + 1] == '!')) ++i;
    add(utterance.substr(start, i + 1 - start));
    start = i + 1;
  }
  if (start < utterance.size()) add(utterance.substr(start));
  return sentences;
}

std::vector<std::string_view> questions_in(std::string_view utterance) {
  std::vector<std::string_view> questions;
  for (const Sentence& s : sentences_of(utterance)) {
    if (s.question) questions.push_back(s.text);
  }
  return questions;
}

std::string_view question_clause(std::string_view question) {
  const auto [words, begins, ends] = spanned_words(question);
  for (std::size_t at = 0; at < words.size(); ++at) {
    if (!opens_as_question(words, at)) continue;
    // "what about you ?" asks about whatever came before it.
    const bool turned_back = words.size() == at + 3 && words[at + 1] == "about";
    return at == 0 || turned_back ? question : question.substr(begins[at]);
  }
  return question;
}

std::vector<std::string> lower_words(std::string_view text) { return spanned_words(text).words; }

double token_f1(std::string_view prediction, std::string_view reference) {
  const std::vector<std::string> p = lower_words(prediction), r = lower_words(reference);
  if (p.empty() || r.empty()) return 0;
  std::map<std::string, int> counts;
  for (const auto& w : r) ++counts[w];
  int common = 0;
  for (const auto& w : p) {
    if (auto it = counts.find(w); it != counts.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  if (common == 0) return 0;
  const double precision = static_cast<double>(common) / static_cast<double>(p.size());
  const double recall = static_cast<double>(common) / static_cast<double>(r.size());
  return 2 * precision * recall / (precision + recall);
}

bool is_filler(std::string_view sentence) {
  static const std::unordered_set<std::string_view> kFillers = {
      "nice", "cool", "wow", "oh", "ah", "aw", "aww", "awww", "ok", "okay", "great", "awesome", "sweet", "neat", "hmm",
      "um", "umm", "well", "interesting", "really", "so", "omg", "yay", "lmao", "i", "bet", "same", "here"};
  // Laughter of any length: "haha", "ahahah", "hehe", "lolol".
  auto laughs = [](std::string_view w) {
    return w.size() >= 2 && (w.find_first_not_of("ah") == std::string_view::npos ||
                             w.find_first_not_of("he") == std::string_view::npos ||
                             w.find_first_not_of("lo") == std::string_view::npos);
  };
  const std::vector<std::string> words = lower_words(sentence);
  return !words.empty() && std::all_of(words.begin(), words.end(), [&](const std::string& w) {
    return kFillers.contains(w) || laughs(w);
  });
}

bool opens_with_greeting(std::string_view utterance) {
  static constexpr std::array<std::string_view, 7> kGreetings = {"hi",   "hello", "hey",      "hiya",
                                                                  "heya", "howdy", "greetings"};
  static constexpr std::array<std::string_view, 4> kTimesOfDay = {"morning", "afternoon", "evening", "day"};
  const std::size_t start = utterance.find_first_not_of(" \t");
  if (start == std::string_view::npos) return false;
  const std::string first = word_at(utterance, start);
  if (std::find(kGreetings.begin(), kGreetings.end(), first) != kGreetings.end()) return true;
  if (first != "good") return false;
  const std::size_t next = utterance.find_first_not_of(' ', start + first.size());
  return next != std::string_view::npos &&
         std::find(kTimesOfDay.begin(), kTimesOfDay.end(), word_at(utterance, next)) != kTimesOfDay.end();
}

namespace {

// "hi , i'm walt .", "hello i am sarah , how are you ?" or "hi names pete and ...": a
// greeting, then "i'm" (or "names") and one word that ends the clause (or is followed by
// "and"). Not "hi , i'm good ." and other states.
std::string name_after_greeting(std::string_view utterance) {
  static const std::unordered_set<std::string_view> kNotNames = {
      "good",  "great", "well",   "fine",     "ok",       "okay",    "alright", "new",   "here",    "back",
      "home",  "bored", "tired",  "busy",     "sick",     "sorry",   "glad",    "happy", "sad",     "excited",
      "awesome", "fantastic", "wonderful", "amazing", "excellent", "cool", "bad", "doing", "sure", "ready",
      "hungry", "sleepy", "single", "married", "retired", "vegan", "vegetarian", "alive", "free", "late",
      "early", "done", "not", "okey", "too", "also", "so", "just", "really", "pretty", "very", "still", "always",
      "a", "an", "the"};
  static const Phrases kIntroductions = {{"i'm"}, {"im"}, {"i", "am"}, {"names"}, {"name's"}, {"name", "is"}};
  if (!opens_with_greeting(utterance)) return "";
  const std::vector<Sentence> sentences = sentences_of(utterance);
  if (sentences.empty()) return "";
  const std::string_view text = sentences.front().text;
  // Where each word ends, to see what follows the name.
  const auto [words, begins, ends] = spanned_words(text);
  const std::size_t at = words.size() > 1 && words[1] == "there" ? 2 : 1;
  const auto* intro = phrase_starting(words, at, kIntroductions);
  if (!intro || at + intro->size() >= words.size()) return "";
  const std::size_t k = at + intro->size();
  const std::string& name = words[k];
  if (kNotNames.contains(name) || name.ends_with("ing")) return "";
  const std::size_t next = text.find_first_not_of(' ', ends[k]);
  const bool clause_ends = next == std::string::npos || !is_word_char(text[next]);
  return clause_ends || (k + 1 < words.size() && words[k + 1] == "and") ? name : "";
}

}  // namespace

std::string self_given_name(std::string_view utterance) {
  static constexpr std::array<std::string_view, 3> kIntroductions = {"my name is ", "my name's ", "my names "};
  const std::string text = lower(utterance);
  for (std::string_view intro : kIntroductions) {
    for (std::size_t at = text.find(intro); at != std::string::npos; at = text.find(intro, at + 1)) {
      if (at > 0 && is_word_char(text[at - 1])) continue;  // "enemy name is", not "my name is"
      const std::size_t name = text.find_first_not_of(' ', at + intro.size());
      if (name == std::string::npos) continue;
      std::string word = word_at(text, name);
      if (!word.empty()) return word;
    }
  }
  return name_after_greeting(utterance);
}

std::string self_stated_occupation(std::string_view utterance) {
  // Common occupations in English, PersonaChat's among them.
  static const std::unordered_set<std::string_view> kOccupations = {
      "accountant", "actor", "actress", "architect", "artist", "astronaut", "athlete", "attorney", "baker",
      "banker", "barber", "barista", "bartender", "biologist", "bookkeeper", "builder", "butcher", "carpenter",
      "cashier", "chef", "chemist", "cleaner", "clerk", "coach", "cook", "counselor", "dancer", "dentist",
      "designer", "detective", "developer", "doctor", "driver", "economist", "editor", "electrician",
      "engineer", "farmer", "firefighter", "fireman", "fisherman", "florist", "gardener", "geologist",
      "hairdresser", "hairstylist", "historian", "housekeeper", "housewife", "janitor", "journalist", "judge",
      "lawyer", "lecturer", "librarian", "lifeguard", "mechanic", "musician", "nanny", "nurse", "officer",
      "painter", "paramedic", "pharmacist", "photographer", "physician", "physicist", "pianist", "pilot",
      "plumber", "poet", "policeman", "politician", "priest", "professor", "programmer", "psychologist",
      "receptionist", "reporter", "researcher", "salesman", "scientist", "secretary", "singer", "soldier",
      "student", "surgeon", "tailor", "teacher", "therapist", "trucker", "tutor", "veterinarian", "vet",
      "waiter", "waitress", "welder", "writer"};
  // "i am a", "i'm an", "i work as a", "i am working as an", ...: the words before the article.
  static const Phrases kSelfStatements = {
      {"i", "am"}, {"i'm"}, {"im"}, {"i", "work", "as"}, {"i", "am", "working", "as"}, {"i'm", "working", "as"}};
  constexpr std::size_t kWordsBeforeTheOccupation = 3;  // "i am a retired high school teacher"
  // "i'm retired", "i am unemployed": no article, and no work either.
  static const std::unordered_set<std::string_view> kWithoutWork = {"retired", "unemployed"};
  // "i am studying to become a lawyer": a student, not a lawyer yet.
  static const Phrases kBecoming = {{"studying", "to"}, {"training", "to"}, {"school", "to"}, {"college", "to"}};
  // "i bake for a living".
  static const std::unordered_map<std::string_view, std::string_view> kForALiving = {
      {"bake", "baker"},   {"cook", "cook"},     {"paint", "painter"},  {"write", "writer"}, {"teach", "teacher"},
      {"drive", "driver"}, {"sing", "singer"},   {"dance", "dancer"},   {"farm", "farmer"},  {"fish", "fisherman"},
      {"nurse", "nurse"},  {"code", "programmer"}, {"program", "programmer"}, {"design", "designer"},
      {"act", "actor"},    {"clean", "cleaner"}, {"build", "builder"}};
  static const std::vector<std::string_view> kALiving = {"for", "a", "living"};
  const std::vector<std::string> words = lower_words(utterance);
  // Said of itself, now: "i am" or "i'm" in the words before `at` ("i'm going to school to
  // be"), not "my daughter is going to school to be" or "i attended college to be".
  auto now_of_itself = [&](std::size_t at) {
    for (std::size_t w = at > kWordsBeforeTheOccupation ? at - kWordsBeforeTheOccupation : 0; w < at; ++w) {
      if (words[w] == "am" || words[w] == "i'm" || words[w] == "im") return true;
    }
    return false;
  };
  for (std::size_t at = 0; at < words.size(); ++at) {
    for (const auto& statement : kSelfStatements) {
      const std::size_t k = at + statement.size();
      if (!phrase_at(words, at, statement) || k >= words.size()) continue;
      if (statement.size() <= 2 && kWithoutWork.contains(words[k])) return words[k];
      if (words[k] != "a" && words[k] != "an") continue;
      for (std::size_t w = k + 1; w < words.size() && w <= k + 1 + kWordsBeforeTheOccupation; ++w) {
        if (kOccupations.contains(words[w])) return words[w];
      }
    }
    if (phrase_starting(words, at, kBecoming) && at + 2 < words.size() &&
        (words[at + 2] == "be" || words[at + 2] == "become") && now_of_itself(at)) {
      return "student";
    }
    if (words[at] == "i" && at + 1 < words.size() && phrase_at(words, at + 2, kALiving)) {
      if (auto it = kForALiving.find(words[at + 1]); it != kForALiving.end()) return std::string(it->second);
    }
  }
  return "";
}

namespace {

// Pets, children and siblings, as stated_possessions() and asked_about() read them.
struct Thing {
  std::string_view name, kind;
};
const Thing* thing_named(std::string_view word) {
  static const std::unordered_map<std::string_view, Thing> kThings = {
      {"pet", {"pet", "pet"}},           {"pets", {"pet", "pet"}},         {"animal", {"pet", "pet"}},
      {"animals", {"pet", "pet"}},       {"dog", {"dog", "pet"}},          {"dogs", {"dog", "pet"}},
      {"puppy", {"dog", "pet"}},         {"puppies", {"dog", "pet"}},      {"cat", {"cat", "pet"}},
      {"cats", {"cat", "pet"}},          {"kitten", {"cat", "pet"}},       {"kittens", {"cat", "pet"}},
      {"bird", {"bird", "pet"}},         {"birds", {"bird", "pet"}},       {"horse", {"horse", "pet"}},
      {"horses", {"horse", "pet"}},      {"hamster", {"hamster", "pet"}},  {"hamsters", {"hamster", "pet"}},
      {"rabbit", {"rabbit", "pet"}},     {"rabbits", {"rabbit", "pet"}},   {"snake", {"snake", "pet"}},
      {"snakes", {"snake", "pet"}},      {"turtle", {"turtle", "pet"}},    {"turtles", {"turtle", "pet"}},
      {"kid", {"child", "child"}},       {"kids", {"child", "child"}},     {"child", {"child", "child"}},
      {"children", {"child", "child"}},  {"son", {"son", "child"}},        {"sons", {"son", "child"}},
      {"daughter", {"daughter", "child"}}, {"daughters", {"daughter", "child"}},
      {"sibling", {"sibling", "sibling"}}, {"siblings", {"sibling", "sibling"}},
      {"brother", {"brother", "sibling"}}, {"brothers", {"brother", "sibling"}},
      {"sister", {"sister", "sibling"}},   {"sisters", {"sister", "sibling"}}};
  auto it = kThings.find(word);
  return it == kThings.end() ? nullptr : &it->second;
}

}  // namespace

std::vector<Possession> stated_possessions(std::string_view utterance) {
  static const std::unordered_map<std::string_view, int> kCounts = {
      {"a", 1},    {"an", 1},   {"one", 1},   {"two", 2},  {"three", 3}, {"four", 4}, {"five", 5}, {"six", 6},
      {"seven", 7}, {"eight", 8}, {"nine", 9}, {"ten", 10}, {"1", 1},    {"2", 2},    {"3", 3},    {"4", 4},
      {"5", 5},    {"6", 6},    {"7", 7},     {"8", 8},    {"9", 9},     {"10", 10}};
  static const std::unordered_set<std::string_view> kSome = {"any", "some", "many", "several", "lots", "few"};
  static const Phrases kHave = {{"i", "have"}, {"i've"}, {"i", "have", "got"}, {"i've", "got"}};
  static const Phrases kHaveNot = {
      {"i", "do", "not", "have"}, {"i", "don't", "have"}, {"i", "dont", "have"}, {"i", "have", "no"},
      {"i've", "no"},            {"i", "have", "not", "got"}};
  constexpr std::size_t kWordsBeforeTheThing = 2;  // "i have two german shepherds", "a big old cat"
  std::vector<Possession> out;
  // Words after which "dog" or "pet" names something else: "a dog walking business", "a pet
  // sitter", "a grand child".
  static const std::unordered_set<std::string_view> kCompounds = {"sitter", "food", "walker", "house", "bed",
                                                                  "toy", "toys", "park", "show", "business",
                                                                  "hair", "trainer", "owner", "shelter"};
  auto thing_in = [&](const std::vector<std::string>& words, std::size_t from, std::size_t span) -> const Thing* {
    for (std::size_t w = from; w < words.size() && w <= from + span; ++w) {
      const Thing* thing = thing_named(words[w]);
      if (!thing) continue;
      const bool compound = (w + 1 < words.size() && (kCompounds.contains(words[w + 1]) || words[w + 1].ends_with("ing"))) ||
                            (w > 0 && words[w - 1] == "grand");
      return compound ? nullptr : thing;
    }
    return nullptr;
  };
  for (const Sentence& sentence : sentences_of(utterance)) {
    if (sentence.question) continue;
    const std::vector<std::string> words = lower_words(sentence.text);
    for (std::size_t at = 0; at < words.size(); ++at) {
      if (const auto* none = phrase_starting(words, at, kHaveNot)) {
        std::size_t k = at + none->size();
        if (k < words.size() && kSome.contains(words[k])) ++k;
        if (const Thing* t = thing_in(words, k, 1)) out.push_back({std::string(t->name), std::string(t->kind), 0});
      } else if (const auto* have = phrase_starting(words, at, kHave)) {
        const std::size_t k = at + have->size();
        if (k >= words.size()) continue;
        const auto count = kCounts.find(words[k]);
        // A count, then a thing within a few words; without one, the thing itself next
        // ("i have dogs", "i have some kids"), not "i have read about dogs".
        const Thing* t = count != kCounts.end()      ? thing_in(words, k + 1, kWordsBeforeTheThing)
                         : kSome.contains(words[k]) ? thing_in(words, k + 1, 0)
                                                    : thing_in(words, k, 0);
        if (t) out.push_back({std::string(t->name), std::string(t->kind), count != kCounts.end() ? count->second : -1});
      }
    }
  }
  return out;
}

std::vector<Possession> stated_possessions(std::span<const std::string> utterances) {
  std::vector<Possession> out;
  for (const std::string& u : utterances) std::ranges::move(stated_possessions(u), std::back_inserter(out));
  return out;
}

bool contradicts(std::span<const Possession> said, std::span<const Possession> facts) {
  auto covers = [](const Possession& none, const Possession& some) {
    return none.thing == some.thing || none.thing == some.kind;  // "no pets" covers dogs
  };
  for (const Possession& a : said) {
    for (const Possession& f : facts) {
      if (a.thing == f.thing && a.count > 0 && f.count > 0 && a.count != f.count) return true;
      if (a.count == 0 && f.count != 0 && covers(a, f)) return true;
      if (f.count == 0 && a.count != 0 && covers(f, a)) return true;
    }
  }
  return false;
}

std::vector<Favorite> stated_favorites(std::string_view utterance) {
  static const std::unordered_set<std::string_view> kFavorite = {"favorite", "favourite", "fav", "fave"};
  static const std::unordered_set<std::string_view> kIs = {"is", "are"};
  // Where a favorite's name or its thing ends: "pizza with pineapple", "blue and green".
  static const std::unordered_set<std::string_view> kEnds = {
      "and", "but", "because", "so", "since", "i", "it", "this", "that", "these", "those", "they", "which", "though",
      "or", "too", "as", "when", "if", "with", "in", "at", "for", "from", "to", "like", "of", "my", "is", "are",
      "you", "what", "whats", "what's", "right", "now", "ever", "all", "by", "far", "on", "about", "he", "she",
      "we", "him", "her", "i'm", "im", "i've", "lol", "yeah", "haha", "especially", "one", "ones", "coming",
      "going", "not"};
  // Kinds too vague to hold a bot to: "orange is my favorite one".
  static const std::unordered_set<std::string_view> kVague = {"one", "type", "kind", "sort", "thing"};
  // Words that say how sure, not what: "probably pizza", "definitely the nationals".
  static const std::unordered_set<std::string_view> kSkipped = {"a",    "an",     "the",    "probably", "definitely",
                                                                "really", "still", "also", "either", "always",
                                                                "just",   "actually"};
  constexpr std::size_t kMaxWords = 3;
  // The words from `at` on (or back from it) up to kMaxWords, stopping at a word of kEnds.
  auto run = [&](const std::vector<std::string>& words, std::size_t at, bool backwards) {
    std::vector<std::string> out;
    for (std::size_t n = 0; n < kMaxWords + 2 && at < words.size(); ++n) {
      const std::string& w = words[at];
      if (kEnds.contains(w)) break;
      if (!kSkipped.contains(w)) out.push_back(w);
      if (out.size() == kMaxWords) break;
      if (backwards && at == 0) break;
      at = backwards ? at - 1 : at + 1;
    }
    if (backwards) std::reverse(out.begin(), out.end());
    return out;
  };
  // "type of food" is food; "colours" is color.
  auto what_of = [](std::vector<std::string> what) {
    if (what.size() > 2 && (what[0] == "type" || what[0] == "kind" || what[0] == "sort") && what[1] == "of") {
      what.erase(what.begin(), what.begin() + 2);
    }
    std::string key;
    for (std::string& w : what) {
      if (w == "colour" || w == "colours") w = "color";
      if (w.size() > 3 && w.ends_with("ies")) {
        w = w.substr(0, w.size() - 3) + "y";
      } else if (w.size() > 3 && w.ends_with('s') && !w.ends_with("ss")) {
        w.pop_back();
      }
      key += (key.empty() ? "" : " ") + w;
    }
    return key;
  };
  std::vector<Favorite> out;
  auto add = [&](std::vector<std::string> what, std::vector<std::string> thing) {
    if (what.empty() || thing.empty()) return;
    std::string key = what_of(std::move(what));
    // "my favorite color is the color of his eyes" names no colour.
    if (kVague.contains(key) || std::ranges::find(thing, key) != thing.end()) return;
    out.push_back({std::move(key), std::move(thing)});
  };
  for (const Sentence& sentence : sentences_of(utterance)) {
    if (sentence.question) continue;
    // Clauses: "i love red , my favorite food is pizza" has two.
    std::string_view rest = sentence.text;
    while (!rest.empty()) {
      const std::size_t comma = rest.find_first_of(",;");
      const std::vector<std::string> words = lower_words(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      for (std::size_t at = 0; at + 2 < words.size(); ++at) {
        if (words[at] == "my" && kFavorite.contains(words[at + 1])) {
          // "my favorite color is blue"
          std::size_t is = at + 2;
          while (is < words.size() && is < at + 2 + kMaxWords && !kIs.contains(words[is])) ++is;
          if (is < words.size() && kIs.contains(words[is]) && is > at + 2) {
            add({words.begin() + static_cast<std::ptrdiff_t>(at + 2), words.begin() + static_cast<std::ptrdiff_t>(is)},
                run(words, is + 1, false));
          } else if (at >= 2 && kIs.contains(words[at - 1])) {
            // "blue is my favorite color"
            add(run(words, at + 2, false), run(words, at - 2, true));
          }
        } else if ((words[at] == "love" || words[at] == "like") && words[at + 1] == "the" &&
                   (words[at + 2] == "color" || words[at + 2] == "colour") && at + 3 < words.size() &&
                   !kEnds.contains(words[at + 3])) {
          add({"color"}, {words[at + 3]});  // "i love the color red"
        }
      }
    }
  }
  return out;
}

std::vector<Favorite> stated_favorites(std::span<const std::string> utterances) {
  std::vector<Favorite> out;
  for (const std::string& u : utterances) std::ranges::move(stated_favorites(u), std::back_inserter(out));
  return out;
}

bool contradicts(std::span<const Favorite> said, std::span<const Favorite> facts) {
  for (const Favorite& a : said) {
    for (const Favorite& f : facts) {
      if (a.what != f.what) continue;
      const bool shares_a_word =
          std::ranges::any_of(a.thing, [&](const std::string& w) { return std::ranges::find(f.thing, w) != f.thing.end(); });
      if (!shares_a_word) return true;
    }
  }
  return false;
}

bool tells_how_one_is(std::string_view utterance) {
  static const std::unordered_set<std::string_view> kStates = {
      "good", "great", "well", "fine", "ok", "okay", "alright", "wonderful", "awesome", "fantastic", "excellent",
      "amazing", "swell"};
  static const std::unordered_set<std::string_view> kOpeners = {"oh", "well", "yes", "yeah", "hi", "hello", "hey"};
  static const std::unordered_set<std::string_view> kBetween = {"doing", "feeling", "very", "really", "pretty", "so",
                                                                "just", "quite"};
  // What makes the state something else: "good at math", "well aware", "fine with it".
  static const std::unordered_set<std::string_view> kNotAfter = {"at", "for", "with", "to", "in", "on", "of",
                                                                 "aware", "known", "enough", "off", "friends"};
  const std::vector<Sentence> sentences = sentences_of(utterance);
  if (sentences.empty()) return false;
  const std::vector<std::string> words = lower_words(sentences.front().text);
  std::size_t at = 0;
  while (at < words.size() && kOpeners.contains(words[at])) ++at;
  static const Phrases kSelf = {{"i'm"}, {"im"}, {"i", "am"}};
  if (const auto* self = phrase_starting(words, at, kSelf)) {
    at += self->size();
  } else if (at >= words.size() || (words[at] != "doing" && words[at] != "not")) {
    return false;  // "doing well", "not bad" without the "i'm"
  }
  if (at < words.size() && words[at] == "not" && at + 1 < words.size() && words[at + 1] == "bad") {
    at += 2;
  } else {
    while (at < words.size() && kBetween.contains(words[at])) ++at;
    if (at >= words.size() || !kStates.contains(words[at])) return false;
    ++at;
  }
  return at == words.size() || !kNotAfter.contains(words[at]);
}

bool asks_how_you_are(std::string_view utterance) {
  static const Phrases kHowAreYou = {
      {"how", "are", "you"},       {"how", "are", "u"},       {"how", "r", "u"},         {"how's", "it", "going"},
      {"how", "is", "it", "going"}, {"how", "you", "doing"},  {"how", "have", "you", "been"},
      {"how's", "your", "day"},    {"how", "is", "your", "day"}, {"how", "was", "your", "day"},
      {"how", "are", "things"},    {"how's", "life"},          {"how", "is", "life"},     {"hows", "it", "going"},
      {"how", "goes", "it"},       {"how", "are", "ya"},      {"how", "you", "been"},    {"are", "you", "okay"},
      {"are", "you", "ok"},        {"are", "you", "alright"}};
  const std::vector<std::string> words = lower_words(utterance);
  for (std::size_t at = 0; at < words.size(); ++at) {
    if (phrase_starting(words, at, kHowAreYou)) return true;
  }
  return false;
}

bool asks_how_one_is(std::string_view utterance) {
  // "I'm doing well, thanks!" says how the user is: saying how the bot is fits too.
  const std::vector<Sentence> sentences = sentences_of(utterance);
  return std::ranges::any_of(sentences, [](const Sentence& s) { return tells_how_one_is(s.text); }) ||
         asks_how_you_are(utterance);
}

namespace {

// What the speaker said of themselves before turning `question` back on the listener ("i
// am a teacher . what about you ?", "i have a cat , you ?", "my name is bob . what is yours
// ?"): the utterance up to the question and the question's own words before the turn
// ("i am a student and you ?"). Empty when the question does not turn back.
std::string said_before_turning_back(std::string_view utterance, std::string_view question) {
  static const std::unordered_set<std::string_view> kListener = {"you", "u", "yourself", "yours"};
  // What may come right before "you": "and you ?", "what about you ?"; "yours" follows
  // anything ("what is yours ?"). Not "do you ?": that asks about the last thing said alone
  // ("i am a nurse . i love pizza . do you ?").
  static const Phrases kTurns = {{"and"}, {"what", "about"}, {"how", "about"}};
  const auto [words, begins, ends] = spanned_words(question);
  if (words.empty() || !kListener.contains(words.back())) return "";
  std::size_t turn = words.size() - 1;  // where the turn starts
  if (words.back() != "yours" && turn > 0) {
    auto ends_at_turn = [&](const auto& lead) { return lead.size() <= turn && phrase_at(words, turn - lead.size(), lead); };
    if (const auto lead = std::ranges::find_if(kTurns, ends_at_turn); lead != kTurns.end()) {
      turn -= lead->size();
    } else if (!trimmed(question.substr(0, begins.back())).ends_with(',')) {
      return "";  // "thank you ?", "how are you ?"
    }
  }
  std::string said(utterance.substr(0, static_cast<std::size_t>(question.data() - utterance.data())));
  for (std::size_t w = 0; w < turn; ++w) said += " " + words[w];
  return said + " .";
}

}  // namespace

AskedAbout asked_about(std::string_view utterance) {
  static const Phrases kName = {{"your", "name"}, {"ur", "name"}};
  // "what is your job ?", not "what's the hardest part of your job ?" or "do you like your job ?".
  static const Phrases kOccupation = {
      {"is", "your", "job"},       {"what's", "your", "job"},       {"whats", "your", "job"},
      {"is", "your", "occupation"}, {"what's", "your", "occupation"}, {"is", "your", "profession"},
      {"for", "a", "living"},      {"do", "you", "work"},            {"you", "do", "for", "work"}};
  static const Phrases kWhatDoYouDo = {{"what", "do", "you", "do"}, {"what", "do", "u", "do"}};
  AskedAbout asked;
  for (std::string_view question : questions_in(utterance)) {
    const std::vector<std::string> words = lower_words(question);
    bool to_you = false, having = false;
    for (std::size_t at = 0; at < words.size(); ++at) {
      asked.name = asked.name || phrase_starting(words, at, kName);
      // "do you work ?", not "do you work out ?"
      const bool works_out = at + 3 < words.size() && words[at + 2] == "work" && words[at + 3] == "out";
      asked.occupation = asked.occupation || (phrase_starting(words, at, kOccupation) && !works_out);
      // "what do you do ?" asks the occupation; "what do you do for fun ?" does not.
      const auto* what_do_you_do = phrase_starting(words, at, kWhatDoYouDo);
      asked.occupation = asked.occupation || (what_do_you_do && at + what_do_you_do->size() == words.size());
      to_you = to_you || words[at] == "you" || words[at] == "u";
      having = having || words[at] == "have" || words[at] == "got" || (at == 0 && words[at] == "any");
    }
    if (asked.kind.empty() && having && (to_you || words.front() == "any")) {
      for (const std::string& w : words) {
        if (const Thing* thing = thing_named(w)) {
          asked.kind = thing->kind;
          break;
        }
      }
    }
    if (const std::string said = said_before_turning_back(utterance, question); !said.empty()) {
      asked.name = asked.name || !self_given_name(said).empty();
      asked.occupation = asked.occupation || !self_stated_occupation(said).empty();
      const std::vector<Possession> has = stated_possessions(said);
      if (asked.kind.empty() && !has.empty()) asked.kind = has.front().kind;
    }
  }
  return asked;
}

std::string first_in(std::span<const std::string> sentences, std::string (*find)(std::string_view)) {
  for (const std::string& sentence : sentences) {
    if (std::string found = find(sentence); !found.empty()) return found;
  }
  return {};
}

namespace {

bool has_kind(std::span<const Possession> possessions, std::string_view kind) {
  return std::any_of(possessions.begin(), possessions.end(), [&](const Possession& p) { return p.kind == kind; });
}

}  // namespace

bool contradicts(std::string_view reply, const SelfFacts& self) {
  auto another = [&](const std::string& kept, std::string (*find)(std::string_view)) {
    if (kept.empty()) return false;
    const std::string said = find(reply);
    return !said.empty() && said != kept;
  };
  return another(self.name, self_given_name) || another(self.occupation, self_stated_occupation) ||
         (!self.has.empty() && contradicts(stated_possessions(reply), self.has)) ||
         (!self.favorites.empty() && contradicts(stated_favorites(reply), self.favorites));
}

bool knows_answer(const AskedAbout& asked, const SelfFacts& self) {
  return (asked.name && !self.name.empty()) || (asked.occupation && !self.occupation.empty()) ||
         (!asked.kind.empty() && has_kind(self.has, asked.kind));
}

bool leaves_out_answer(std::string_view reply, const AskedAbout& asked, const SelfFacts& self) {
  if (asked.name && !self.name.empty() && self_given_name(reply) != self.name) return true;
  if (asked.occupation && !self.occupation.empty() && self_stated_occupation(reply) != self.occupation) return true;
  return !asked.kind.empty() && has_kind(self.has, asked.kind) && !has_kind(stated_possessions(reply), asked.kind);
}

}  // namespace selffeed
