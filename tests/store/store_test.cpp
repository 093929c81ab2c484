// Store tests on a real RocksDB directory in a temporary folder.
#include "selffeed/store/store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <rocksdb/db.h>

#include "selffeed/common/digest.h"
#include "testing.h"

namespace selffeed::store {
namespace {

using selffeed::testing::TempDir;
using json = nlohmann::json;

std::unique_ptr<Store> open_or_die(const std::string& path, OpenMode mode = OpenMode::kReadWrite) {
  auto store = Store::open({.path = path, .mode = mode});
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  return store.ok() ? std::move(store).value() : nullptr;
}

Example make_example(ExampleKind kind, const std::string& user, int i) {
  return Example{.kind = kind,
                 .context = "__p2__ bot said " + std::to_string(i) + " __p1__ user said " + std::to_string(i),
                 .target = "reply " + std::to_string(i),
                 .conversation_id = "conv-" + user,
                 .turn_index = i,
                 .user_id = user,
                 .satisfaction = 0.25 + 0.01 * i,
                 .model_version = "v1",
                 .created_ms = 1700000000000 + i,
                 .source = "server"};
}

std::vector<std::uint64_t> seqs_of(const Store& store, ExampleKind kind, std::uint64_t after) {
  std::vector<std::uint64_t> seqs;
  EXPECT_OK(store.scan_examples(kind, after, [&](const Example& e) {
    seqs.push_back(e.seq);
    return true;
  }));
  return seqs;
}

// Writes `key` = `value` into the store's meta column family with RocksDB itself, as an
// older or newer build would have; the store must be closed.
void put_meta_behind_the_store(const std::string& path, const std::string& key, const std::string& value) {
  rocksdb::DBOptions options;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, descriptors, &handles, &db).ok());
  const std::size_t meta = std::find(names.begin(), names.end(), "meta") - names.begin();
  ASSERT_LT(meta, names.size());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[meta], key, value).ok());
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  delete db;
}

TEST(StoreTest, EveryRecordKindRoundTripsThroughReopen) {
  TempDir dir;
  Conversation conversation{.id = "c1", .user_id = "alice", .created_ms = 10, .updated_ms = 20, .state = "{\"phase\":1}"};
  Turn user_turn{.conversation_id = "c1", .index = 0, .speaker = Speaker::kUser, .text = "héllo \"there\"",
                 .time_ms = 11, .satisfaction = 0.125, .phase = Phase::kNormal, .model_version = "v1"};
  Turn bot_turn{.conversation_id = "c1", .index = 1, .speaker = Speaker::kBot, .text = "hi!", .time_ms = 12,
                .phase = Phase::kFeedbackRequested, .model_version = "v1", .candidate_id = 4242,
                .shadow = ShadowReply{"v2", "hello!"}, .rating_request = 0, .thumbs_up = false,
                .dislike_reason = DislikeReason::kRepetitive, .suggestion = "hello there!", .ends_topic = true};
  std::vector<Example> examples;
  for (ExampleKind kind : kAllExampleKinds) examples.push_back(make_example(kind, "alice", static_cast<int>(kind)));
  examples[3].target = "0";
  examples[2].satisfaction.reset();
  ModelRecord model{.version = "v1", .path = "/models/v1", .status = ModelStatus::kLive,
                    .metrics_json = "{\"hits@1\":0.41}", .lineage_json = "{\"HH\":7316}", .created_ms = 5, .updated_ms = 6};
  std::vector<std::uint64_t> seqs;
  {
    auto store = open_or_die(dir.str("db"));
    WriteSet w{.conversations = {conversation}, .turns = {user_turn, bot_turn}, .examples = examples};
    auto committed = store->commit(w);
    ASSERT_OK(committed);
    seqs = *committed;
    ASSERT_OK(store->put_model(model));
    ASSERT_OK(store->set_watermark("trainer", 3));
    ASSERT_OK(store->set_setting("shadow", "first"));
    ASSERT_OK(store->set_setting("shadow", "{\"share\": 0.5}"));
    ASSERT_OK(store->set_setting("cleared", "x"));
    ASSERT_OK(store->set_setting("cleared", ""));
  }
  auto store = open_or_die(dir.str("db"));
  auto c = store->get_conversation("c1");
  ASSERT_OK(c);
  EXPECT_EQ(*c, conversation);
  auto turns = store->get_turns("c1");
  ASSERT_OK(turns);
  ASSERT_EQ(turns->size(), 2u);
  EXPECT_EQ((*turns)[0], user_turn);
  EXPECT_EQ((*turns)[1], bot_turn);
  ASSERT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  for (std::size_t i = 0; i < examples.size(); ++i) {
    auto e = store->get_example(examples[i].kind, seqs[i]);
    ASSERT_OK(e);
    Example expected = examples[i];
    expected.seq = seqs[i];
    EXPECT_EQ(*e, expected);
  }
  auto m = store->get_model("v1");
  ASSERT_OK(m);
  EXPECT_EQ(*m, model);
  EXPECT_EQ(*store->get_watermark("trainer"), 3u);
  EXPECT_EQ(*store->get_watermark("never-set"), 0u);
  EXPECT_EQ(*store->get_setting("shadow"), "{\"share\": 0.5}") << "the last value set";
  EXPECT_EQ(*store->get_setting("cleared"), "");
  EXPECT_EQ(*store->get_setting("never-set"), "");
  EXPECT_EQ(store->get_conversation("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->get_model("v9").status().code(), StatusCode::kNotFound);
}

TEST(StoreTest, SequenceNumbersKeepGrowingAcrossReopen) {
  TempDir dir;
  {
    auto store = open_or_die(dir.str("db"));
    for (int i = 0; i < 3; ++i) ASSERT_OK(store->add_example(make_example(ExampleKind::kHB, "u", i)));
  }
  auto store = open_or_die(dir.str("db"));
  auto seq = store->add_example(make_example(ExampleKind::kFB, "u", 9));
  ASSERT_OK(seq);
  EXPECT_EQ(*seq, 4u);
}

TEST(StoreTest, WritesStopWithAClearErrorBelowTheFreeSpaceReserve) {
  TempDir dir;
  {
    auto store = open_or_die(dir.str("db"));
    ASSERT_OK(store->add_example(make_example(ExampleKind::kHB, "u", 1)));
  }
  // No disk has this much free: every write is refused, nothing half-written, reads work.
  auto full = store::Store::open({.path = dir.str("db"), .min_free_bytes = std::uint64_t{1} << 62});
  ASSERT_OK(full);
  auto refused = (*full)->add_example(make_example(ExampleKind::kHB, "u", 2));
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("disk full"), std::string::npos) << refused.status().to_string();
  EXPECT_OK((*full)->get_example(ExampleKind::kHB, 1).status());
  full->reset();
  // With room again the sequence goes on where it stopped.
  auto store = open_or_die(dir.str("db"));
  auto seq = store->add_example(make_example(ExampleKind::kHB, "u", 3));
  ASSERT_OK(seq);
  EXPECT_EQ(*seq, 2u);
}

TEST(StoreTest, ScanSinceWatermarkReturnsOnlyNewerExamplesInOrder) {
  TempDir dir;
  auto store = open_or_die(dir.str("db"));
  const ExampleKind pattern[] = {ExampleKind::kHB, ExampleKind::kFB, ExampleKind::kHB, ExampleKind::kST,
                                 ExampleKind::kHB, ExampleKind::kFB, ExampleKind::kHB, ExampleKind::kHH};
  for (int i = 0; i < 8; ++i) ASSERT_OK(store->add_example(make_example(pattern[i], "u", i)));
  // seqs: HB 1,3,5,7  FB 2,6  ST 4  HH 8
  EXPECT_EQ(seqs_of(*store, ExampleKind::kHB, 0), (std::vector<std::uint64_t>{1, 3, 5, 7}));
  EXPECT_EQ(seqs_of(*store, ExampleKind::kHB, 3), (std::vector<std::uint64_t>{5, 7}));
  EXPECT_EQ(seqs_of(*store, ExampleKind::kHB, 7), std::vector<std::uint64_t>{});
  EXPECT_EQ(seqs_of(*store, ExampleKind::kFB, 2), std::vector<std::uint64_t>{6});
  std::vector<std::uint64_t> all;
  ASSERT_OK(store->scan_all_examples(4, [&](const Example& e) {
    all.push_back(e.seq);
    return true;
  }));
  EXPECT_EQ(all, (std::vector<std::uint64_t>{5, 6, 7, 8}));
  // A visitor can stop early.
  int visited = 0;
  ASSERT_OK(store->scan_examples(ExampleKind::kHB, 0, [&](const Example&) { return ++visited < 2; }));
  EXPECT_EQ(visited, 2);
}

TEST(StoreTest, DeleteUserRemovesAllOfThatUserAndNothingElse) {
  TempDir dir;
  auto store = open_or_die(dir.str("db"));
  for (const std::string user : {"alice", "bob"}) {
    WriteSet w;
    w.conversations.push_back({.id = "conv-" + user, .user_id = user});
    for (std::uint32_t i = 0; i < 3; ++i) w.turns.push_back({.conversation_id = "conv-" + user, .index = i, .text = "t"});
    for (int i = 0; i < 4; ++i) w.examples.push_back(make_example(kAllExampleKinds[i], user, i));
    ASSERT_OK(store->commit(w));
  }
  auto report = store->delete_user("alice");
  ASSERT_OK(report);
  EXPECT_EQ(report->conversations, 1u);
  EXPECT_EQ(report->turns, 3u);
  EXPECT_EQ(report->examples, 4u);
  EXPECT_EQ(report->example_seqs, (std::vector<std::uint64_t>{1, 2, 3, 4})) << "alice committed first";
  // The tombstone keeps digests of the replies a candidate pool takes in: HB and FB.
  EXPECT_EQ(store->deleted_examples()->reply_sha256,
            (std::set<std::string>{sha256_hex("reply 1"), sha256_hex("reply 2")}));

  EXPECT_EQ(store->get_conversation("conv-alice").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->get_turns("conv-alice")->empty());
  EXPECT_TRUE(*store->is_user_deleted("alice"));
  EXPECT_FALSE(*store->is_user_deleted("bob"));
  std::set<std::string> users;
  ASSERT_OK(store->scan_all_examples(0, [&](const Example& e) {
    users.insert(e.user_id);
    return true;
  }));
  EXPECT_EQ(users, std::set<std::string>{"bob"});
  EXPECT_OK(store->get_conversation("conv-bob"));
  EXPECT_EQ(store->get_turns("conv-bob")->size(), 3u);

  auto stats = store->stats();
  ASSERT_OK(stats);
  EXPECT_EQ(stats->conversations, 1u);
  EXPECT_EQ(stats->turns, 3u);
  EXPECT_EQ(stats->examples.at(ExampleKind::kHB), 1u);
  EXPECT_EQ(stats->deleted_users, 1u);
  EXPECT_EQ(stats->last_seq, 8u);
  // A deleted example's seq is never handed out again.
  EXPECT_EQ(*store->add_example(make_example(ExampleKind::kHB, "carol", 0)), 9u);
}

TEST(StoreTest, DeletedUsersLeaveTheSeqsOfTheirExamplesBehind) {
  TempDir dir;
  {
    auto store = open_or_die(dir.str("db"));
    auto commit_examples_of = [&](const std::string& user, int n) {
      WriteSet w;
      for (int i = 0; i < n; ++i) w.examples.push_back(make_example(ExampleKind::kHB, user, i));
      ASSERT_OK(store->commit(w));
    };
    commit_examples_of("alice", 2);  // 1, 2
    commit_examples_of("bob", 2);    // 3, 4
    EXPECT_TRUE(store->deleted_examples()->seqs.empty());
    ASSERT_OK(store->delete_user("alice"));
    EXPECT_EQ(store->deleted_examples()->seqs, (std::vector<std::uint64_t>{1, 2}));
    // alice comes back and is deleted again: both times count.
    commit_examples_of("alice", 1);  // 5
    ASSERT_OK(store->delete_user("alice"));
    EXPECT_EQ(store->deleted_examples()->seqs, (std::vector<std::uint64_t>{1, 2, 5}));
    ASSERT_OK(store->delete_user("bob"));
    EXPECT_EQ(store->deleted_examples()->seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
    // Their replies by digest: "reply 0" and "reply 1" (said by both), not the text.
    EXPECT_EQ(store->deleted_examples()->reply_sha256,
              (std::set<std::string>{sha256_hex("reply 0"), sha256_hex("reply 1")}));
  }
  // A tombstone of the old form (the time alone) is a deleted user whose seqs are unknown.
  put_meta_behind_the_store(dir.str("db"), "deleted_user/dave", std::string("\0\0\x01\x8c\0\0\0\0", 8));
  auto store = open_or_die(dir.str("db"));
  EXPECT_TRUE(*store->is_user_deleted("dave"));
  EXPECT_EQ(store->stats()->deleted_users, 3u);
  EXPECT_EQ(store->deleted_examples()->seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
}

// A user deletes one conversation: it goes with its turns and examples, found through the
// user's index or, for an anonymous conversation, by reading the examples; the tombstone
// feeds deleted_examples() as a deleted user's does, and the user is not deleted.
// A user deletes one conversation: it goes with its turns and examples, found through the
// index by conversation or, in a store from before that index (examples 1-3 here), through
// the user's index or, for an anonymous conversation, by reading the examples; the tombstone
// feeds deleted_examples() as a deleted user's does, and the user is not deleted.
TEST(StoreTest, DeleteConversationRemovesItsTurnsAndExamplesAndLeavesATombstone) {
  for (const bool older_store : {false, true}) {
    SCOPED_TRACE(older_store ? "a store whose index by conversation starts at seq 4" : "a new store");
    TempDir dir;
    {
      auto store = open_or_die(dir.str("db"));
      auto commit = [&](const std::string& id, const std::string& user, std::vector<ExampleKind> kinds) {
        WriteSet w;
        w.conversations.push_back({.id = id, .user_id = user});
        for (std::uint32_t i = 0; i < 2; ++i) w.turns.push_back({.conversation_id = id, .index = i, .text = "t"});
        for (std::size_t i = 0; i < kinds.size(); ++i) {
          Example e = make_example(kinds[i], user, static_cast<int>(i));
          e.conversation_id = id;
          e.target = id + " reply " + std::to_string(i);
          w.examples.push_back(e);
        }
        ASSERT_OK(store->commit(w));
      };
      commit("a1", "alice", {ExampleKind::kHB, ExampleKind::kFB});  // 1, 2
      commit("anon", "", {ExampleKind::kHB});                        // 3
      commit("a1", "alice", {ExampleKind::kST});                     // 4
      commit("a2", "alice", {ExampleKind::kHB});                     // 5
      commit("anon", "", {ExampleKind::kST});                        // 6
      commit("b1", "bob", {ExampleKind::kHB});                       // 7
    }
    if (older_store) {
      put_meta_behind_the_store(dir.str("db"), "conversation_index_from_seq", std::string("\0\0\0\0\0\0\0\x04", 8));
    }
    auto store = open_or_die(dir.str("db"));

    auto report = store->delete_conversation("a1");
    ASSERT_OK(report);
    EXPECT_EQ(report->conversations, 1u);
    EXPECT_EQ(report->turns, 2u);
    EXPECT_EQ(report->example_seqs, (std::vector<std::uint64_t>{1, 2, 4}));
    EXPECT_EQ(store->get_conversation("a1").status().code(), StatusCode::kNotFound);
    EXPECT_TRUE(store->get_turns("a1")->empty());
    EXPECT_FALSE(*store->is_user_deleted("alice"));
    EXPECT_EQ(store->get_turns("a2")->size(), 2u);
    EXPECT_EQ(store->deleted_examples()->reply_sha256,
              (std::set<std::string>{sha256_hex("a1 reply 0"), sha256_hex("a1 reply 1")}));

    auto anonymous = store->delete_conversation("anon");
    ASSERT_OK(anonymous);
    EXPECT_EQ(anonymous->example_seqs, (std::vector<std::uint64_t>{3, 6}));
    EXPECT_EQ(store->deleted_examples()->seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 6}));
    EXPECT_EQ(store->delete_conversation("anon").status().code(), StatusCode::kNotFound);

    // alice's index no longer names what went: deleting her takes the rest.
    auto alice = store->delete_user("alice");
    ASSERT_OK(alice);
    EXPECT_EQ(alice->conversations, 1u);
    EXPECT_EQ(alice->example_seqs, (std::vector<std::uint64_t>{5}));
    std::vector<std::uint64_t> left;
    ASSERT_OK(store->scan_all_examples(0, [&](const Example& e) {
      left.push_back(e.seq);
      return true;
    }));
    EXPECT_EQ(left, std::vector<std::uint64_t>{7});
    EXPECT_EQ(store->stats()->deleted_users, 1u) << "a deleted conversation is no deleted user";
    EXPECT_EQ(store->stats()->conversations, 1u);
    // bob's conversation, through its index.
    EXPECT_EQ(store->delete_conversation("b1")->example_seqs, std::vector<std::uint64_t>{7});
  }
}

// `selffeed store index-conversations`: an older store's examples get their entries, once.
TEST(StoreTest, IndexConversationsIndexesTheExamplesOfAnOlderStoreOnce) {
  TempDir dir;
  {
    auto store = open_or_die(dir.str("db"));
    for (const std::string user : {"alice", ""}) {
      WriteSet w;
      w.conversations.push_back({.id = "conv-" + user, .user_id = user});
      for (int i = 0; i < 4; ++i) w.examples.push_back(make_example(kAllExampleKinds[i], user, i));
      ASSERT_OK(store->commit(w));
    }
    EXPECT_EQ(*store->index_conversations(), 0u) << "a new store indexes as it goes";
  }
  // As if a server from before the index had written examples 1-8.
  put_meta_behind_the_store(dir.str("db"), "conversation_index_from_seq", std::string("\0\0\0\0\0\0\0\x09", 8));
  {
    auto store = open_or_die(dir.str("db"));
    EXPECT_EQ(*store->index_conversations(), 6u) << "HB, FB and ST; the HH examples are training files";
    EXPECT_EQ(*store->index_conversations(), 0u);
  }
  auto store = open_or_die(dir.str("db"));
  EXPECT_EQ(*store->index_conversations(), 0u) << "the store remembers";
  EXPECT_EQ(store->delete_conversation("conv-")->example_seqs.size(), 3u);
  EXPECT_EQ(store->delete_conversation("conv-alice")->example_seqs.size(), 3u);
}

TEST(StoreTest, ExportThenImportRoundTripsExactly) {
  TempDir dir;
  std::string first;
  {
    auto source = open_or_die(dir.str("a"));
    for (int i = 0; i < 12; ++i) {
      Example e = make_example(kAllExampleKinds[i % 4], i % 2 ? "alice" : "", i);
      if (i % 3 == 0) e.satisfaction.reset();
      if (i == 5) e.context = "__null__";
      if (i == 7) e.target = "emoji \xF0\x9F\x99\x82 and \"quotes\"\ttab";
      if (i == 8) e.satisfaction = 1.0 / 3.0;
      ASSERT_OK(source->add_example(e));
    }
    std::ostringstream out;
    auto n = source->export_examples(out);
    ASSERT_OK(n);
    EXPECT_EQ(*n, 12u);
    first = out.str();
  }
  auto target = open_or_die(dir.str("b"));
  std::istringstream in(first);
  auto imported = target->import_examples(in);
  ASSERT_OK(imported);
  EXPECT_EQ(*imported, 12u);
  std::ostringstream again;
  ASSERT_OK(target->export_examples(again));
  EXPECT_EQ(again.str(), first);

  std::ostringstream only_fb;
  ASSERT_OK(target->export_examples(only_fb, {.kind = ExampleKind::kFB, .after_seq = 3}));
  const std::string fb_lines = only_fb.str();
  EXPECT_EQ(std::count(fb_lines.begin(), fb_lines.end(), '\n'), 2);  // FB seqs 6 and 10

  // A model's snapshot: exactly the listed examples, as the full export writes them.
  std::ostringstream snapshot;
  auto listed = target->export_examples(snapshot, {.seqs = std::set<std::uint64_t>{2, 7, 11, 40}});
  ASSERT_OK(listed);
  EXPECT_EQ(*listed, 3u) << "seq 40 does not exist";
  std::istringstream all_lines(first);
  std::string expected;
  std::uint64_t line_number = 0;
  for (std::string line; std::getline(all_lines, line);) {
    ++line_number;  // the store numbered the 12 imported examples 1 to 12
    if (line_number == 2 || line_number == 7 || line_number == 11) expected += line + "\n";
  }
  EXPECT_EQ(snapshot.str(), expected);
  std::ostringstream none;
  ASSERT_OK(target->export_examples(none, {.seqs = std::set<std::uint64_t>{}}));
  EXPECT_EQ(none.str(), "") << "an empty list is no example, not every example";
}

// Rewrites apply to what leaves the store, never to the store: every utterance and every id.
TEST(StoreTest, ExportsRewriteTextAndIdsButNotTheStore) {
  TempDir dir;
  auto store = open_or_die(dir.str("s"));
  WriteSet writes;
  writes.conversations = {{.id = "conv-1", .user_id = "alice", .created_ms = 100, .updated_ms = 130}};
  writes.turns = {{.conversation_id = "conv-1", .index = 0, .speaker = Speaker::kUser, .text = "hi", .time_ms = 110},
                  {.conversation_id = "conv-1", .index = 1, .speaker = Speaker::kBot, .text = "hello", .time_ms = 111,
                   .model_version = "v1", .shadow = ShadowReply{"v2", "hey"}, .suggestion = "hi there"}};
  writes.examples = {{.kind = ExampleKind::kHB, .context = "__p2__ hello __p1__ hi", .target = "fine",
                      .conversation_id = "conv-1", .turn_index = 2, .user_id = "alice", .model_version = "v1"},
                     {.kind = ExampleKind::kHH, .context = "__null__", .target = "imported"}};
  ASSERT_OK(store->commit(writes));
  const ExportRewrite upper{
      .text = [](std::string_view t) { std::string u(t); std::transform(u.begin(), u.end(), u.begin(), ::toupper); return u; },
      .id = [](std::string_view id) { return "anon(" + std::string(id) + ")"; }};

  std::ostringstream examples;
  ASSERT_OK(store->export_examples(examples, {}, upper));
  std::istringstream lines(examples.str());
  std::string hb, hh;
  std::getline(lines, hb);
  std::getline(lines, hh);
  const json e = json::parse(hb);
  EXPECT_EQ(e["context"], "__P2__ HELLO __P1__ HI");
  EXPECT_EQ(e["response"], "FINE");
  EXPECT_EQ(e["user_id"], "anon(alice)");
  EXPECT_EQ(e["conversation_id"], "anon(conv-1)");
  EXPECT_EQ(e["model_version"], "v1") << "not an utterance, not an id";
  EXPECT_FALSE(json::parse(hh).contains("user_id")) << "no id is made up for an example without one";

  std::ostringstream transcripts;
  ASSERT_OK(store->export_transcripts(transcripts, {}, upper));
  const json t = json::parse(transcripts.str());
  EXPECT_EQ(t["conversation_id"], "anon(conv-1)");
  EXPECT_EQ(t["user_id"], "anon(alice)");
  EXPECT_EQ(t["turns"][0]["text"], "HI");
  EXPECT_EQ(t["turns"][1]["text"], "HELLO");
  EXPECT_EQ(t["turns"][1]["shadow"]["text"], "HEY");
  EXPECT_EQ(t["turns"][1]["shadow"]["version"], "v2");
  EXPECT_EQ(t["turns"][1]["suggestion"], "HI THERE") << "the user's words";

  // The store still holds the words as they were said.
  EXPECT_EQ(store->get_turns("conv-1")->at(0).text, "hi");
  EXPECT_EQ(store->get_example(ExampleKind::kHB, 1)->user_id, "alice");
  std::ostringstream plain;
  ASSERT_OK(store->export_transcripts(plain, {.user_id = "alice"}));
  EXPECT_EQ(json::parse(plain.str())["user_id"], "alice");
}

// Transcripts: every turn of each conversation, conversations in the order they began
// (their ids say nothing about it), filtered by user and by the time of the last turn.
TEST(StoreTest, TranscriptsListConversationsInTheOrderTheyBeganWithEveryTurn) {
  TempDir dir;
  auto store = open_or_die(dir.str("s"));
  WriteSet writes;
  writes.conversations = {{.id = "zz-first", .user_id = "alice", .created_ms = 100, .updated_ms = 130},
                          {.id = "aa-second", .created_ms = 200, .updated_ms = 210},
                          {.id = "mm-third", .user_id = "bob", .created_ms = 300, .updated_ms = 300}};
  writes.turns = {{.conversation_id = "zz-first", .index = 1, .speaker = Speaker::kBot, .text = "hello ! how are you ?",
                   .time_ms = 111, .model_version = "v1", .candidate_id = 17,
                   .shadow = ShadowReply{"v2", "hi there"}},
                  {.conversation_id = "zz-first", .index = 0, .speaker = Speaker::kUser, .text = "hi \"bot\"",
                   .time_ms = 110},
                  {.conversation_id = "zz-first", .index = 2, .speaker = Speaker::kUser, .text = "what ?",
                   .time_ms = 130, .satisfaction = 0.25},
                  {.conversation_id = "aa-second", .index = 0, .speaker = Speaker::kUser, .text = "hey", .time_ms = 210}};
  ASSERT_OK(store->commit(writes));

  std::ostringstream all;
  auto n = store->export_transcripts(all);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(all.str(),
            R"({"conversation_id":"zz-first","user_id":"alice","created_ms":100,"updated_ms":130,"turns":[)"
            R"({"turn":0,"speaker":"user","text":"hi \"bot\"","time_ms":110,"phase":"normal"},)"
            R"({"turn":1,"speaker":"bot","text":"hello ! how are you ?","time_ms":111,"phase":"normal","model_version":"v1","candidate_id":17,"shadow":{"version":"v2","text":"hi there"}},)"
            R"({"turn":2,"speaker":"user","text":"what ?","time_ms":130,"phase":"normal","satisfaction":0.25}]})"
            "\n"
            R"({"conversation_id":"aa-second","created_ms":200,"updated_ms":210,"turns":[)"
            R"({"turn":0,"speaker":"user","text":"hey","time_ms":210,"phase":"normal"}]})"
            "\n"
            R"({"conversation_id":"mm-third","user_id":"bob","created_ms":300,"updated_ms":300,"turns":[]})"
            "\n");

  std::ostringstream alice, recent;
  ASSERT_OK(store->export_transcripts(alice, {.user_id = "alice"}));
  const std::string alices = alice.str();
  EXPECT_TRUE(alices.starts_with(R"({"conversation_id":"zz-first")"));
  EXPECT_EQ(std::count(alices.begin(), alices.end(), '\n'), 1);
  auto recent_n = store->export_transcripts(recent, {.updated_after_ms = 130});
  ASSERT_OK(recent_n);
  EXPECT_EQ(*recent_n, 2u);
  EXPECT_TRUE(recent.str().starts_with(R"({"conversation_id":"aa-second")"));

  ASSERT_OK(store->delete_user("alice"));
  std::ostringstream after_delete;
  ASSERT_OK(store->export_transcripts(after_delete, {.user_id = "alice"}));
  EXPECT_EQ(after_delete.str(), "");
}

TEST(StoreTest, ImportReadsPlainSelfFeedingFiles) {
  TempDir dir;
  auto store = open_or_die(dir.str("db"));
  std::istringstream in(
      "{\"context\": \"__null__\", \"response\": \"hi there\", \"reward\": 0, \"episode_done\": true}\n"
      "\n"
      "{\"context\": \"__p2__ a __p1__ b\", \"response\": 1, \"kind\": \"ST\"}\n");
  auto n = store->import_examples(in, {.default_kind = ExampleKind::kHH, .source = "import:test"});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 2u);
  auto hh = store->get_example(ExampleKind::kHH, 1);
  ASSERT_OK(hh);
  EXPECT_EQ(hh->target, "hi there");
  EXPECT_EQ(hh->source, "import:test");
  auto st = store->get_example(ExampleKind::kST, 2);
  ASSERT_OK(st);
  EXPECT_EQ(st->target, "1");
}

TEST(StoreTest, ImportRejectsABadLineAndWritesNothing) {
  TempDir dir;
  auto store = open_or_die(dir.str("db"));
  std::istringstream in(
      "{\"context\": \"a\", \"response\": \"b\"}\n"
      "{\"context\": \"a\", \"response\": \"b\"}\n"
      "{\"context\": \"a\", \"respons\": \"typo\"}\n");
  auto n = store->import_examples(in);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(n.status().message().find("line 3"), std::string::npos) << n.status().message();
  EXPECT_EQ(store->stats()->last_seq, 0u);

  std::istringstream bad_kind("{\"context\": \"a\", \"response\": \"b\", \"kind\": \"XX\"}\n");
  EXPECT_EQ(store->import_examples(bad_kind).status().code(), StatusCode::kInvalidArgument);
  std::istringstream not_json("{\"context\": \"a\", \n");
  EXPECT_EQ(store->import_examples(not_json).status().code(), StatusCode::kInvalidArgument);
}

TEST(StoreTest, InvalidIdsAreRejectedBeforeAnythingIsWritten) {
  TempDir dir;
  auto store = open_or_die(dir.str("db"));
  WriteSet w;
  w.examples.push_back(make_example(ExampleKind::kHB, "ok", 1));
  w.conversations.push_back({.id = std::string("bad\0id", 6)});
  EXPECT_EQ(store->commit(w).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->put_conversation({.id = ""}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->put_conversation({.id = std::string(200, 'x')}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->stats()->last_seq, 0u);
}

TEST(StoreTest, ConcurrentCommitsGetUniqueContiguousSeqs) {
  for (bool group_commit : {true, false}) {
    TempDir dir;
    auto opened = Store::open({.path = dir.str("db"), .group_commit = group_commit});
    ASSERT_OK(opened);
    Store& store = **opened;
    constexpr int kThreads = 8, kPerThread = 40;
    std::vector<std::vector<std::uint64_t>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto seq = store.add_example(make_example(ExampleKind::kHB, "u" + std::to_string(t), i));
          if (seq.ok()) got[t].push_back(*seq);
        }
      });
    }
    for (auto& th : threads) th.join();
    std::set<std::uint64_t> all;
    for (const auto& v : got) {
      EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
      all.insert(v.begin(), v.end());
    }
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
    EXPECT_EQ(*all.begin(), 1u);
    EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kThreads * kPerThread));
    EXPECT_EQ(seqs_of(store, ExampleKind::kHB, 0).size(), all.size());
  }
}

TEST(StoreTest, SecondWriterIsToldTheStoreIsInUse) {
  TempDir dir;
  auto first = open_or_die(dir.str("db"));
  auto second = Store::open({.path = dir.str("db")});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status().message();
  EXPECT_NE(second.status().message().find(dir.str("db")), std::string::npos);
}

TEST(StoreTest, ReadOnlyOpenSeesDataBesideTheWriterAndRefusesWrites) {
  TempDir dir;
  auto writer = open_or_die(dir.str("db"));
  ASSERT_OK(writer->add_example(make_example(ExampleKind::kHB, "u", 1)));
  auto reader = open_or_die(dir.str("db"), OpenMode::kReadOnly);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(seqs_of(*reader, ExampleKind::kHB, 0), std::vector<std::uint64_t>{1});
  EXPECT_EQ(reader->add_example(make_example(ExampleKind::kHB, "u", 2)).status().code(),
            StatusCode::kFailedPrecondition);
  auto missing = Store::open({.path = dir.str("absent"), .mode = OpenMode::kReadOnly});
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir.str("absent")));
}

TEST(StoreTest, CorruptFilesGiveDataLoss) {
  TempDir dir;
  {
    auto store = open_or_die(dir.str("db"));
    ASSERT_OK(store->add_example(make_example(ExampleKind::kHB, "u", 1)));
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir.str("db"))) {
    if (entry.path().filename().string().rfind("MANIFEST-", 0) == 0) {
      std::ofstream(entry.path(), std::ios::binary | std::ios::trunc) << std::string(4096, '\x5a');
    }
  }
  auto reopened = Store::open({.path = dir.str("db")});
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kDataLoss) << reopened.status().to_string();
}

TEST(StoreTest, NewerSchemaIsRefusedWithAClearError) {
  TempDir dir;
  { open_or_die(dir.str("db")); }
  // Write a future schema version the way a newer build would.
  put_meta_behind_the_store(dir.str("db"), "schema_version", std::string("\0\0\0\0\0\0\0\x07", 8));
  auto reopened = Store::open({.path = dir.str("db")});
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(reopened.status().message().find("schema version 7"), std::string::npos) << reopened.status().message();
}

}  // namespace
}  // namespace selffeed::store
