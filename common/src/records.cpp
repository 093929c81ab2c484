#include "selffeed/common/records.h"

#include <array>
#include <chrono>
#include <utility>

namespace selffeed {
namespace {

// One table per enum keeps name and parse in agreement.
template <class Enum, std::size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "unknown";
}

template <class Enum, std::size_t N>
std::optional<Enum> parse_from(const std::array<std::pair<Enum, std::string_view>, N>& table,
                               std::string_view name) {
  for (const auto& [e, n] : table) {
    if (n == name) return e;
  }
  return std::nullopt;
}

constexpr std::array<std::pair<ExampleKind, std::string_view>, 4> kKindNames{{
    {ExampleKind::kHH, "HH"}, {ExampleKind::kHB, "HB"}, {ExampleKind::kFB, "FB"}, {ExampleKind::kST, "ST"}}};
constexpr std::array<std::pair<Speaker, std::string_view>, 2> kSpeakerNames{{
    {Speaker::kUser, "user"}, {Speaker::kBot, "bot"}}};
constexpr std::array<std::pair<Phase, std::string_view>, 4> kPhaseNames{{
    {Phase::kNormal, "normal"},
    {Phase::kFeedbackRequested, "feedback_requested"},
    {Phase::kNewTopicRequested, "newtopic_requested"},
    {Phase::kRatingRequested, "rating_requested"}}};
constexpr std::array<std::pair<DislikeReason, std::string_view>, 5> kDislikeReasonNames{{
    {DislikeReason::kOffTopic, "off_topic"},
    {DislikeReason::kNonsensical, "nonsensical"},
    {DislikeReason::kRepetitive, "repetitive"},
    {DislikeReason::kInappropriate, "inappropriate"},
    {DislikeReason::kOther, "other"}}};
constexpr std::array<std::pair<ModelStatus, std::string_view>, 5> kModelStatusNames{{
    {ModelStatus::kCandidate, "candidate"},
    {ModelStatus::kLive, "live"},
    {ModelStatus::kRetired, "retired"},
    {ModelStatus::kRejected, "rejected"},
    {ModelStatus::kTrial, "trial"}}};

}  // namespace

std::string_view example_kind_name(ExampleKind kind) { return name_of(kKindNames, kind); }
std::optional<ExampleKind> parse_example_kind(std::string_view name) { return parse_from(kKindNames, name); }
std::string_view speaker_name(Speaker speaker) { return name_of(kSpeakerNames, speaker); }
std::optional<Speaker> parse_speaker(std::string_view name) { return parse_from(kSpeakerNames, name); }
std::string_view phase_name(Phase phase) { return name_of(kPhaseNames, phase); }
std::optional<Phase> parse_phase(std::string_view name) { return parse_from(kPhaseNames, name); }
std::string_view dislike_reason_name(DislikeReason reason) { return name_of(kDislikeReasonNames, reason); }
std::optional<DislikeReason> parse_dislike_reason(std::string_view name) {
  return parse_from(kDislikeReasonNames, name);
}
std::string dislike_reason_names(std::string_view separator) {
  std::string out;
  for (const auto& [reason, name] : kDislikeReasonNames) {
    out += (out.empty() ? "" : std::string(separator)) + std::string(name);
  }
  return out;
}
std::string_view model_status_name(ModelStatus status) { return name_of(kModelStatusNames, status); }
std::optional<ModelStatus> parse_model_status(std::string_view name) {
  return parse_from(kModelStatusNames, name);
}

std::int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace selffeed
