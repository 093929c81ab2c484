// The chat protocol of docs/protocol.md: parsing what clients send and writing what the
// server answers. JSON lives here and nowhere else in the serving path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "selffeed/common/records.h"

namespace selffeed::app {

enum class ClientMessageType { kHello, kMessage, kRate, kSuggest, kReset, kPing, kDeleteConversation };

struct ClientMessage {
  ClientMessageType type = ClientMessageType::kPing;
  std::string id;  // optional request id, echoed in the answer
  std::string conversation_id;  // hello: resume or create this conversation
  std::string user_id;          // hello
  std::optional<bool> learn;    // hello: whether the conversation may teach the bot
  // hello: the bot's persona in this conversation, one fact per sentence; empty: the
  // server's own (serve --persona).
  std::optional<std::vector<std::string>> persona;
  std::string text;             // message; suggest: what the bot could have said
  std::int64_t turn = -1;       // rate, suggest: index of the bot turn
  bool thumbs_up = false;       // rate
  std::optional<DislikeReason> reason;  // rate, a thumbs down only: why, when the user said
};

// An error frame's content; `id` echoes the request's id when it could be read.
struct ProtocolError {
  std::string code;
  std::string message;
  std::string id;
};

struct ProtocolLimits {
  std::size_t max_text_bytes = 2000;  // of a message's text
  std::size_t max_id_bytes = 128;     // conversation, user and request ids
  std::size_t max_persona_sentences = 32;
  std::size_t max_persona_sentence_bytes = 500;
};

std::variant<ClientMessage, ProtocolError> parse_client_message(std::string_view text, const ProtocolLimits& limits);

// ---- server frames ----------------------------------------------------------------------

struct WelcomeFrame {
  std::string id;
  std::string conversation_id;
  std::string user_id;
  bool resumed = false;
  Phase phase = Phase::kNormal;
  bool learn = true;
  std::vector<std::string> persona;  // the bot's in this conversation
  std::string model_version;
  std::vector<Turn> recent_turns;  // oldest first
};

struct ReplyFrame {
  std::string id;
  std::uint32_t turn = 0;       // the bot turn's index
  std::uint32_t user_turn = 0;  // the index the user's message was stored under
  std::string text;
  std::string_view kind;  // "answer", "feedback_request", "thanks_new_topic"
  std::optional<double> satisfaction;
  std::string model_version;
  std::vector<ExampleKind> harvested;
  // The bot turn the user is asked to rate (the answer this message replied to), if any.
  std::optional<std::uint32_t> rating_request;
};

std::string welcome_frame(const WelcomeFrame& frame);
std::string reply_frame(const ReplyFrame& frame);
std::string rated_frame(std::string_view id, std::int64_t turn, bool thumbs_up, std::optional<DislikeReason> reason,
                        std::uint64_t seq);
std::string suggested_frame(std::string_view id, std::int64_t turn, std::uint64_t seq);
std::string conversation_deleted_frame(std::string_view id, std::string_view conversation_id, std::uint64_t turns,
                                       std::uint64_t examples);
std::string reset_frame(std::string_view id);
std::string pong_frame(std::string_view id);
// Error frames come from websocket::error_frame(), shared with the transport's own errors.

}  // namespace selffeed::app
