#include <algorithm>
#include <fstream>
#include <functional>
#include <random>
#include <string_view>

#include <nlohmann/json.hpp>

#include "selffeed/common/context.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {
namespace {

constexpr std::string_view kSilence = "__SILENCE__";
constexpr std::string_view kSelfPersona = "your persona:";
constexpr std::string_view kPartnerPersona = "partner's persona:";

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i; (i = s.find(sep, start)) != std::string_view::npos; start = i + 1) out.push_back(s.substr(start, i - start));
  out.push_back(s.substr(start));
  return out;
}

Status line_error(const std::string& path, std::size_t line, const std::string& what) {
  return invalid_argument_error(path + ":" + std::to_string(line) + ": " + what);
}

// Calls `visit` with each JSON object of a JSON Lines file and its line number; blank
// lines are skipped, anything else that is not an object is an error naming the line.
Status for_each_json_object(const std::string& path,
                            const std::function<Status(const nlohmann::json&, std::size_t)>& visit) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read '" + path + "'");
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return line_error(path, line_number, "not a JSON object");
    SELFFEED_RETURN_IF_ERROR(visit(j, line_number));
  }
  return ok_status();
}

// One example per turn of a dialogue, with the turns before it as context.
void add_all_turns(const std::vector<std::string>& turns, std::vector<RankingExample>& out) {
  for (std::size_t i = 0; i < turns.size(); ++i) {
    out.push_back({.context = format_context(std::span<const std::string>(turns.data(), i)), .target = turns[i]});
  }
}

// The records of an RFC 4180 CSV file: comma-separated fields, quoted fields may hold
// commas, newlines and doubled quotes. Returns false on an unterminated quote.
bool parse_csv(std::istream& in, std::vector<std::vector<std::string>>& records) {
  std::vector<std::string> record(1);
  bool quoted = false;
  for (char c; in.get(c);) {
    if (quoted) {
      if (c != '"') {
        record.back() += c;
      } else if (in.peek() == '"') {
        record.back() += static_cast<char>(in.get());
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      record.emplace_back();
    } else if (c == '\n') {
      records.push_back(std::move(record));
      record.assign(1, "");
    } else if (c != '\r') {
      record.back() += c;
    }
  }
  if (record.size() > 1 || !record.front().empty()) records.push_back(std::move(record));
  return !quoted;
}

}  // namespace

Result<std::vector<RankingExample>> load_parlai_text(const std::string& path, const ParlaiLoadOptions& options) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read '" + path + "'");
  std::vector<RankingExample> out;
  // The episode so far, alternating speakers; `self_first` when it opened with __SILENCE__.
  std::vector<std::string> turns;
  std::vector<std::size_t> self_turns;  // indices of the responder's turns in `turns`
  std::vector<std::vector<std::string>> candidates;  // per self turn
  std::vector<std::string> self_persona, partner_persona;
  auto flush = [&] {
    std::size_t self_index = 0;
    std::vector<bool> is_self(turns.size(), false);
    for (std::size_t i : self_turns) is_self[i] = true;
    for (std::size_t i = 0; i < turns.size(); ++i) {
      if (!is_self[i] && !(options.both_sides && i > 0)) continue;
      RankingExample e{.context = format_context(std::span<const std::string>(turns.data(), i)),
                       .target = turns[i],
                       .persona = is_self[i] ? self_persona : partner_persona};
      if (is_self[i]) e.candidates = std::move(candidates[self_index++]);
      out.push_back(std::move(e));
    }
    turns.clear();
    self_turns.clear();
    candidates.clear();
  };
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::size_t space = line.find(' ');
    if (space == std::string::npos) return line_error(path, line_number, "expected '<N> <text>'");
    long n = std::strtol(line.c_str(), nullptr, 10);
    if (n <= 0) return line_error(path, line_number, "line does not start with a turn number");
    if (n == 1) {
      if (!turns.empty()) flush();
      self_persona.clear();
      partner_persona.clear();
    }
    const std::string_view rest = std::string_view(line).substr(space + 1);
    std::vector<std::string_view> fields = split(rest, '\t');
    if (fields.size() < 2) {
      if (rest.starts_with(kSelfPersona)) self_persona.emplace_back(trim(rest.substr(kSelfPersona.size())));
      if (rest.starts_with(kPartnerPersona)) partner_persona.emplace_back(trim(rest.substr(kPartnerPersona.size())));
      continue;
    }
    std::string text(fields[0]);
    std::string label(fields[1]);
    if (text != kSilence) turns.push_back(text);
    self_turns.push_back(turns.size());
    turns.push_back(label);
    std::vector<std::string> cands;
    if (fields.size() >= 4 && !fields[3].empty()) {
      for (std::string_view c : split(fields[3], '|')) cands.emplace_back(c);
    }
    candidates.push_back(std::move(cands));
  }
  if (!turns.empty()) flush();
  return out;
}

Result<std::vector<RankingExample>> load_self_feeding_jsonl(const std::string& path) {
  std::vector<RankingExample> out;
  SELFFEED_RETURN_IF_ERROR(for_each_json_object(path, [&](const nlohmann::json& j, std::size_t line_number) {
    auto context = j.find("context");
    auto response = j.find("response");
    if (context == j.end() || !context->is_string() || response == j.end() || !response->is_string()) {
      return line_error(path, line_number, "needs string fields 'context' and 'response'");
    }
    RankingExample e{.context = context->get<std::string>(), .target = response->get<std::string>()};
    if (auto cands = j.find("candidates"); cands != j.end() && cands->is_array()) {
      for (const auto& c : *cands) {
        if (c.is_string()) e.candidates.push_back(c.get<std::string>());
      }
    }
    out.push_back(std::move(e));
    return ok_status();
  }));
  return out;
}

Result<std::vector<RankingExample>> load_self_dialogue_tsv(const std::string& path, const std::string& split_name) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read '" + path + "'");
  std::vector<RankingExample> out;
  std::vector<std::string> turns;
  std::string current;
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    std::vector<std::string_view> f = split(line, '\t');
    if (f.size() < 5) return line_error(path, line_number, "expected 5 tab-separated fields");
    if (f[1] != split_name) continue;
    if (f[0] != current) {
      add_all_turns(turns, out);
      turns.clear();
      current = std::string(f[0]);
    }
    turns.emplace_back(f[4]);
  }
  add_all_turns(turns, out);
  return out;
}

Result<std::vector<RankingExample>> load_human_replies_jsonl(const std::string& path) {
  std::vector<RankingExample> out;
  SELFFEED_RETURN_IF_ERROR(for_each_json_object(path, [&](const nlohmann::json& j, std::size_t line_number) {
    auto dialog = j.find("dialog");
    if (dialog == j.end() || !dialog->is_array()) return line_error(path, line_number, "needs a 'dialog' array");
    std::vector<std::string> turns;
    for (const auto& turn : *dialog) {
      if (!turn.is_object() || !turn.contains("text") || !turn["text"].is_string() || !turn.contains("speaker")) {
        return line_error(path, line_number, "every turn needs 'speaker' and a string 'text'");
      }
      if (turn["speaker"] == "human_evaluator" && !turns.empty()) {
        out.push_back({.context = format_context(turns), .target = turn["text"].get<std::string>()});
      }
      turns.push_back(turn["text"].get<std::string>());
    }
    return ok_status();
  }));
  return out;
}

Result<std::vector<RankingExample>> load_synthetic_persona_chat_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read '" + path + "'");
  std::vector<std::vector<std::string>> records;
  if (!parse_csv(in, records)) return invalid_argument_error("'" + path + "': a quoted field is not closed");
  constexpr std::string_view kColumn = "Best Generated Conversation";
  if (records.empty()) return invalid_argument_error("'" + path + "' is empty");
  const auto& header = records.front();
  const auto column = std::find(header.begin(), header.end(), kColumn);
  if (column == header.end()) {
    return invalid_argument_error("'" + path + "' has no column '" + std::string(kColumn) + "'");
  }
  const std::size_t index = static_cast<std::size_t>(column - header.begin());
  std::vector<RankingExample> out;
  for (std::size_t r = 1; r < records.size(); ++r) {
    if (records[r].size() <= index) {
      return invalid_argument_error("'" + path + "': record " + std::to_string(r) + " has too few fields");
    }
    // "User 1: ..." / "User 2: ..." lines; anything else (a stray line) is skipped.
    std::vector<std::string> turns;
    for (std::string_view line : split(records[r][index], '\n')) {
      if (line.ends_with('\r')) line.remove_suffix(1);
      for (std::string_view speaker : {"User 1:", "User 2:"}) {
        if (line.starts_with(speaker)) {
          std::string_view text = line.substr(speaker.size());
          text.remove_prefix(std::min(text.find_first_not_of(' '), text.size()));
          turns.emplace_back(text);
        }
      }
    }
    add_all_turns(turns, out);
  }
  return out;
}

void add_random_candidates(std::vector<RankingExample>& examples, int count, std::uint64_t seed) {
  if (examples.size() < 2) return;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, examples.size() - 1);
  for (RankingExample& e : examples) {
    std::vector<std::string> cands;
    // Bounded: a tiny set may not have `count` distinct other targets.
    for (int tries = 0; static_cast<int>(cands.size()) < count && tries < count * 20; ++tries) {
      const std::string& t = examples[pick(rng)].target;
      if (t != e.target && std::find(cands.begin(), cands.end(), t) == cands.end()) cands.push_back(t);
    }
    std::uniform_int_distribution<std::size_t> where(0, cands.size());
    cands.insert(cands.begin() + static_cast<std::ptrdiff_t>(where(rng)), e.target);
    e.candidates = std::move(cands);
  }
}

}  // namespace selffeed::trainer
