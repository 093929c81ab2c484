// Dataset snapshots: what leaves the machine and what a model learned from.
//
// An export can hide who said what: personal data in every utterance is redacted (the
// harvest guard's patterns) and user and conversation ids are replaced by pseudonyms,
// HMAC-SHA-256 under a key the operator keeps, so that the same person has the same
// pseudonym in every export made with that key (exports stay diffable and joinable) and
// nobody without the key can check a guessed id against them.
//
// Every retraining pins its snapshot: the SHA-256 of the export of exactly the harvested
// examples it trained on, in the bundle's lineage (pinned_snapshot in model_report.h reads
// it). `store export --snapshot-of` writes those examples again and checks them against it.
#pragma once

#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <string_view>

#include "selffeed/common/status.h"
#include "selffeed/store/store.h"

namespace selffeed::app {

struct ExportPrivacy {
  bool redact = false;
  std::string pseudonym_key;  // empty: ids as stored
};

// The rewrite an export applies for `privacy` (identity for the default).
store::ExportRewrite export_rewrite(const ExportPrivacy& privacy);

// "anon-" and the first 20 hex digits (80 bits) of HMAC-SHA-256(key, id).
std::string pseudonym(std::string_view key, std::string_view id);

// The key in `path`, without a trailing newline. kNotFound; kInvalidArgument when it is
// shorter than 16 bytes (a short key makes pseudonyms guessable by brute force).
Result<std::string> read_pseudonym_key(const std::string& path);

// One JSON line per preference pair (feedback::preference_pairs: the answers users
// corrected by feedback or a suggestion, {"context", "chosen", "rejected", "source",
// "conversation_id", "user_id", "turn", "model_version"}) of the conversations that pass
// `filter`, utterances and ids rewritten as in the other exports; how many.
Result<std::uint64_t> export_preference_pairs(const store::Store& store, const store::TranscriptFilter& filter,
                                              const store::ExportRewrite& rewrite, std::ostream& out);

// SHA-256 of what export_examples writes for exactly `seqs`, without rewriting.
Result<std::string> snapshot_sha256(const store::Store& store, const std::set<std::uint64_t>& seqs);

}  // namespace selffeed::app
