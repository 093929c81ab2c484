#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "selffeed/common/context.h"
#include "selffeed/common/hash.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {

Split split_of(std::string_view dialogue_id, int rotation) {
  const std::uint64_t h = fnv1a64(dialogue_id);
  switch ((h % kSplitFolds + static_cast<std::uint64_t>(rotation)) % kSplitFolds) {
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

namespace {
// The labelled files say who the bot is (sender_class); the export files do not, but
// follow the same convention: in data_volunteers.json participant2 is always the bot, and
// in export_2018-07-07 participant2's words are closer to the bot's persona than
// participant1's in 860 of 966 dialogues (106 the other way).
bool is_bot(const nlohmann::json& turn) {
  if (turn.contains("sender_class")) return turn.value("sender_class", "") == "Bot";
  return turn.value("sender", "") == "participant2";
}
}  // namespace

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
      const bool bot_then_human = is_bot(turn) && !is_bot(next);
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

Result<std::vector<RankingExample>> load_convai2_human_replies(const std::string& path) {
  SELFFEED_ASSIGN_OR_RETURN(auto examples, load_convai2_satisfaction(path, /*labelled_only=*/false));
  std::vector<RankingExample> out;
  for (SatisfactionExample& e : examples) {
    if (e.split != Split::kTrain) continue;
    std::vector<std::string>& turns = e.input.history;
    turns.push_back(std::move(e.input.bot_reply));
    out.push_back({.context = format_context(turns), .target = std::move(e.input.user_reply)});
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

Result<SatisfactionData> load_satisfaction_data(std::span<const std::string> labelled_paths,
                                                std::span<const std::string> pool_paths, int rotation) {
  if (rotation < 0 || rotation >= kSplitFolds) return invalid_argument_error("the split rotation is 0 to 4");
  SatisfactionData d;
  for (const std::string& path : labelled_paths) {
    SELFFEED_ASSIGN_OR_RETURN(auto all, load_convai2_satisfaction(path, /*labelled_only=*/false));
    for (auto& e : all) {
      e.split = split_of(e.dialogue_id, rotation);
      if (e.label >= 0) d.labelled.push_back(std::move(e));
      else if (e.split == Split::kTrain) d.unlabelled.push_back(std::move(e));
    }
  }
  for (const std::string& path : pool_paths) {
    SELFFEED_ASSIGN_OR_RETURN(auto all, load_convai2_satisfaction(path, /*labelled_only=*/false));
    for (auto& e : all) {
      e.split = split_of(e.dialogue_id, rotation);
      if (e.split == Split::kTrain) d.unlabelled.push_back(std::move(e));
    }
  }
  if (d.labelled.empty()) return invalid_argument_error("no rated examples in the labelled satisfaction files");
  return d;
}

Result<satisfaction::LabelModel> fit_label_model(const SatisfactionData& d,
                                                 std::span<const satisfaction::LabelingFunction> functions) {
  std::vector<std::vector<satisfaction::Vote>> votes;
  for (const auto& e : d.unlabelled) votes.push_back(satisfaction::apply_labeling_functions(functions, e.input));
  for (const auto& e : d.labelled) {
    if (e.split == Split::kTrain) votes.push_back(satisfaction::apply_labeling_functions(functions, e.input));
  }
  return satisfaction::LabelModel::fit(votes);
}

SatisfactionPairs weak_labels(const satisfaction::LabelModel& label_model, std::span<const SatisfactionExample> pool,
                              std::size_t sample, std::mt19937_64& rng,
                              std::span<const satisfaction::LabelingFunction> functions) {
  std::vector<std::size_t> order(pool.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(std::min(order.size(), sample));
  SatisfactionPairs out;
  std::vector<double> probabilities;
  for (std::size_t i : order) {
    const satisfaction::SatisfactionInput& in = pool[i].input;
    out.contexts.push_back(satisfaction::satisfaction_context(in));
    probabilities.push_back(label_model.probability(satisfaction::apply_labeling_functions(functions, in)));
  }
  const double n = static_cast<double>(probabilities.size());
  for (double rank : satisfaction::average_ranks(probabilities)) out.targets.push_back((rank - 0.5) / n);
  return out;
}

}  // namespace selffeed::trainer
