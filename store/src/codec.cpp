#include "codec.h"

#include <nlohmann/json.hpp>

#include "keys.h"

namespace selffeed::store::codec {
namespace {

using nlohmann::json;

std::string to_bytes(const json& j) {
  std::vector<std::uint8_t> cbor = json::to_cbor(j);
  return std::string(cbor.begin(), cbor.end());
}

Result<json> from_bytes(std::string_view what, std::string_view value) {
  json j = json::from_cbor(value.begin(), value.end(), /*strict=*/true, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return data_loss_error("corrupt " + std::string(what) + " record (not a CBOR map)");
  }
  return j;
}

// Reads an optional field of type T; a present field of the wrong type is corruption.
template <class T>
Status read_field(const json& j, const char* name, T& out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return ok_status();
  try {
    out = it->get<T>();
  } catch (const json::exception& e) {
    return data_loss_error(std::string("field '") + name + "' has the wrong type: " + e.what());
  }
  return ok_status();
}

template <class T>
Status read_optional(const json& j, const char* name, std::optional<T>& out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    out.reset();
    return ok_status();
  }
  T value{};
  SELFFEED_RETURN_IF_ERROR(read_field(j, name, value));
  out = value;
  return ok_status();
}

template <class Enum>
Status read_enum(const json& j, const char* name, std::optional<Enum> (*parse)(std::string_view), Enum& out) {
  std::string text;
  SELFFEED_RETURN_IF_ERROR(read_field(j, name, text));
  std::optional<Enum> parsed = parse(text);
  if (!parsed) return data_loss_error(std::string("field '") + name + "' has unknown value '" + text + "'");
  out = *parsed;
  return ok_status();
}

}  // namespace

std::string encode_conversation(const Conversation& c) {
  return to_bytes({{"user_id", c.user_id}, {"created_ms", c.created_ms}, {"updated_ms", c.updated_ms},
                   {"state", c.state}});
}

Result<Conversation> decode_conversation(std::string_view id, std::string_view value) {
  SELFFEED_ASSIGN_OR_RETURN(json j, from_bytes("conversation", value));
  Conversation c;
  c.id = std::string(id);
  SELFFEED_RETURN_IF_ERROR(read_field(j, "user_id", c.user_id));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "created_ms", c.created_ms));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "updated_ms", c.updated_ms));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "state", c.state));
  return c;
}

namespace {
// The turn fields only some turns have, shared by the CBOR value and the JSONL line.
template <class Json>
void put_optional_turn_fields(Json& j, const Turn& t) {
  if (t.satisfaction) j["satisfaction"] = *t.satisfaction;
  if (t.candidate_id) j["candidate_id"] = *t.candidate_id;
  if (t.shadow) j["shadow"] = {{"version", t.shadow->version}, {"text", t.shadow->text}};
  if (t.rating_request) j["rating_request"] = *t.rating_request;
  if (t.thumbs_up) j["rating"] = *t.thumbs_up ? "up" : "down";
  if (t.dislike_reason) j["reason"] = dislike_reason_name(*t.dislike_reason);
  if (t.suggestion) j["suggestion"] = *t.suggestion;
  if (t.ends_topic) j["ends_topic"] = true;
}
}  // namespace

std::string encode_turn(const Turn& t) {
  json j = {{"speaker", speaker_name(t.speaker)}, {"text", t.text}, {"time_ms", t.time_ms},
            {"phase", phase_name(t.phase)}, {"model_version", t.model_version}};
  put_optional_turn_fields(j, t);
  return to_bytes(j);
}

Result<Turn> decode_turn(std::string_view conversation_id, std::uint32_t index, std::string_view value) {
  SELFFEED_ASSIGN_OR_RETURN(json j, from_bytes("turn", value));
  Turn t;
  t.conversation_id = std::string(conversation_id);
  t.index = index;
  SELFFEED_RETURN_IF_ERROR(read_enum(j, "speaker", &parse_speaker, t.speaker));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "text", t.text));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "time_ms", t.time_ms));
  SELFFEED_RETURN_IF_ERROR(read_enum(j, "phase", &parse_phase, t.phase));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "model_version", t.model_version));
  SELFFEED_RETURN_IF_ERROR(read_optional(j, "satisfaction", t.satisfaction));
  SELFFEED_RETURN_IF_ERROR(read_optional(j, "candidate_id", t.candidate_id));
  SELFFEED_RETURN_IF_ERROR(read_optional(j, "rating_request", t.rating_request));
  SELFFEED_RETURN_IF_ERROR(read_optional(j, "suggestion", t.suggestion));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "ends_topic", t.ends_topic));
  std::optional<std::string> rating;
  SELFFEED_RETURN_IF_ERROR(read_optional(j, "rating", rating));
  if (rating) {
    if (*rating != "up" && *rating != "down") return data_loss_error("field 'rating' is neither \"up\" nor \"down\"");
    t.thumbs_up = *rating == "up";
  }
  std::optional<std::string> reason;
  SELFFEED_RETURN_IF_ERROR(read_optional(j, "reason", reason));
  if (reason) {
    t.dislike_reason = parse_dislike_reason(*reason);
    if (!t.dislike_reason) return data_loss_error("field 'reason' has unknown value '" + *reason + "'");
  }
  if (auto shadow = j.find("shadow"); shadow != j.end()) {
    if (!shadow->is_object()) return data_loss_error("field 'shadow' has the wrong type: not a map");
    ShadowReply reply;
    SELFFEED_RETURN_IF_ERROR(read_field(*shadow, "version", reply.version));
    SELFFEED_RETURN_IF_ERROR(read_field(*shadow, "text", reply.text));
    t.shadow = std::move(reply);
  }
  return t;
}

namespace {
// The example fields shared by the CBOR value and the JSONL line.
template <class Json>
void put_example_fields(Json& j, const Example& e) {
  if (!e.conversation_id.empty()) j["conversation_id"] = e.conversation_id;
  if (e.turn_index >= 0) j["turn_index"] = e.turn_index;
  if (!e.user_id.empty()) j["user_id"] = e.user_id;
  if (e.satisfaction) j["satisfaction"] = *e.satisfaction;
  if (!e.model_version.empty()) j["model_version"] = e.model_version;
  if (e.created_ms != 0) j["created_ms"] = e.created_ms;
  if (!e.source.empty()) j["source"] = e.source;
}

template <class Json>
Status get_example_fields(const Json& j, Example& e) {
  SELFFEED_RETURN_IF_ERROR(read_field(j, "conversation_id", e.conversation_id));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "turn_index", e.turn_index));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "user_id", e.user_id));
  SELFFEED_RETURN_IF_ERROR(read_optional(j, "satisfaction", e.satisfaction));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "model_version", e.model_version));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "created_ms", e.created_ms));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "source", e.source));
  return ok_status();
}
}  // namespace

std::string encode_example(const Example& e) {
  json j = {{"context", e.context}, {"target", e.target}};
  put_example_fields(j, e);
  return to_bytes(j);
}

Result<Example> decode_example(ExampleKind kind, std::uint64_t seq, std::string_view value) {
  SELFFEED_ASSIGN_OR_RETURN(json j, from_bytes("example", value));
  Example e;
  e.kind = kind;
  e.seq = seq;
  SELFFEED_RETURN_IF_ERROR(read_field(j, "context", e.context));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "target", e.target));
  SELFFEED_RETURN_IF_ERROR(get_example_fields(j, e));
  return e;
}

std::string encode_model(const ModelRecord& m) {
  return to_bytes({{"path", m.path}, {"status", model_status_name(m.status)}, {"metrics", m.metrics_json},
                   {"lineage", m.lineage_json}, {"created_ms", m.created_ms}, {"updated_ms", m.updated_ms}});
}

Result<ModelRecord> decode_model(std::string_view version, std::string_view value) {
  SELFFEED_ASSIGN_OR_RETURN(json j, from_bytes("model", value));
  ModelRecord m;
  m.version = std::string(version);
  SELFFEED_RETURN_IF_ERROR(read_field(j, "path", m.path));
  SELFFEED_RETURN_IF_ERROR(read_enum(j, "status", &parse_model_status, m.status));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "metrics", m.metrics_json));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "lineage", m.lineage_json));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "created_ms", m.created_ms));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "updated_ms", m.updated_ms));
  return m;
}

std::string encode_tombstone(const Tombstone& t) {
  return to_bytes({{"deleted_ms", t.deleted_ms}, {"example_seqs", t.example_seqs}, {"reply_sha256", t.reply_sha256}});
}

Result<Tombstone> decode_tombstone(std::string_view value) {
  Tombstone t;
  if (value.size() == 8) {  // the old form: the time alone (a CBOR map of it is longer)
    SELFFEED_ASSIGN_OR_RETURN(std::uint64_t ms, decode_u64(value));
    t.deleted_ms = static_cast<std::int64_t>(ms);
    return t;
  }
  SELFFEED_ASSIGN_OR_RETURN(json j, from_bytes("tombstone", value));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "deleted_ms", t.deleted_ms));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "example_seqs", t.example_seqs));
  SELFFEED_RETURN_IF_ERROR(read_field(j, "reply_sha256", t.reply_sha256));
  return t;
}

std::string encode_u64(std::uint64_t v) {
  std::string out;
  keys::append_be(out, v, 8);
  return out;
}

Result<std::uint64_t> decode_u64(std::string_view value) {
  if (value.size() != 8) return data_loss_error("corrupt counter (expected 8 bytes)");
  return keys::read_be(value, 8);
}

std::string example_to_jsonl(const Example& e) {
  nlohmann::ordered_json j;
  j["context"] = e.context;
  j["response"] = e.target;
  j["kind"] = example_kind_name(e.kind);
  j["seq"] = e.seq;
  put_example_fields(j, e);
  // Replace invalid UTF-8 rather than throw: a line must always be writable.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string transcript_to_jsonl(const Conversation& c, std::span<const Turn> turns) {
  nlohmann::ordered_json j;
  j["conversation_id"] = c.id;
  if (!c.user_id.empty()) j["user_id"] = c.user_id;
  j["created_ms"] = c.created_ms;
  j["updated_ms"] = c.updated_ms;
  j["turns"] = nlohmann::ordered_json::array();
  for (const Turn& t : turns) {
    nlohmann::ordered_json turn;
    turn["turn"] = t.index;
    turn["speaker"] = speaker_name(t.speaker);
    turn["text"] = t.text;
    turn["time_ms"] = t.time_ms;
    turn["phase"] = phase_name(t.phase);
    if (!t.model_version.empty()) turn["model_version"] = t.model_version;
    put_optional_turn_fields(turn, t);
    j["turns"].push_back(std::move(turn));
  }
  // As for examples: invalid UTF-8 is replaced, so that a line is always writable.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Example> example_from_jsonl(std::string_view line, ExampleKind default_kind,
                                   std::string_view default_source) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument_error("not valid JSON");
  if (!j.is_object()) return invalid_argument_error("not a JSON object");
  auto context = j.find("context");
  auto response = j.find("response");
  if (context == j.end() || !context->is_string()) return invalid_argument_error("missing string field 'context'");
  if (response == j.end()) return invalid_argument_error("missing field 'response'");
  Example e;
  e.context = context->get<std::string>();
  // ParlAI satisfaction files carry the label as a number.
  if (response->is_string()) {
    e.target = response->get<std::string>();
  } else if (response->is_number_integer()) {
    e.target = std::to_string(response->get<std::int64_t>());
  } else if (response->is_number()) {
    e.target = response->dump();
  } else {
    return invalid_argument_error("field 'response' must be a string or a number");
  }
  e.kind = default_kind;
  if (auto kind = j.find("kind"); kind != j.end()) {
    std::optional<ExampleKind> parsed = kind->is_string() ? parse_example_kind(kind->get<std::string>()) : std::nullopt;
    if (!parsed) return invalid_argument_error("field 'kind' must be one of HH, HB, FB, ST");
    e.kind = *parsed;
  }
  Status fields = get_example_fields(j, e);
  if (!fields.ok()) return invalid_argument_error(fields.message());
  if (e.source.empty()) e.source = std::string(default_source);
  return e;
}

}  // namespace selffeed::store::codec
