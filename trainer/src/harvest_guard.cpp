#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <fstream>

#include "selffeed/common/context.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {
namespace {

// Profanity only: an operator who needs more (slurs, other languages) passes a list.
constexpr std::array<std::string_view, 24> kDefaultBlockedWords = {
    "fuck",   "fucking", "fucked", "fucker", "motherfucker", "fuckin", "shit",   "shitty",
    "bullshit", "cunt",  "cock",   "dick",   "pussy",        "bitch",  "bitches", "bastard",
    "asshole", "arsehole", "whore", "slut",  "wank",         "wanker", "twat",   "jerkoff"};

// Linear-time patterns (RE2): the text is a stranger's.
const RE2& email_address() {
  static const RE2 re(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})");
  return re;
}
const RE2& web_address() {
  // The whole address, path included, so that redact_personal_data leaves none of it.
  static const RE2 re(R"((?i)(https?://|www\.)\S+|\b[a-z0-9-]+\.(com|org|net|edu|gov|io|info|biz|uk|ru)\b(/\S*)?)");
  return re;
}
// Seven digits or more, with at most spaces, dots, dashes, parentheses and a leading "+"
// between them: "555-123-4567", "+44 20 7946 0958".
const RE2& phone_number() {
  static const RE2 re(R"(\+?\d(?:[ ().-]{0,2}\d){6,})");
  return re;
}

}  // namespace

HarvestGuard::HarvestGuard() {
  for (std::string_view w : kDefaultBlockedWords) blocked_words_.emplace(w);
}

HarvestGuard::HarvestGuard(std::vector<std::string> blocked_words) {
  for (std::string& w : blocked_words) {
    for (std::string& word : lower_words(w)) blocked_words_.insert(std::move(word));
  }
}

Result<HarvestGuard> HarvestGuard::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read the blocklist '" + path + "'");
  std::vector<std::string> words;
  for (std::string line; std::getline(in, line);) {
    if (const std::size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    if (lower_words(line).size() > 1) {
      return invalid_argument_error("blocklist '" + path + "': one word per line, not '" + line + "'");
    }
    words.push_back(std::move(line));
  }
  return HarvestGuard(std::move(words));
}

std::optional<std::string_view> HarvestGuard::refusal(std::string_view text) const {
  const re2::StringPiece piece(text.data(), text.size());
  if (RE2::PartialMatch(piece, email_address())) return "email address";
  if (RE2::PartialMatch(piece, web_address())) return "web address";
  if (RE2::PartialMatch(piece, phone_number())) return "phone number";
  const std::vector<std::string> words = lower_words(text);
  if (std::any_of(words.begin(), words.end(), [&](const std::string& w) { return blocked_words_.contains(w); })) {
    return kBlockedWord;
  }
  return std::nullopt;
}

std::string redact_personal_data(std::string_view text) {
  std::string redacted(text);
  // Email addresses first: their domains are web addresses too.
  RE2::GlobalReplace(&redacted, email_address(), "[email address]");
  RE2::GlobalReplace(&redacted, web_address(), "[web address]");
  RE2::GlobalReplace(&redacted, phone_number(), "[phone number]");
  return redacted;
}

}  // namespace selffeed::trainer
