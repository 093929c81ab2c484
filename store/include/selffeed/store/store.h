// selffeed::store: the bot's durable memory, an embedded RocksDB directory.
//
// Column families: conversations, turns, examples (HH/HB/FB/ST, keyed by kind and a global
// sequence number), by_user (index for deleting a user), models (registry), meta
// (schema version, sequence counter, watermarks, settings, deleted-user tombstones).
//
//   SELFFEED_ASSIGN_OR_RETURN(auto store, Store::open({.path = "./selffeed-data"}));
//   WriteSet w;
//   w.turns.push_back(user_turn);
//   w.examples.push_back(hb_example);
//   SELFFEED_ASSIGN_OR_RETURN(auto seqs, store->commit(w));   // durable on return
//   store->scan_examples(ExampleKind::kHB, /*after_seq=*/watermark, visit);
//
// Thread safety: a Store may be used from any number of threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "selffeed/common/records.h"
#include "selffeed/common/status.h"

namespace selffeed::store {

// The on-disk layout this build reads and writes. Opening a store written by a newer
// schema fails with kFailedPrecondition instead of misreading it.
inline constexpr std::uint32_t kSchemaVersion = 1;

enum class OpenMode {
  kReadWrite,  // the owner (server, import); takes RocksDB's LOCK
  kReadOnly,   // a consistent view of what was on disk at open; never blocks the owner
};

struct StoreOptions {
  // Directory of the RocksDB instance. Default: ./selffeed-data
  std::string path = "./selffeed-data";
  OpenMode mode = OpenMode::kReadWrite;
  // Create the directory and column families when missing (read-write only). Default: true
  bool create_if_missing = true;
  // fsync the write-ahead log before commit() returns. Turning it off trades durability
  // for speed and is meant for benchmarks and bulk imports only. Default: true
  bool sync_writes = true;
  // Concurrent commit() calls share one synced WAL write (leader/follower group commit).
  // When false every commit pays its own fsync. Default: true
  bool group_commit = true;
  // Refuse writes (kResourceExhausted, "disk full") while the file system holding the store
  // has less than this many bytes free. The reserve keeps room for memtable flushes and
  // compactions, and it keeps RocksDB away from a real ENOSPC, after which some builds
  // abort. 0: no reserve. Default: 0 (the server sets one)
  std::uint64_t min_free_bytes = 0;
};

// Everything in one WriteSet is applied atomically and in order with other commits.
struct WriteSet {
  std::vector<Conversation> conversations;  // upserts
  std::vector<Turn> turns;                  // upserts by (conversation_id, index)
  std::vector<Example> examples;            // appended; their seq is assigned on commit
};

struct StoreStats {
  std::uint64_t conversations = 0;
  std::uint64_t turns = 0;
  std::map<ExampleKind, std::uint64_t> examples;  // every kind present, zero included
  std::uint64_t models = 0;
  std::uint64_t last_seq = 0;  // highest sequence number ever assigned
  std::uint64_t deleted_users = 0;
};

struct DeleteUserReport {
  std::uint64_t conversations = 0;
  std::uint64_t turns = 0;
  std::uint64_t examples = 0;
  std::vector<std::uint64_t> example_seqs;  // of the examples deleted, ascending
  std::map<ExampleKind, std::uint64_t> examples_by_kind;  // the kinds of those present
};
using DeleteConversationReport = DeleteUserReport;  // conversations: 1

// What the models that learned from deleted users still carry, without their text.
struct DeletedExamples {
  std::vector<std::uint64_t> seqs;  // of their examples, ascending (lineages list those trained on)
  std::set<std::string> reply_sha256;  // SHA-256 (hex) of their HB and FB replies (pools hold those)
};

struct ExportFilter {
  std::optional<ExampleKind> kind;  // all kinds when empty
  std::uint64_t after_seq = 0;      // only examples with seq > after_seq
  // Only these examples (a model's training snapshot, by its lineage); all when empty.
  std::optional<std::set<std::uint64_t>> seqs;
};

// How an export rewrites what it writes (the store itself is never changed), for exports
// that leave the machine: `text` rewrites every utterance (contexts, replies, turns,
// shadow replies), `id` every user and conversation id, consistently. Identity when empty.
struct ExportRewrite {
  std::function<std::string(std::string_view)> text;
  std::function<std::string(std::string_view)> id;
};

struct TranscriptFilter {
  std::optional<std::string> user_id;  // only this user's conversations
  std::int64_t updated_after_ms = 0;   // only conversations updated after this time
};

struct ImportOptions {
  // Kind of lines that carry no "kind" field (plain self-feeding files). Default: HH
  ExampleKind default_kind = ExampleKind::kHH;
  // Recorded as the example's source when a line carries none.
  std::string source = "import";
};

// Called for each example in order; return false to stop early.
using ExampleVisitor = std::function<bool(const Example&)>;
// Called for each conversation with all its turns; return false to stop early.
using TranscriptVisitor = std::function<bool(const Conversation&, const std::vector<Turn>&)>;

class Store {
 public:
  // Opens or creates the store at options.path.
  // Errors: kInvalidArgument (bad options), kUnavailable (locked by another process),
  // kDataLoss (corrupt files), kFailedPrecondition (newer schema, or a read-only open of a
  // store that does not exist), kInternal (other I/O errors). Messages name the path.
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const;

  // Applies `writes` atomically. On OK the data is on disk (when sync_writes) and the
  // returned vector holds the sequence number given to each example, in order.
  // Errors: kInvalidArgument (bad ids), kFailedPrecondition (read-only store),
  // kResourceExhausted (disk full), kInternal.
  Result<std::vector<std::uint64_t>> commit(const WriteSet& writes);

  // Convenience wrappers around commit().
  Status put_conversation(const Conversation& conversation);
  Result<std::uint64_t> add_example(const Example& example);

  // kNotFound when absent.
  Result<Conversation> get_conversation(const std::string& id) const;
  // Turns of a conversation with index >= from_index, in index order.
  Result<std::vector<Turn>> get_turns(const std::string& conversation_id,
                                      std::uint32_t from_index = 0) const;

  // Visits the examples of `kind` with seq > after_seq, in seq order.
  Status scan_examples(ExampleKind kind, std::uint64_t after_seq, const ExampleVisitor& visit) const;
  // Visits examples of every kind with seq > after_seq, in seq order.
  Status scan_all_examples(std::uint64_t after_seq, const ExampleVisitor& visit) const;
  // kNotFound when absent.
  Result<Example> get_example(ExampleKind kind, std::uint64_t seq) const;

  // Model registry. put_model upserts by version.
  Status put_model(const ModelRecord& record);
  Result<ModelRecord> get_model(const std::string& version) const;
  Result<std::vector<ModelRecord>> list_models() const;  // oldest first

  // Named watermarks ("trainer", ...): 0 when never set.
  Status set_watermark(const std::string& name, std::uint64_t seq);
  Result<std::uint64_t> get_watermark(const std::string& name) const;
  // Named settings the server keeps across restarts ("shadow", ...), as text the caller
  // owns: empty when never set. Durable on return.
  Status set_setting(const std::string& name, const std::string& value);
  Result<std::string> get_setting(const std::string& name) const;

  // Removes every conversation, turn and example of `user_id`, and leaves a tombstone so
  // that is_user_deleted() stays true and deleted_examples() keeps what models that learned
  // from them carry. Durable on return.
  Result<DeleteUserReport> delete_user(const std::string& user_id);
  Result<bool> is_user_deleted(const std::string& user_id) const;
  // Removes one conversation, its turns and its HB, FB and ST examples, and leaves a
  // tombstone for deleted_examples(), as delete_user() does; the user is not marked deleted.
  // The examples are found through the index by conversation; those a store holds from
  // before it had one, through the user's index or, for an anonymous conversation, by
  // reading every older example. kNotFound when there is no such conversation. Durable on
  // return.
  Result<DeleteConversationReport> delete_conversation(const std::string& conversation_id);
  // Writes the index by conversation for the HB, FB and ST examples a store holds from
  // before it had one, so that delete_conversation() reads no others; returns how many it
  // indexed (0 when all are). For `selffeed store index-conversations`, with no server on
  // the store.
  Result<std::uint64_t> index_conversations();
  // What every deleted user's and conversation's tombstone keeps of their examples
  // (DeletedExamples). Users deleted by a store from before session 26 add nothing: their
  // tombstones kept the time.
  Result<DeletedExamples> deleted_examples() const;

  Result<StoreStats> stats() const;

  // Self-feeding JSONL, one example per line:
  //   {"context": ..., "response": ..., "kind": "HB", "seq": 7, "conversation_id": ...,
  //    "turn_index": 3, "user_id": ..., "satisfaction": 0.83, "model_version": ...,
  //    "created_ms": ..., "source": ...}
  // Optional fields are omitted when empty. Returns the number of lines written.
  Result<std::uint64_t> export_examples(std::ostream& out, const ExportFilter& filter = {},
                                        const ExportRewrite& rewrite = {}) const;
  // Conversations as JSON Lines, one per line, oldest first, for people to read them:
  //   {"conversation_id": ..., "user_id": ..., "created_ms": ..., "updated_ms": ...,
  //    "turns": [{"turn": 0, "speaker": "user", "text": ..., "time_ms": ..., "phase": "normal",
  //               "satisfaction": 0.83}, {"turn": 1, "speaker": "bot", ..., "model_version":
  //               ..., "candidate_id": 17}, ...]}
  // Optional fields are omitted when empty. Returns the number of conversations written.
  Result<std::uint64_t> export_transcripts(std::ostream& out, const TranscriptFilter& filter = {},
                                           const ExportRewrite& rewrite = {}) const;
  // Visits the conversations that pass `filter`, oldest first, each with its turns.
  Status scan_transcripts(const TranscriptFilter& filter, const TranscriptVisitor& visit) const;
  // Reads the format above; only "context" and "response" are required, so ParlAI
  // self-feeding files load unchanged. Every example gets a fresh seq from this store;
  // all other fields round-trip exactly. The whole file is validated before anything is
  // written (kInvalidArgument names the line), then committed in batches.
  Result<std::uint64_t> import_examples(std::istream& in, const ImportOptions& options = {});

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace selffeed::store
