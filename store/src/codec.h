// Record <-> bytes. Values are CBOR maps (nlohmann/json), so fields can be added without
// a migration; keys carry the identity (see keys.h) and are not repeated in values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "selffeed/common/records.h"
#include "selffeed/common/status.h"

namespace selffeed::store::codec {

std::string encode_conversation(const Conversation& c);
Result<Conversation> decode_conversation(std::string_view id, std::string_view value);

std::string encode_turn(const Turn& t);
Result<Turn> decode_turn(std::string_view conversation_id, std::uint32_t index, std::string_view value);

std::string encode_example(const Example& e);
Result<Example> decode_example(ExampleKind kind, std::uint64_t seq, std::string_view value);

std::string encode_model(const ModelRecord& m);
Result<ModelRecord> decode_model(std::string_view version, std::string_view value);

// A deleted user's tombstone: when, the sequence numbers of the examples deleted (so that
// the versions that learned from them can be told later) and the SHA-256 of their HB and
// FB replies (so that a model that still holds one in its candidate pool never says it).
// Tombstones written before session 26 hold the time alone: the rest decodes to none.
struct Tombstone {
  std::int64_t deleted_ms = 0;
  std::vector<std::uint64_t> example_seqs;
  std::vector<std::string> reply_sha256;
};
std::string encode_tombstone(const Tombstone& t);
Result<Tombstone> decode_tombstone(std::string_view value);

std::string encode_u64(std::uint64_t v);
Result<std::uint64_t> decode_u64(std::string_view value);

// One line of self-feeding JSONL (no trailing newline), and back.
std::string example_to_jsonl(const Example& e);
Result<Example> example_from_jsonl(std::string_view line, ExampleKind default_kind,
                                   std::string_view default_source);

// One line of the transcript export (Store::export_transcripts), no trailing newline.
std::string transcript_to_jsonl(const Conversation& c, std::span<const Turn> turns);

}  // namespace selffeed::store::codec
