#include "selffeed/store/store.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <istream>
#include <mutex>
#include <ostream>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "codec.h"
#include "keys.h"
#include "selffeed/common/digest.h"
#include "selffeed/common/log.h"

namespace selffeed::store {
namespace {

constexpr std::size_t kMaxIdBytes = 128;
constexpr std::size_t kMaxTextBytes = 1 << 20;
constexpr std::size_t kImportBatchSize = 2048;

enum Family : int { kDefault = 0, kConversations, kTurns, kExamples, kByUser, kModels, kMeta, kFamilyCount };
constexpr const char* kFamilyNames[kFamilyCount] = {
    "default", "conversations", "turns", "examples", "by_user", "models", "meta"};

Status from_rocksdb(const rocksdb::Status& s, const std::string& path, std::string_view action) {
  if (s.ok()) return ok_status();
  std::string where = std::string(action) + " store '" + path + "'";
  if (s.IsNotFound()) return not_found_error(where + ": " + s.ToString());
  if (s.IsCorruption()) return data_loss_error(where + ": files are corrupt: " + s.ToString());
  if (s.IsNoSpace()) return resource_exhausted_error(where + ": disk full: " + s.ToString());
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return unavailable_error(where + ": it is in use by another process (RocksDB LOCK is held): " + s.ToString());
  }
  return internal_error(where + ": " + s.ToString());
}

Status check_id(std::string_view what, std::string_view id, bool allow_empty) {
  if (id.empty() && allow_empty) return ok_status();
  if (id.empty() || id.size() > kMaxIdBytes || id.find('\0') != std::string_view::npos) {
    return invalid_argument_error(std::string(what) + " must be 1.." + std::to_string(kMaxIdBytes) +
                                  " bytes without NUL");
  }
  return ok_status();
}

Status check_text(std::string_view what, std::string_view text) {
  if (text.size() > kMaxTextBytes) {
    return invalid_argument_error(std::string(what) + " is longer than " + std::to_string(kMaxTextBytes) + " bytes");
  }
  return ok_status();
}

Status validate(const WriteSet& w) {
  for (const Conversation& c : w.conversations) {
    SELFFEED_RETURN_IF_ERROR(check_id("conversation id", c.id, false));
    SELFFEED_RETURN_IF_ERROR(check_id("user id", c.user_id, true));
    SELFFEED_RETURN_IF_ERROR(check_text("conversation state", c.state));
  }
  for (const Turn& t : w.turns) {
    SELFFEED_RETURN_IF_ERROR(check_id("turn conversation id", t.conversation_id, false));
    SELFFEED_RETURN_IF_ERROR(check_text("turn text", t.text));
  }
  for (const Example& e : w.examples) {
    if (!parse_example_kind(example_kind_name(e.kind))) return invalid_argument_error("unknown example kind");
    SELFFEED_RETURN_IF_ERROR(check_id("example conversation id", e.conversation_id, true));
    SELFFEED_RETURN_IF_ERROR(check_id("example user id", e.user_id, true));
    SELFFEED_RETURN_IF_ERROR(check_text("example context", e.context));
    SELFFEED_RETURN_IF_ERROR(check_text("example target", e.target));
  }
  return ok_status();
}

bool has_prefix(const rocksdb::Slice& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s.data(), prefix.size()) == prefix;
}

}  // namespace

struct Store::Impl {
  StoreOptions options;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> families;  // indexed by Family; owned by db
  rocksdb::WriteOptions write_options;

  // The commit pipeline. One leader at a time builds and writes a batch for every queued
  // request (all of them with group commit, one without), so sequence numbers become
  // visible in order and concurrent committers share one fsync.
  //
  // A builder appends its writes to the batch and may take sequence numbers from
  // `next_seq`; it runs on the leader's thread, never concurrently with another builder.
  using Builder = std::function<Status(rocksdb::WriteBatch& batch, std::uint64_t& next_seq)>;
  struct Pending {
    const Builder* build;
    Status status;
    bool done = false;
  };
  std::mutex commit_mutex;
  std::condition_variable commit_cv;
  std::deque<Pending*> queue;     // Guarded by commit_mutex.
  bool leader_active = false;     // Guarded by commit_mutex.
  std::uint64_t next_seq = 1;     // Guarded by commit_mutex; read/written only by the leader.
  std::uint64_t conversation_index_from = 1;  // examples from this seq on are indexed by conversation

  ~Impl() {
    for (rocksdb::ColumnFamilyHandle* h : families) {
      if (h != nullptr && db) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    if (db) db->Close().PermitUncheckedError();
  }

  rocksdb::ColumnFamilyHandle* cf(Family f) const { return families[f]; }

  // kResourceExhausted while the store's file system is below its reserve.
  Status check_free_space() const {
    if (options.min_free_bytes == 0) return ok_status();
    struct statvfs fs {};
    if (::statvfs(options.path.c_str(), &fs) != 0) return ok_status();  // RocksDB will report the real problem
    const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (free_bytes >= options.min_free_bytes) return ok_status();
    return resource_exhausted_error("write to store '" + options.path + "': disk full: " +
                                    std::to_string(free_bytes >> 20) + " MiB free, below the reserve of " +
                                    std::to_string(options.min_free_bytes >> 20) + " MiB");
  }

  Status run_write(const Builder& build) {
    if (options.mode == OpenMode::kReadOnly) {
      return failed_precondition_error("store '" + options.path + "' is open read-only");
    }
    Pending me{.build = &build, .status = ok_status()};
    std::unique_lock lock(commit_mutex);
    queue.push_back(&me);
    while (!me.done) {
      if (leader_active) {
        commit_cv.wait(lock);
        continue;
      }
      leader_active = true;
      std::vector<Pending*> group;
      std::size_t take = options.group_commit ? queue.size() : 1;
      for (std::size_t i = 0; i < take; ++i) {
        group.push_back(queue.front());
        queue.pop_front();
      }
      std::uint64_t seq = next_seq;
      lock.unlock();

      rocksdb::WriteBatch batch;
      std::uint64_t first_seq = seq;
      for (Pending* p : group) {
        batch.SetSavePoint();
        std::uint64_t before = seq;
        p->status = (*p->build)(batch, seq);
        if (!p->status.ok()) {
          batch.RollbackToSavePoint().PermitUncheckedError();
          seq = before;
        }
      }
      Status written = ok_status();
      if (batch.Count() > 0) {
        if (seq != first_seq) batch.Put(cf(kMeta), keys::kNextSeq, codec::encode_u64(seq)).PermitUncheckedError();
        written = check_free_space();
        if (written.ok()) written = from_rocksdb(db->Write(write_options, &batch), options.path, "write to");
        if (!written.ok()) SELFFEED_LOGGER("store")->error("{}", written.to_string());
      }

      lock.lock();
      if (written.ok()) next_seq = seq;
      for (Pending* p : group) {
        if (p->status.ok() && !written.ok()) p->status = written;
        p->done = true;
      }
      leader_active = false;
      commit_cv.notify_all();
    }
    return me.status;
  }

  Result<std::string> get(Family f, std::string_view key) const {
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf(f), rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return not_found_error("not found");
    SELFFEED_RETURN_IF_ERROR(from_rocksdb(s, options.path, "read from"));
    return value;
  }

  // Visits every key of `f` starting with `prefix` (from `start` when given).
  template <class Visit>
  Status scan_prefix(Family f, std::string_view prefix, std::string_view start, Visit&& visit) const {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf(f)));
    std::string from(start.empty() ? prefix : start);
    for (it->Seek(from); it->Valid() && has_prefix(it->key(), prefix); it->Next()) {
      Result<bool> keep_going = visit(it->key(), it->value());
      if (!keep_going.ok()) return keep_going.status();
      if (!*keep_going) break;
    }
    return from_rocksdb(it->status(), options.path, "scan");
  }

  Status load_counters() {
    Result<std::string> stored = get(kMeta, keys::kNextSeq);
    if (stored.ok()) {
      SELFFEED_ASSIGN_OR_RETURN(next_seq, codec::decode_u64(*stored));
    } else if (stored.status().code() != StatusCode::kNotFound) {
      return stored.status();
    }
    // The highest key wins too, in case a crash lost nothing but the counter's order.
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf(kExamples)));
    for (ExampleKind kind : kAllExampleKinds) {
      it->SeekForPrev(keys::example(kind, ~std::uint64_t{0}));
      if (it->Valid() && has_prefix(it->key(), keys::example_kind_prefix(kind))) {
        next_seq = std::max(next_seq, keys::example_seq(std::string_view(it->key().data(), it->key().size())) + 1);
      }
    }
    return from_rocksdb(it->status(), options.path, "scan");
  }

  // Where the index by conversation starts: the first open by a server that writes it
  // records the next seq then (1 for a new store), so every later example is in it.
  Status load_conversation_index_from() {
    Result<std::string> stored = get(kMeta, keys::kConversationIndexFrom);
    if (stored.ok()) {
      SELFFEED_ASSIGN_OR_RETURN(conversation_index_from, codec::decode_u64(*stored));
      return ok_status();
    }
    if (stored.status().code() != StatusCode::kNotFound) return stored.status();
    conversation_index_from = next_seq;
    if (options.mode == OpenMode::kReadOnly) return ok_status();
    return from_rocksdb(db->Put(write_options, cf(kMeta), keys::kConversationIndexFrom, codec::encode_u64(next_seq)),
                        options.path, "initialise");
  }

  Status check_schema() {
    Result<std::string> stored = get(kMeta, keys::kSchemaVersion);
    if (!stored.ok()) {
      if (stored.status().code() != StatusCode::kNotFound) return stored.status();
      if (options.mode == OpenMode::kReadOnly) return ok_status();
      return from_rocksdb(db->Put(write_options, cf(kMeta), keys::kSchemaVersion, codec::encode_u64(kSchemaVersion)),
                          options.path, "initialise");
    }
    SELFFEED_ASSIGN_OR_RETURN(std::uint64_t version, codec::decode_u64(*stored));
    if (version > kSchemaVersion) {
      return failed_precondition_error("store '" + options.path + "' has schema version " + std::to_string(version) +
                                       ", but this build of selffeed understands versions up to " +
                                       std::to_string(kSchemaVersion) + "; upgrade selffeed");
    }
    return ok_status();
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::path() const { return impl_->options.path; }

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
  if (options.path.empty()) return invalid_argument_error("store path is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->write_options.sync = options.sync_writes;

  std::error_code ec;
  bool exists = std::filesystem::exists(std::filesystem::path(options.path) / "CURRENT", ec);
  if (!exists) {
    if (options.mode == OpenMode::kReadOnly || !options.create_if_missing) {
      return failed_precondition_error("store '" + options.path + "' does not exist");
    }
    std::filesystem::create_directories(options.path, ec);
    if (ec) return internal_error("cannot create store directory '" + options.path + "': " + ec.message());
  }

  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.compression = rocksdb::kLZ4Compression;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;

  // Open every family the directory has, so a newer build's extra families do not stop us
  // from reading the schema version and explaining the problem.
  std::vector<std::string> names(std::begin(kFamilyNames), std::end(kFamilyNames));
  if (exists) {
    std::vector<std::string> on_disk;
    rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db_options, options.path, &on_disk);
    SELFFEED_RETURN_IF_ERROR(from_rocksdb(listed, options.path, "open"));
    for (const std::string& name : on_disk) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions(db_options));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (options.mode == OpenMode::kReadOnly) {
    // Families this build knows but an older store lacks cannot be created read-only.
    if (exists) {
      std::vector<std::string> on_disk;
      rocksdb::DB::ListColumnFamilies(db_options, options.path, &on_disk).PermitUncheckedError();
      for (const std::string& name : names) {
        if (std::find(on_disk.begin(), on_disk.end(), name) == on_disk.end()) {
          return failed_precondition_error("store '" + options.path + "' lacks column family '" + name +
                                           "'; open it read-write once to upgrade it");
        }
      }
    }
    s = rocksdb::DB::OpenForReadOnly(db_options, options.path, descriptors, &impl->families, &raw);
  } else {
    s = rocksdb::DB::Open(db_options, options.path, descriptors, &impl->families, &raw);
  }
  SELFFEED_RETURN_IF_ERROR(from_rocksdb(s, options.path, "open"));
  impl->db.reset(raw);

  SELFFEED_RETURN_IF_ERROR(impl->check_schema());
  SELFFEED_RETURN_IF_ERROR(impl->load_counters());
  SELFFEED_RETURN_IF_ERROR(impl->load_conversation_index_from());
  SELFFEED_LOGGER("store")->info("opened store '{}' ({}), next seq {}", options.path,
                                 options.mode == OpenMode::kReadOnly ? "read-only" : "read-write", impl->next_seq);
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::vector<std::uint64_t>> Store::commit(const WriteSet& writes) {
  SELFFEED_RETURN_IF_ERROR(validate(writes));
  std::vector<std::uint64_t> seqs;
  Impl& impl = *impl_;
  Impl::Builder build = [&](rocksdb::WriteBatch& batch, std::uint64_t& next_seq) -> Status {
    seqs.clear();
    for (const Conversation& c : writes.conversations) {
      batch.Put(impl.cf(kConversations), c.id, codec::encode_conversation(c)).PermitUncheckedError();
      if (!c.user_id.empty()) {
        batch.Put(impl.cf(kByUser), keys::user_entry(c.user_id, keys::kUserConversationTag, c.id), "")
            .PermitUncheckedError();
      }
    }
    for (const Turn& t : writes.turns) {
      batch.Put(impl.cf(kTurns), keys::turn(t.conversation_id, t.index), codec::encode_turn(t)).PermitUncheckedError();
    }
    for (const Example& e : writes.examples) {
      std::uint64_t seq = next_seq++;
      std::string key = keys::example(e.kind, seq);
      batch.Put(impl.cf(kExamples), key, codec::encode_example(e)).PermitUncheckedError();
      if (!e.user_id.empty()) {
        batch.Put(impl.cf(kByUser), keys::user_entry(e.user_id, keys::kUserExampleTag, key), "").PermitUncheckedError();
      }
      if (!e.conversation_id.empty()) {
        batch.Put(impl.cf(kByUser), keys::conversation_example_entry(e.conversation_id, key), "").PermitUncheckedError();
      }
      seqs.push_back(seq);
    }
    return ok_status();
  };
  SELFFEED_RETURN_IF_ERROR(impl.run_write(build));
  return seqs;
}

Status Store::put_conversation(const Conversation& conversation) {
  WriteSet w;
  w.conversations.push_back(conversation);
  return commit(w).status();
}

Result<std::uint64_t> Store::add_example(const Example& example) {
  WriteSet w;
  w.examples.push_back(example);
  SELFFEED_ASSIGN_OR_RETURN(std::vector<std::uint64_t> seqs, commit(w));
  return seqs.front();
}

Result<Conversation> Store::get_conversation(const std::string& id) const {
  SELFFEED_RETURN_IF_ERROR(check_id("conversation id", id, false));
  Result<std::string> value = impl_->get(kConversations, id);
  if (!value.ok()) {
    if (value.status().code() == StatusCode::kNotFound) return not_found_error("no conversation '" + id + "'");
    return value.status();
  }
  return codec::decode_conversation(id, *value);
}

Result<std::vector<Turn>> Store::get_turns(const std::string& conversation_id, std::uint32_t from_index) const {
  SELFFEED_RETURN_IF_ERROR(check_id("conversation id", conversation_id, false));
  std::vector<Turn> turns;
  std::string prefix = keys::turn_prefix(conversation_id);
  Status s = impl_->scan_prefix(kTurns, prefix, keys::turn(conversation_id, from_index),
                                [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Result<bool> {
                                  std::string_view k(key.data(), key.size());
                                  SELFFEED_ASSIGN_OR_RETURN(
                                      Turn t, codec::decode_turn(conversation_id, keys::turn_index(k),
                                                                 std::string_view(value.data(), value.size())));
                                  turns.push_back(std::move(t));
                                  return true;
                                });
  SELFFEED_RETURN_IF_ERROR(s);
  return turns;
}

Status Store::scan_examples(ExampleKind kind, std::uint64_t after_seq, const ExampleVisitor& visit) const {
  if (after_seq == ~std::uint64_t{0}) return ok_status();
  return impl_->scan_prefix(kExamples, keys::example_kind_prefix(kind), keys::example(kind, after_seq + 1),
                            [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Result<bool> {
                              std::uint64_t seq = keys::example_seq(std::string_view(key.data(), key.size()));
                              SELFFEED_ASSIGN_OR_RETURN(
                                  Example e,
                                  codec::decode_example(kind, seq, std::string_view(value.data(), value.size())));
                              return visit(e);
                            });
}

Status Store::scan_all_examples(std::uint64_t after_seq, const ExampleVisitor& visit) const {
  if (after_seq == ~std::uint64_t{0}) return ok_status();
  // Examples are keyed by kind first: merge one iterator per kind by seq, so memory stays
  // constant however large the store is. One snapshot keeps the four views consistent.
  const rocksdb::Snapshot* snapshot = impl_->db->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* snapshot;
    ~Release() { db->ReleaseSnapshot(snapshot); }
  } release{impl_->db.get(), snapshot};
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  struct Stream {
    ExampleKind kind;
    std::string prefix;
    std::unique_ptr<rocksdb::Iterator> it;
    bool valid() const { return it->Valid() && has_prefix(it->key(), prefix); }
    std::uint64_t seq() const { return keys::example_seq(std::string_view(it->key().data(), it->key().size())); }
  };
  std::vector<Stream> streams;
  for (ExampleKind kind : kAllExampleKinds) {
    Stream s{kind, keys::example_kind_prefix(kind),
             std::unique_ptr<rocksdb::Iterator>(impl_->db->NewIterator(read, impl_->cf(kExamples)))};
    s.it->Seek(keys::example(kind, after_seq + 1));
    streams.push_back(std::move(s));
  }
  while (true) {
    Stream* next = nullptr;
    for (Stream& s : streams) {
      if (s.valid() && (next == nullptr || s.seq() < next->seq())) next = &s;
    }
    if (next == nullptr) break;
    rocksdb::Slice value = next->it->value();
    SELFFEED_ASSIGN_OR_RETURN(Example e, codec::decode_example(next->kind, next->seq(),
                                                               std::string_view(value.data(), value.size())));
    if (!visit(e)) break;
    next->it->Next();
  }
  for (const Stream& s : streams) SELFFEED_RETURN_IF_ERROR(from_rocksdb(s.it->status(), impl_->options.path, "scan"));
  return ok_status();
}

Result<Example> Store::get_example(ExampleKind kind, std::uint64_t seq) const {
  Result<std::string> value = impl_->get(kExamples, keys::example(kind, seq));
  if (!value.ok()) {
    if (value.status().code() == StatusCode::kNotFound) {
      return not_found_error("no " + std::string(example_kind_name(kind)) + " example with seq " + std::to_string(seq));
    }
    return value.status();
  }
  return codec::decode_example(kind, seq, *value);
}

Status Store::put_model(const ModelRecord& record) {
  SELFFEED_RETURN_IF_ERROR(check_id("model version", record.version, false));
  Impl& impl = *impl_;
  Impl::Builder build = [&](rocksdb::WriteBatch& batch, std::uint64_t&) -> Status {
    return from_rocksdb(batch.Put(impl.cf(kModels), record.version, codec::encode_model(record)), impl.options.path,
                        "write to");
  };
  return impl.run_write(build);
}

Result<ModelRecord> Store::get_model(const std::string& version) const {
  SELFFEED_RETURN_IF_ERROR(check_id("model version", version, false));
  Result<std::string> value = impl_->get(kModels, version);
  if (!value.ok()) {
    if (value.status().code() == StatusCode::kNotFound) return not_found_error("no model version '" + version + "'");
    return value.status();
  }
  return codec::decode_model(version, *value);
}

Result<std::vector<ModelRecord>> Store::list_models() const {
  std::vector<ModelRecord> models;
  Status s = impl_->scan_prefix(kModels, "", "", [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Result<bool> {
    SELFFEED_ASSIGN_OR_RETURN(ModelRecord m, codec::decode_model(std::string_view(key.data(), key.size()),
                                                                 std::string_view(value.data(), value.size())));
    models.push_back(std::move(m));
    return true;
  });
  SELFFEED_RETURN_IF_ERROR(s);
  std::stable_sort(models.begin(), models.end(),
                   [](const ModelRecord& a, const ModelRecord& b) { return a.created_ms < b.created_ms; });
  return models;
}

Status Store::set_watermark(const std::string& name, std::uint64_t seq) {
  SELFFEED_RETURN_IF_ERROR(check_id("watermark name", name, false));
  Impl& impl = *impl_;
  Impl::Builder build = [&](rocksdb::WriteBatch& batch, std::uint64_t&) -> Status {
    return from_rocksdb(batch.Put(impl.cf(kMeta), keys::watermark(name), codec::encode_u64(seq)), impl.options.path,
                        "write to");
  };
  return impl.run_write(build);
}

Result<std::uint64_t> Store::get_watermark(const std::string& name) const {
  SELFFEED_RETURN_IF_ERROR(check_id("watermark name", name, false));
  Result<std::string> value = impl_->get(kMeta, keys::watermark(name));
  if (!value.ok()) {
    if (value.status().code() == StatusCode::kNotFound) return std::uint64_t{0};
    return value.status();
  }
  return codec::decode_u64(*value);
}

Status Store::set_setting(const std::string& name, const std::string& value) {
  SELFFEED_RETURN_IF_ERROR(check_id("setting name", name, false));
  Impl& impl = *impl_;
  Impl::Builder build = [&](rocksdb::WriteBatch& batch, std::uint64_t&) -> Status {
    return from_rocksdb(batch.Put(impl.cf(kMeta), keys::setting(name), value), impl.options.path, "write to");
  };
  return impl.run_write(build);
}

Result<std::string> Store::get_setting(const std::string& name) const {
  SELFFEED_RETURN_IF_ERROR(check_id("setting name", name, false));
  Result<std::string> value = impl_->get(kMeta, keys::setting(name));
  if (!value.ok() && value.status().code() == StatusCode::kNotFound) return std::string();
  return value;
}

namespace {

// What one deletion takes out of the store, built into its batch: the examples' seqs and the
// digests of their HB and FB replies (the replies a candidate pool takes in), then the
// tombstone that keeps both under `tombstone_key`, merged with one written there before.
// (A template only because Store::Impl is private.)
template <class StoreImpl>
class Erasure {
 public:
  Erasure(StoreImpl& impl, rocksdb::WriteBatch& batch, DeleteUserReport& report)
      : impl_(impl), batch_(batch), report_(report) {}

  void conversation(std::string_view id) {
    batch_.Delete(impl_.cf(kConversations), rocksdb::Slice(id.data(), id.size())).PermitUncheckedError();
    ++report_.conversations;
  }

  Status turns_of(std::string_view conversation_id) {
    return impl_.scan_prefix(kTurns, keys::turn_prefix(conversation_id), "",
                             [&](const rocksdb::Slice& key, const rocksdb::Slice&) -> Result<bool> {
                               batch_.Delete(impl_.cf(kTurns), key).PermitUncheckedError();
                               ++report_.turns;
                               return true;
                             });
  }

  // The example and its index entries.
  void example(std::string_view key, const Example& decoded) {
    if (decoded.kind == ExampleKind::kHB || decoded.kind == ExampleKind::kFB) {
      reply_sha256_.push_back(sha256_hex(decoded.target));
    }
    batch_.Delete(impl_.cf(kExamples), rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
    if (!decoded.user_id.empty()) {
      batch_.Delete(impl_.cf(kByUser), keys::user_entry(decoded.user_id, keys::kUserExampleTag, key))
          .PermitUncheckedError();
    }
    if (!decoded.conversation_id.empty()) {
      batch_.Delete(impl_.cf(kByUser), keys::conversation_example_entry(decoded.conversation_id, key))
          .PermitUncheckedError();
    }
    ++report_.examples;
    ++report_.examples_by_kind[decoded.kind];
    report_.example_seqs.push_back(decoded.seq);
  }

  Status tombstone(const std::string& tombstone_key) {
    std::sort(report_.example_seqs.begin(), report_.example_seqs.end());  // indexes list them by kind first
    codec::Tombstone tombstone;
    Result<std::string> earlier = impl_.get(kMeta, tombstone_key);
    if (earlier.ok()) {
      SELFFEED_ASSIGN_OR_RETURN(tombstone, codec::decode_tombstone(*earlier));
    } else if (earlier.status().code() != StatusCode::kNotFound) {
      return earlier.status();
    }
    tombstone.deleted_ms = unix_millis();
    tombstone.example_seqs.insert(tombstone.example_seqs.end(), report_.example_seqs.begin(),
                                  report_.example_seqs.end());
    std::sort(tombstone.example_seqs.begin(), tombstone.example_seqs.end());
    tombstone.reply_sha256.insert(tombstone.reply_sha256.end(), reply_sha256_.begin(), reply_sha256_.end());
    std::sort(tombstone.reply_sha256.begin(), tombstone.reply_sha256.end());
    tombstone.reply_sha256.erase(std::unique(tombstone.reply_sha256.begin(), tombstone.reply_sha256.end()),
                                 tombstone.reply_sha256.end());
    return from_rocksdb(batch_.Put(impl_.cf(kMeta), tombstone_key, codec::encode_tombstone(tombstone)),
                        impl_.options.path, "write to");
  }

 private:
  StoreImpl& impl_;
  rocksdb::WriteBatch& batch_;
  DeleteUserReport& report_;
  std::vector<std::string> reply_sha256_;
};

// Visits the HB, FB and ST examples with seqs below `below` (a store's examples from
// before its index by conversation): visit(kind, key, value) -> Status.
template <class StoreImpl, class Visit>
Status scan_examples_below(const StoreImpl& impl, std::uint64_t below, Visit&& visit) {
  for (ExampleKind kind : {ExampleKind::kHB, ExampleKind::kFB, ExampleKind::kST}) {
    SELFFEED_RETURN_IF_ERROR(impl.scan_prefix(
        kExamples, keys::example_kind_prefix(kind), "",
        [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Result<bool> {
          const std::string_view k(key.data(), key.size());
          if (keys::example_seq(k) >= below) return false;  // seqs ascend within a kind
          SELFFEED_RETURN_IF_ERROR(visit(kind, k, std::string_view(value.data(), value.size())));
          return true;
        }));
  }
  return ok_status();
}

template <class StoreImpl>
Result<Example> decode_example_at(const StoreImpl& impl, std::string_view key) {
  SELFFEED_ASSIGN_OR_RETURN(const std::string value, impl.get(kExamples, key));
  return codec::decode_example(keys::example_kind(key), keys::example_seq(key), value);
}

}  // namespace

Result<DeleteUserReport> Store::delete_user(const std::string& user_id) {
  SELFFEED_RETURN_IF_ERROR(check_id("user id", user_id, false));
  DeleteUserReport report;
  Impl& impl = *impl_;
  // Runs as the leader, so no commit for this user can interleave with the scan.
  Impl::Builder build = [&](rocksdb::WriteBatch& batch, std::uint64_t&) -> Status {
    report = {};
    Erasure<Impl> erasure(impl, batch, report);
    const std::string prefix = keys::user_prefix(user_id);
    auto delete_indexed = [&](const rocksdb::Slice& key, const rocksdb::Slice&) -> Result<bool> {
      std::string_view k(key.data(), key.size());
      const char tag = k[prefix.size()];
      const std::string_view primary = k.substr(prefix.size() + 1);
      if (tag == keys::kUserConversationTag) {
        erasure.conversation(primary);
        SELFFEED_RETURN_IF_ERROR(erasure.turns_of(primary));
      } else if (tag == keys::kUserExampleTag) {
        SELFFEED_ASSIGN_OR_RETURN(const Example example, decode_example_at(impl, primary));
        erasure.example(primary, example);
      }
      batch.Delete(impl.cf(kByUser), key).PermitUncheckedError();
      return true;
    };
    SELFFEED_RETURN_IF_ERROR(impl.scan_prefix(kByUser, prefix, "", delete_indexed));
    // A user deleted again (who came back meanwhile) keeps the seqs of the first time too.
    return erasure.tombstone(keys::deleted_user(user_id));
  };
  SELFFEED_RETURN_IF_ERROR(impl.run_write(build));
  SELFFEED_LOGGER("store")->info("deleted user: {} conversations, {} turns, {} examples", report.conversations,
                                 report.turns, report.examples);
  return report;
}

Result<DeleteConversationReport> Store::delete_conversation(const std::string& conversation_id) {
  SELFFEED_RETURN_IF_ERROR(check_id("conversation id", conversation_id, false));
  DeleteConversationReport report;
  Impl& impl = *impl_;
  Impl::Builder build = [&](rocksdb::WriteBatch& batch, std::uint64_t&) -> Status {
    report = {};
    SELFFEED_ASSIGN_OR_RETURN(const std::string value, impl.get(kConversations, conversation_id));
    SELFFEED_ASSIGN_OR_RETURN(const Conversation conversation, codec::decode_conversation(conversation_id, value));
    Erasure<Impl> erasure(impl, batch, report);
    erasure.conversation(conversation_id);
    SELFFEED_RETURN_IF_ERROR(erasure.turns_of(conversation_id));
    if (!conversation.user_id.empty()) {
      batch.Delete(impl.cf(kByUser), keys::user_entry(conversation.user_id, keys::kUserConversationTag, conversation_id))
          .PermitUncheckedError();
    }
    const std::uint64_t indexed_from = impl.conversation_index_from;
    // Examples from indexed_from on: the conversation's index.
    const std::string prefix = keys::conversation_examples_prefix(conversation_id);
    SELFFEED_RETURN_IF_ERROR(impl.scan_prefix(
        kByUser, prefix, "", [&](const rocksdb::Slice& key, const rocksdb::Slice&) -> Result<bool> {
          const std::string_view primary = std::string_view(key.data(), key.size()).substr(prefix.size());
          if (keys::example_kind(primary) == ExampleKind::kHH) return true;  // training files, not the user's
          if (keys::example_seq(primary) < indexed_from) return true;  // found below, with the older ones
          SELFFEED_ASSIGN_OR_RETURN(const Example example, decode_example_at(impl, primary));
          erasure.example(primary, example);
          return true;
        }));
    if (indexed_from <= 1) return erasure.tombstone(keys::deleted_conversation(conversation_id));
    // Older examples, of a store from before the index: through the user's index, or for an
    // anonymous conversation by reading them, decoding only those that hold the id at all.
    auto take_if_ours = [&](std::string_view key, const Example& example) {
      if (example.kind != ExampleKind::kHH && example.conversation_id == conversation_id) erasure.example(key, example);
    };
    if (!conversation.user_id.empty()) {
      const std::string user_examples = keys::user_entry(conversation.user_id, keys::kUserExampleTag, "");
      SELFFEED_RETURN_IF_ERROR(impl.scan_prefix(
          kByUser, user_examples, "", [&](const rocksdb::Slice& key, const rocksdb::Slice&) -> Result<bool> {
            const std::string_view primary = std::string_view(key.data(), key.size()).substr(user_examples.size());
            if (keys::example_seq(primary) >= indexed_from) return true;
            SELFFEED_ASSIGN_OR_RETURN(const Example example, decode_example_at(impl, primary));
            take_if_ours(primary, example);
            return true;
          }));
    } else {
      SELFFEED_RETURN_IF_ERROR(scan_examples_below(
          impl, indexed_from, [&](ExampleKind kind, std::string_view key, std::string_view value) -> Status {
            if (value.find(conversation_id) == std::string_view::npos) return ok_status();
            SELFFEED_ASSIGN_OR_RETURN(const Example example, codec::decode_example(kind, keys::example_seq(key), value));
            take_if_ours(key, example);
            return ok_status();
          }));
    }
    return erasure.tombstone(keys::deleted_conversation(conversation_id));
  };
  SELFFEED_RETURN_IF_ERROR(impl.run_write(build));
  SELFFEED_LOGGER("store")->info("deleted conversation: {} turns, {} examples", report.turns, report.examples);
  return report;
}

Result<std::uint64_t> Store::index_conversations() {
  Impl& impl = *impl_;
  const std::uint64_t from = impl.conversation_index_from;
  if (from <= 1) return std::uint64_t{0};
  std::vector<std::string> entries;
  SELFFEED_RETURN_IF_ERROR(
      scan_examples_below(impl, from, [&](ExampleKind kind, std::string_view key, std::string_view value) -> Status {
        SELFFEED_ASSIGN_OR_RETURN(const Example example, codec::decode_example(kind, keys::example_seq(key), value));
        if (!example.conversation_id.empty()) {
          entries.push_back(keys::conversation_example_entry(example.conversation_id, key));
        }
        return ok_status();
      }));
  // In batches of bounded size; the last one also says that every example is indexed.
  constexpr std::size_t kEntriesPerBatch = 10000;
  for (std::size_t begin = 0;; begin += kEntriesPerBatch) {
    const std::size_t end = std::min(entries.size(), begin + kEntriesPerBatch);
    const bool last = end == entries.size();
    Impl::Builder build = [&](rocksdb::WriteBatch& batch, std::uint64_t&) -> Status {
      for (std::size_t i = begin; i < end; ++i) batch.Put(impl.cf(kByUser), entries[i], "").PermitUncheckedError();
      if (!last) return ok_status();
      return from_rocksdb(batch.Put(impl.cf(kMeta), keys::kConversationIndexFrom, codec::encode_u64(1)),
                          impl.options.path, "write to");
    };
    SELFFEED_RETURN_IF_ERROR(impl.run_write(build));
    if (last) break;
  }
  impl.conversation_index_from = 1;
  SELFFEED_LOGGER("store")->info("indexed {} examples by conversation", entries.size());
  return std::uint64_t{entries.size()};
}

Result<bool> Store::is_user_deleted(const std::string& user_id) const {
  SELFFEED_RETURN_IF_ERROR(check_id("user id", user_id, false));
  Result<std::string> value = impl_->get(kMeta, keys::deleted_user(user_id));
  if (value.ok()) return true;
  if (value.status().code() == StatusCode::kNotFound) return false;
  return value.status();
}

Result<DeletedExamples> Store::deleted_examples() const {
  DeletedExamples deleted;
  for (std::string_view prefix : {keys::kDeletedUserPrefix, keys::kDeletedConversationPrefix}) {
    SELFFEED_RETURN_IF_ERROR(impl_->scan_prefix(
        kMeta, prefix, "", [&](const rocksdb::Slice&, const rocksdb::Slice& value) -> Result<bool> {
          SELFFEED_ASSIGN_OR_RETURN(codec::Tombstone tombstone,
                                    codec::decode_tombstone(std::string_view(value.data(), value.size())));
          deleted.seqs.insert(deleted.seqs.end(), tombstone.example_seqs.begin(), tombstone.example_seqs.end());
          deleted.reply_sha256.insert(tombstone.reply_sha256.begin(), tombstone.reply_sha256.end());
          return true;
        }));
  }
  std::sort(deleted.seqs.begin(), deleted.seqs.end());
  return deleted;
}

Result<StoreStats> Store::stats() const {
  StoreStats stats;
  auto count = [&](Family f, std::string_view prefix, std::uint64_t& n) {
    return impl_->scan_prefix(f, prefix, "", [&](const rocksdb::Slice&, const rocksdb::Slice&) -> Result<bool> {
      ++n;
      return true;
    });
  };
  SELFFEED_RETURN_IF_ERROR(count(kConversations, "", stats.conversations));
  SELFFEED_RETURN_IF_ERROR(count(kTurns, "", stats.turns));
  SELFFEED_RETURN_IF_ERROR(count(kModels, "", stats.models));
  SELFFEED_RETURN_IF_ERROR(count(kMeta, keys::kDeletedUserPrefix, stats.deleted_users));
  for (ExampleKind kind : kAllExampleKinds) {
    SELFFEED_RETURN_IF_ERROR(count(kExamples, keys::example_kind_prefix(kind), stats.examples[kind]));
  }
  std::lock_guard lock(impl_->commit_mutex);
  stats.last_seq = impl_->next_seq - 1;
  return stats;
}

namespace {

void rewrite_in_place(const std::function<std::string(std::string_view)>& rewrite, std::string& value) {
  if (rewrite && !value.empty()) value = rewrite(value);
}

Example rewritten(Example e, const ExportRewrite& rewrite) {
  rewrite_in_place(rewrite.text, e.context);
  rewrite_in_place(rewrite.text, e.target);
  rewrite_in_place(rewrite.id, e.conversation_id);
  rewrite_in_place(rewrite.id, e.user_id);
  return e;
}

}  // namespace

Result<std::uint64_t> Store::export_examples(std::ostream& out, const ExportFilter& filter,
                                             const ExportRewrite& rewrite) const {
  std::uint64_t lines = 0;
  if (filter.seqs && filter.seqs->empty()) return lines;
  const bool rewrites = rewrite.text || rewrite.id;
  auto write = [&](const Example& e) {
    if (filter.seqs) {
      if (e.seq > *filter.seqs->rbegin()) return false;  // past the last one asked for
      if (!filter.seqs->contains(e.seq)) return true;
    }
    out << (rewrites ? codec::example_to_jsonl(rewritten(e, rewrite)) : codec::example_to_jsonl(e)) << '\n';
    ++lines;
    return static_cast<bool>(out);
  };
  std::uint64_t after_seq = filter.after_seq;
  if (filter.seqs && *filter.seqs->begin() > 0) after_seq = std::max(after_seq, *filter.seqs->begin() - 1);
  if (filter.kind) {
    SELFFEED_RETURN_IF_ERROR(scan_examples(*filter.kind, after_seq, write));
  } else {
    SELFFEED_RETURN_IF_ERROR(scan_all_examples(after_seq, write));
  }
  out.flush();
  if (!out) return internal_error("writing the export failed after " + std::to_string(lines) + " lines");
  return lines;
}

Status Store::scan_transcripts(const TranscriptFilter& filter, const TranscriptVisitor& visit) const {
  std::vector<Conversation> conversations;
  auto keep = [&](Conversation c) {
    if ((!filter.user_id || c.user_id == *filter.user_id) && c.updated_ms > filter.updated_after_ms) {
      conversations.push_back(std::move(c));
    }
  };
  if (filter.user_id && !filter.user_id->empty()) {
    // One user's conversations through the by_user index, not a scan of everyone's.
    const std::string prefix = keys::user_prefix(*filter.user_id) + keys::kUserConversationTag;
    SELFFEED_RETURN_IF_ERROR(
        impl_->scan_prefix(kByUser, prefix, "", [&](const rocksdb::Slice& key, const rocksdb::Slice&) -> Result<bool> {
          SELFFEED_ASSIGN_OR_RETURN(Conversation c, get_conversation(key.ToString().substr(prefix.size())));
          keep(std::move(c));
          return true;
        }));
  } else {
    SELFFEED_RETURN_IF_ERROR(impl_->scan_prefix(
        kConversations, "", "", [&](const rocksdb::Slice& key, const rocksdb::Slice& value) -> Result<bool> {
          SELFFEED_ASSIGN_OR_RETURN(Conversation c,
                                    codec::decode_conversation(std::string_view(key.data(), key.size()),
                                                               std::string_view(value.data(), value.size())));
          keep(std::move(c));
          return true;
        }));
  }
  // Keys are random ids; readers want the order the conversations happened in.
  std::stable_sort(conversations.begin(), conversations.end(),
                   [](const Conversation& a, const Conversation& b) { return a.created_ms < b.created_ms; });
  for (const Conversation& c : conversations) {
    SELFFEED_ASSIGN_OR_RETURN(std::vector<Turn> turns, get_turns(c.id));
    if (!visit(c, turns)) break;
  }
  return ok_status();
}

Result<std::uint64_t> Store::export_transcripts(std::ostream& out, const TranscriptFilter& filter,
                                                const ExportRewrite& rewrite) const {
  std::uint64_t lines = 0;
  SELFFEED_RETURN_IF_ERROR(scan_transcripts(filter, [&](Conversation c, std::vector<Turn> turns) {
    rewrite_in_place(rewrite.id, c.id);
    rewrite_in_place(rewrite.id, c.user_id);
    for (Turn& t : turns) {
      rewrite_in_place(rewrite.id, t.conversation_id);
      rewrite_in_place(rewrite.text, t.text);
      if (t.shadow) rewrite_in_place(rewrite.text, t.shadow->text);
      if (t.suggestion) rewrite_in_place(rewrite.text, *t.suggestion);  // the user's words
    }
    out << codec::transcript_to_jsonl(c, turns) << '\n';
    if (!out) return false;
    ++lines;
    return true;
  }));
  out.flush();
  if (!out) return internal_error("writing the transcripts failed after " + std::to_string(lines) + " conversations");
  return lines;
}

Result<std::uint64_t> Store::import_examples(std::istream& in, const ImportOptions& options) {
  std::vector<Example> examples;
  std::string line;
  std::uint64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Result<Example> e = codec::example_from_jsonl(line, options.default_kind, options.source);
    if (!e.ok()) return e.status().with_context("line " + std::to_string(line_number));
    examples.push_back(std::move(e).value());
  }
  if (in.bad()) return internal_error("reading the import failed at line " + std::to_string(line_number));
  WriteSet batch;
  for (std::size_t i = 0; i < examples.size(); i += kImportBatchSize) {
    std::size_t end = std::min(examples.size(), i + kImportBatchSize);
    batch.examples.assign(examples.begin() + static_cast<std::ptrdiff_t>(i),
                          examples.begin() + static_cast<std::ptrdiff_t>(end));
    Result<std::vector<std::uint64_t>> committed = commit(batch);
    if (!committed.ok()) {
      return committed.status().with_context("import stopped after " + std::to_string(i) + " examples");
    }
  }
  return static_cast<std::uint64_t>(examples.size());
}

}  // namespace selffeed::store
