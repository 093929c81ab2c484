// The value types every module speaks: conversations, turns, training examples and
// model-registry entries. Plain structs with no behaviour beyond naming their enums; the
// store persists them, the policy produces them, the trainer consumes them.
//
//   Example e{.kind = ExampleKind::kHB, .context = "__p2__ hi __p1__ how are you?",
//             .target = "great, thanks!", .user_id = "u1", .satisfaction = 0.83};
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace selffeed {

// Where a training example came from (self-feeding paper, section 1).
enum class ExampleKind : std::uint8_t {
  kHH = 1,  // human-human DIALOGUE example (e.g. PersonaChat)
  kHB = 2,  // human-bot DIALOGUE example: the user's reply imitated
  kFB = 3,  // FEEDBACK example: the user's answer to "what could I have said?"
  kST = 4,  // SATISFACTION label; target is "1" (satisfied) or "0", or a probability
};
inline constexpr ExampleKind kAllExampleKinds[] = {ExampleKind::kHH, ExampleKind::kHB,
                                                   ExampleKind::kFB, ExampleKind::kST};

// "HH", "HB", "FB", "ST".
std::string_view example_kind_name(ExampleKind kind);
// Inverse of example_kind_name (case-sensitive); nullopt for anything else.
std::optional<ExampleKind> parse_example_kind(std::string_view name);

enum class Speaker : std::uint8_t { kUser = 1, kBot = 2 };
std::string_view speaker_name(Speaker speaker);  // "user", "bot"
std::optional<Speaker> parse_speaker(std::string_view name);

// The self-feeding policy state a turn was produced in (paper section 1.6).
enum class Phase : std::uint8_t {
  kNormal = 1,
  kFeedbackRequested = 2,
  kNewTopicRequested = 3,
  kRatingRequested = 4,
};
std::string_view phase_name(Phase phase);  // "normal", "feedback_requested", ...
std::optional<Phase> parse_phase(std::string_view name);

// Why a user rated an answer down, when they said: BlenderBot 3's dislike types, the reason
// enum beside the free text (a suggestion) in the feedback data model of peers.md.
enum class DislikeReason : std::uint8_t {
  kOffTopic = 1,       // off topic, or ignored what the user said
  kNonsensical = 2,    // makes no sense, or is wrong
  kRepetitive = 3,     // repeats itself or the user
  kInappropriate = 4,  // rude or inappropriate
  kOther = 5,
};
inline constexpr DislikeReason kAllDislikeReasons[] = {DislikeReason::kOffTopic, DislikeReason::kNonsensical,
                                                       DislikeReason::kRepetitive, DislikeReason::kInappropriate,
                                                       DislikeReason::kOther};
std::string_view dislike_reason_name(DislikeReason reason);  // "off_topic", "nonsensical", ...
std::optional<DislikeReason> parse_dislike_reason(std::string_view name);
// Every reason's name, in enum order, `separator` between: for messages and help texts.
std::string dislike_reason_names(std::string_view separator);

struct Conversation {
  std::string id;       // 1..128 bytes, no NUL
  std::string user_id;  // may be empty (anonymous); otherwise 1..128 bytes, no NUL
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  // Opaque, serialized policy state (owned by the feedback module) used to resume.
  std::string state;

  friend bool operator==(const Conversation&, const Conversation&) = default;
};

// What a model in shadow would have answered instead of the bot's answer: never shown,
// kept to compare it with the live model on the same turns.
struct ShadowReply {
  std::string version;
  std::string text;

  friend bool operator==(const ShadowReply&, const ShadowReply&) = default;
};

struct Turn {
  std::string conversation_id;
  std::uint32_t index = 0;  // 0-based position within the conversation
  Speaker speaker = Speaker::kUser;
  std::string text;
  std::int64_t time_ms = 0;
  // Satisfaction estimate that drove the decision on this turn, if one was computed.
  std::optional<double> satisfaction;
  Phase phase = Phase::kNormal;
  std::string model_version;
  // Index of the chosen reply in the model's candidate pool (bot answers only; none when
  // the bot said a sentence of its persona as it stands).
  std::optional<std::int64_t> candidate_id;
  std::optional<ShadowReply> shadow;  // bot answers only
  // Bot turns only: beside this reply the bot asked the user to rate its answer at this
  // turn (a rating request). The ratings it asked for are a random sample of the judged
  // answers; the others are the ones users chose to rate.
  std::optional<std::uint32_t> rating_request;
  // Bot turns only: the user's rating of this answer (true: thumbs up), the latest when they
  // changed their mind. Every rating is also an ST example; this is the one that stands.
  std::optional<bool> thumbs_up;
  // With a thumbs down, why, when the user said (of the rating that stands).
  std::optional<DislikeReason> dislike_reason;
  // Bot answers only: what the user said the bot could have said instead (the latest; each
  // is also an FB example).
  std::optional<std::string> suggestion;
  // The user reset the conversation after this turn (a new topic, which leaves no turn of
  // its own): the context of later answers starts after it.
  bool ends_topic = false;

  friend bool operator==(const Turn&, const Turn&) = default;
};

struct Example {
  // Assigned by the store on commit: strictly increasing across all kinds, so a reader can
  // ask for "everything after watermark W".
  std::uint64_t seq = 0;
  ExampleKind kind = ExampleKind::kHH;
  std::string context;  // "__p2__ ... __p1__ ..." or "__null__"
  std::string target;   // reply, feedback text, or satisfaction label
  std::string conversation_id;
  std::int64_t turn_index = -1;  // source turn, -1 when not from a live conversation
  std::string user_id;
  std::optional<double> satisfaction;  // estimate at harvest time
  std::string model_version;          // model live when harvested
  std::int64_t created_ms = 0;
  std::string source;  // one of the kFrom* below, or "import:<file>"

  friend bool operator==(const Example&, const Example&) = default;
};
// Example::source of what the server harvests.
inline constexpr std::string_view kFromServer = "server";          // the policy's HB and FB
inline constexpr std::string_view kFromThumbs = "thumbs";          // ST: a user's rating
inline constexpr std::string_view kFromSuggestion = "suggestion";  // FB: a user's suggest

enum class ModelStatus : std::uint8_t {
  kCandidate = 1,  // trained, not yet judged
  kLive = 2,       // what the server serves
  kRetired = 3,    // was live, replaced
  kRejected = 4,   // refused by the promotion gate
  kTrial = 5,      // served beside the live model to a share of new conversations
};
std::string_view model_status_name(ModelStatus status);
std::optional<ModelStatus> parse_model_status(std::string_view name);

struct ModelRecord {
  std::string version;  // 1..128 bytes, no NUL
  std::string path;     // bundle directory
  ModelStatus status = ModelStatus::kCandidate;
  std::string metrics_json = "{}";  // evaluation numbers, as a JSON object
  std::string lineage_json = "{}";  // which data trained it, as a JSON object
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;

  friend bool operator==(const ModelRecord&, const ModelRecord&) = default;
};

// Milliseconds since the Unix epoch, from the system clock.
std::int64_t unix_millis();

}  // namespace selffeed
