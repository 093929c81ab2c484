#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {

Split split_of(std::string_view dialogue_id) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : dialogue_id) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  switch (h % 5) {
    case 3: return Split::kValid;
    case 4: return Split::kTest;
    default: return Split::kTrain;
  }
}

std::string_view split_name(Split split) {
  switch (split) {
    case Split::kTrain: return "train";
    case Split::kValid: return "valid";
    case Split::kTest: return "test";
  }
  return "unknown";
}

Result<std::vector<SatisfactionExample>> load_convai2_satisfaction(const std::string& path, bool labelled_only) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read '" + path + "'");
  nlohmann::json root = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_array()) return invalid_argument_error("'" + path + "' is not a JSON list of dialogues");
  const std::string file = std::filesystem::path(path).filename().string();
  std::vector<SatisfactionExample> out;
  for (std::size_t d = 0; d < root.size(); ++d) {
    const nlohmann::json& dialogue = root[d];
    if (!dialogue.is_object() || !dialogue.contains("dialog") || !dialogue["dialog"].is_array()) {
      return invalid_argument_error("'" + path + "': dialogue " + std::to_string(d) + " has no \"dialog\" list");
    }
    std::string id = dialogue.contains("dialog_id") && dialogue["dialog_id"].is_string()
                         ? file + "#" + dialogue["dialog_id"].get<std::string>()
                         : file + "#" + std::to_string(d);
    const nlohmann::json& turns = dialogue["dialog"];
    std::vector<std::string> history;
    for (std::size_t i = 0; i + 1 < turns.size(); ++i) {
      const nlohmann::json& turn = turns[i];
      const nlohmann::json& next = turns[i + 1];
      std::string text = turn.value("text", "");
      const bool classed = turn.contains("sender_class");
      bool bot_then_human;
      if (classed) {
        bot_then_human = turn.value("sender_class", "") == "Bot" && next.value("sender_class", "") == "Human";
      } else {
        bot_then_human = turn.value("sender", "") != next.value("sender", "");
      }
      int label = -1;
      if (turn.contains("evaluation_score") && turn["evaluation_score"].is_number_integer()) {
        int score = turn["evaluation_score"].get<int>();
        if (score == 0 || score == 1) label = score;
      }
      if (bot_then_human && (label >= 0 || !labelled_only)) {
        out.push_back({.dialogue_id = id,
                       .input = {.history = history, .bot_reply = text, .user_reply = next.value("text", "")},
                       .label = label,
                       .split = split_of(id)});
      }
      history.push_back(std::move(text));
    }
  }
  return out;
}

SatisfactionSplits satisfaction_splits(std::span<const SatisfactionExample> examples) {
  SatisfactionSplits splits;
  for (const SatisfactionExample& e : examples) {
    if (e.label < 0) continue;
    SatisfactionSet& set = e.split == Split::kTrain ? splits.train : e.split == Split::kValid ? splits.valid : splits.test;
    set.contexts.push_back(satisfaction::satisfaction_context(e.input));
    set.labels.push_back(e.label);
  }
  return splits;
}

Result<SatisfactionSplits> load_satisfaction_splits(std::span<const std::string> paths) {
  std::vector<SatisfactionExample> rated;
  for (const std::string& path : paths) {
    SELFFEED_ASSIGN_OR_RETURN(auto examples, load_convai2_satisfaction(path, /*labelled_only=*/true));
    rated.insert(rated.end(), std::make_move_iterator(examples.begin()), std::make_move_iterator(examples.end()));
  }
  if (rated.empty()) return invalid_argument_error("no rated examples in the satisfaction files");
  return satisfaction_splits(rated);
}

}  // namespace selffeed::trainer
