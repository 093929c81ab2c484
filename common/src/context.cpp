#include "selffeed/common/context.h"

#include <algorithm>

namespace selffeed {
namespace {

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
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

std::vector<Sentence> sentences_of(std::string_view utterance) {
  std::vector<Sentence> sentences;
  auto add = [&](std::string_view text) {
    text = trimmed(text);
    // Marks alone ("?!", "...") are no sentence.
    if (text.find_first_not_of(".!? ") == std::string_view::npos) return;
    sentences.push_back({.text = text, .question = text.find('?') != std::string_view::npos});
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

}  // namespace selffeed
