// Key layout of every column family. Big-endian integers keep RocksDB's bytewise order
// equal to numeric order; NUL separates ids (which may not contain NUL) from suffixes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "selffeed/common/records.h"

namespace selffeed::store::keys {

inline void append_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline std::uint64_t read_be(std::string_view in, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// examples: <kind:1><seq:8>
inline std::string example(ExampleKind kind, std::uint64_t seq) {
  std::string k(1, static_cast<char>(kind));
  append_be(k, seq, 8);
  return k;
}
inline std::string example_kind_prefix(ExampleKind kind) { return std::string(1, static_cast<char>(kind)); }
inline std::uint64_t example_seq(std::string_view key) { return read_be(key.substr(1), 8); }
inline ExampleKind example_kind(std::string_view key) { return static_cast<ExampleKind>(key[0]); }

// turns: <conversation_id>\0<index:4>
inline std::string turn_prefix(std::string_view conversation_id) {
  std::string k(conversation_id);
  k.push_back('\0');
  return k;
}
inline std::string turn(std::string_view conversation_id, std::uint32_t index) {
  std::string k = turn_prefix(conversation_id);
  append_be(k, index, 4);
  return k;
}
inline std::uint32_t turn_index(std::string_view key) {
  return static_cast<std::uint32_t>(read_be(key.substr(key.size() - 4), 4));
}

// by_user: <user_id>\0<tag><primary key>, tag 'c' = conversation id, 'e' = example key.
inline constexpr char kUserConversationTag = 'c';
inline constexpr char kUserExampleTag = 'e';
inline std::string user_prefix(std::string_view user_id) {
  std::string k(user_id);
  k.push_back('\0');
  return k;
}
inline std::string user_entry(std::string_view user_id, char tag, std::string_view primary) {
  std::string k = user_prefix(user_id);
  k.push_back(tag);
  k.append(primary);
  return k;
}
// by_user also indexes examples by conversation: \0 'x' <conversation_id> \0 <example key>.
// User ids are never empty, so no user's prefix starts with NUL. Only examples from
// kConversationIndexFrom on are in it (stores from before it have older ones).
inline std::string conversation_examples_prefix(std::string_view conversation_id) {
  std::string k(1, '\0');
  k.push_back('x');
  k.append(conversation_id);
  k.push_back('\0');
  return k;
}
inline std::string conversation_example_entry(std::string_view conversation_id, std::string_view example_key) {
  return conversation_examples_prefix(conversation_id).append(example_key);
}

// meta
inline constexpr std::string_view kSchemaVersion = "schema_version";
inline constexpr std::string_view kNextSeq = "next_seq";
inline constexpr std::string_view kConversationIndexFrom = "conversation_index_from_seq";
inline std::string watermark(std::string_view name) { return "watermark/" + std::string(name); }
inline std::string setting(std::string_view name) { return "setting/" + std::string(name); }
inline constexpr std::string_view kDeletedUserPrefix = "deleted_user/";
inline std::string deleted_user(std::string_view user_id) {
  return std::string(kDeletedUserPrefix) + std::string(user_id);
}
inline constexpr std::string_view kDeletedConversationPrefix = "deleted_conversation/";
inline std::string deleted_conversation(std::string_view conversation_id) {
  return std::string(kDeletedConversationPrefix) + std::string(conversation_id);
}

}  // namespace selffeed::store::keys
