#include "chat_protocol.h"

#include <nlohmann/json.hpp>

namespace selffeed::app {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void add_id(json& j, std::string_view id) {
  if (!id.empty()) j["id"] = id;
}

// Reads an optional string field; an error message when it has the wrong type or size.
std::optional<std::string> read_string(const json& j, const char* field, std::size_t max_bytes, std::string& out) {
  const auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return std::string("\"") + field + "\" must be a string";
  out = it->get<std::string>();
  if (out.size() > max_bytes) {
    return std::string("\"") + field + "\" is longer than " + std::to_string(max_bytes) + " bytes";
  }
  if (out.find('\0') != std::string::npos) return std::string("\"") + field + "\" contains a NUL character";
  return std::nullopt;
}

}  // namespace

std::variant<ClientMessage, ProtocolError> parse_client_message(std::string_view text, const ProtocolLimits& limits) {
  // The websocket layer guarantees valid UTF-8, so a parse error here is a JSON syntax error.
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return ProtocolError{"invalid_json", "the message is not valid JSON", ""};
  if (!j.is_object()) return ProtocolError{"invalid_message", "the message must be a JSON object", ""};

  ClientMessage m;
  if (auto error = read_string(j, "id", limits.max_id_bytes, m.id)) {
    return ProtocolError{"invalid_message", *error, ""};
  }
  auto invalid = [&](std::string message) { return ProtocolError{"invalid_message", std::move(message), m.id}; };

  const auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) return invalid("\"type\" (a string) is required");
  const std::string type = type_it->get<std::string>();
  if (type == "hello") {
    m.type = ClientMessageType::kHello;
    if (auto e = read_string(j, "conversation_id", limits.max_id_bytes, m.conversation_id)) return invalid(*e);
    if (auto e = read_string(j, "user_id", limits.max_id_bytes, m.user_id)) return invalid(*e);
    if (const auto learn = j.find("learn"); learn != j.end()) {
      if (!learn->is_boolean()) return invalid("\"learn\" must be true or false");
      m.learn = learn->get<bool>();
    }
    if (const auto persona = j.find("persona"); persona != j.end()) {
      if (!persona->is_array() || persona->size() > limits.max_persona_sentences) {
        return invalid("\"persona\" must be an array of at most " + std::to_string(limits.max_persona_sentences) +
                       " strings");
      }
      m.persona.emplace();
      for (const json& sentence : *persona) {
        if (!sentence.is_string() || sentence.get_ref<const std::string&>().empty() ||
            sentence.get_ref<const std::string&>().size() > limits.max_persona_sentence_bytes) {
          return invalid("each \"persona\" sentence must be a string of 1.." +
                         std::to_string(limits.max_persona_sentence_bytes) + " bytes");
        }
        m.persona->push_back(sentence.get<std::string>());
      }
    }
  } else if (type == "message" || type == "suggest") {
    m.type = type == "message" ? ClientMessageType::kMessage : ClientMessageType::kSuggest;
    const auto t = j.find("text");
    if (t == j.end() || !t->is_string()) return invalid("\"text\" (a string) is required");
    m.text = t->get<std::string>();
    if (m.text.size() > limits.max_text_bytes) {
      return ProtocolError{"text_too_long", "the text is longer than " + std::to_string(limits.max_text_bytes) + " bytes",
                           m.id};
    }
    if (m.text.find_first_not_of(" \t\r\n") == std::string::npos) {
      return ProtocolError{"empty_text", "the text is empty", m.id};
    }
    if (m.text.find('\0') != std::string::npos) return invalid("\"text\" contains a NUL character");
    if (m.type == ClientMessageType::kSuggest) {
      const auto turn = j.find("turn");
      if (turn == j.end() || !turn->is_number_integer()) return invalid("\"turn\" (an integer) is required");
      m.turn = turn->get<std::int64_t>();
    }
  } else if (type == "rate") {
    m.type = ClientMessageType::kRate;
    const auto turn = j.find("turn");
    const auto value = j.find("value");
    if (turn == j.end() || !turn->is_number_integer()) return invalid("\"turn\" (an integer) is required");
    if (value == j.end() || !value->is_string() || (*value != "up" && *value != "down")) {
      return invalid("\"value\" must be \"up\" or \"down\"");
    }
    m.turn = turn->get<std::int64_t>();
    m.thumbs_up = *value == "up";
    if (const auto reason = j.find("reason"); reason != j.end() && !reason->is_null()) {
      if (reason->is_string()) m.reason = parse_dislike_reason(reason->get_ref<const std::string&>());
      if (!m.reason) return invalid("\"reason\" must be one of " + dislike_reason_names(", "));
      if (m.thumbs_up) return invalid("\"reason\" goes with a thumbs down (\"value\": \"down\")");
    }
  } else if (type == "reset") {
    m.type = ClientMessageType::kReset;
  } else if (type == "ping") {
    m.type = ClientMessageType::kPing;
  } else if (type == "delete_conversation") {
    m.type = ClientMessageType::kDeleteConversation;
  } else {
    return ProtocolError{"unknown_type", "unknown message type \"" + type + "\"", m.id};
  }
  return m;
}

std::string welcome_frame(const WelcomeFrame& f) {
  json turns = json::array();
  for (const Turn& t : f.recent_turns) {
    json turn = {{"turn", t.index}, {"speaker", speaker_name(t.speaker)}, {"text", t.text}};
    // A bot turn's phase is the one its reply put the conversation in, which names its kind.
    if (t.speaker == Speaker::kBot) {
      turn["kind"] = t.phase == Phase::kFeedbackRequested   ? "feedback_request"
                     : t.phase == Phase::kNewTopicRequested ? "thanks_new_topic"
                                                            : "answer";
      if (t.rating_request) turn["rating_request"] = *t.rating_request;
      if (t.thumbs_up) turn["rating"] = *t.thumbs_up ? "up" : "down";
      if (t.dislike_reason) turn["reason"] = dislike_reason_name(*t.dislike_reason);
      if (t.suggestion) turn["suggestion"] = *t.suggestion;
    }
    turns.push_back(std::move(turn));
  }
  json j = {{"type", "welcome"},         {"conversation_id", f.conversation_id}, {"user_id", f.user_id},
            {"resumed", f.resumed},      {"phase", phase_name(f.phase)},         {"learn", f.learn},
            {"persona", f.persona},      {"model_version", f.model_version},     {"turns", std::move(turns)}};
  add_id(j, f.id);
  return dump(j);
}

std::string reply_frame(const ReplyFrame& f) {
  json harvested = json::array();
  for (ExampleKind kind : f.harvested) harvested.push_back(example_kind_name(kind));
  json j = {{"type", "reply"},
            {"turn", f.turn},
            {"user_turn", f.user_turn},
            {"text", f.text},
            {"kind", f.kind},
            {"satisfaction", f.satisfaction ? json(*f.satisfaction) : json(nullptr)},
            {"model_version", f.model_version},
            {"harvested", std::move(harvested)},
            {"rating_request", f.rating_request ? json(*f.rating_request) : json(nullptr)}};
  add_id(j, f.id);
  return dump(j);
}

std::string conversation_deleted_frame(std::string_view id, std::string_view conversation_id, std::uint64_t turns,
                                       std::uint64_t examples) {
  json j = {{"type", "conversation_deleted"},
            {"conversation_id", conversation_id},
            {"turns", turns},
            {"examples", examples}};
  add_id(j, id);
  return dump(j);
}

std::string rated_frame(std::string_view id, std::int64_t turn, bool thumbs_up, std::optional<DislikeReason> reason,
                        std::uint64_t seq) {
  json j = {{"type", "rated"},
            {"turn", turn},
            {"value", thumbs_up ? "up" : "down"},
            {"reason", reason ? json(dislike_reason_name(*reason)) : json(nullptr)},
            {"example_seq", seq}};
  add_id(j, id);
  return dump(j);
}

std::string suggested_frame(std::string_view id, std::int64_t turn, std::uint64_t seq) {
  json j = {{"type", "suggested"}, {"turn", turn}, {"example_seq", seq}};
  add_id(j, id);
  return dump(j);
}

std::string reset_frame(std::string_view id) {
  json j = {{"type", "reset_done"}};
  add_id(j, id);
  return dump(j);
}

std::string pong_frame(std::string_view id) {
  json j = {{"type", "pong"}};
  add_id(j, id);
  return dump(j);
}

}  // namespace selffeed::app
