// The learning loop through a real server: users harvest HB and FB examples, one user is
// deleted, `selffeed retrain` reads the store while the server runs, the gate promotes the
// new bundle and a connected client sees the new version without reconnecting; a worse
// bundle is refused; rollback restores the previous version.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "selffeed/common/digest.h"
#include "selffeed/store/store.h"
#include "server_process.h"

namespace selffeed {
namespace {

using nlohmann::json;
using testing::TempDir;

const std::vector<std::string> kObjects = {"car", "house", "bike", "boat", "kite", "lamp", "door", "shoe"};
const std::vector<std::string> kColours = {"red", "blue", "green", "yellow", "black", "white", "pink", "grey"};

std::string toy_train_file() { return testing::toy_bundle() + "/../../train.txt"; }

// The gate's "PersonaChat valid": the toy questions, every toy reply as a candidate.
void write_gate_file(const std::string& path) {
  std::vector<std::string> targets;
  for (std::size_t i = 0; i < kObjects.size(); ++i) {
    targets.push_back("my " + kObjects[i] + " is " + kColours[i] + " .");
    targets.push_back("it is in the garden , near the " + kObjects[(i + 1) % kObjects.size()] + " .");
  }
  std::ofstream out(path);
  for (std::size_t i = 0; i < kObjects.size(); ++i) {
    for (int line = 0; line < 2; ++line) {
      const std::string& label = targets[2 * i + static_cast<std::size_t>(line)];
      std::string candidates = label;
      for (const std::string& t : targets) {
        if (t != label) candidates += "|" + t;
      }
      const std::string text = line == 0 ? "hello ! what colour is your " + kObjects[i] + " ?" : "nice . where is it ?";
      out << line + 1 << ' ' << text << '\t' << label << "\t\t" << candidates << '\n';
    }
  }
}

// Trains a bundle with `selffeed` (`train` or `retrain`), quietly; its lineage as JSON.
json train(const std::string& command, const TempDir& dir, const std::string& name) {
  const std::string line = std::string(SELFFEED_BINARY) + " --log-level warn " + command +
                           " --holdout 0.25 --steps 300 --validate-every 50 --batch 8 --warmup 10 --lr 0.01 > " +
                           dir.str(name + ".json") + " 2> " + dir.str(name + ".log");
  EXPECT_EQ(std::system(line.c_str()), 0) << testing::read_file(dir.str(name + ".log"));
  return json::parse(testing::read_file(dir.str(name + "/bundle/bundle.json")), nullptr, false);
}

json admin(const clients::LocalServer& server, const std::string& method, const std::string& path,
           const json& body = json::object()) {
  auto reply = clients::http_request(method, server.http_url(path), body.dump(), "Bearer secret", std::chrono::minutes(2));
  EXPECT_TRUE(reply.ok()) << reply.status().to_string();
  if (!reply.ok()) return {};
  if (reply->content_type == "application/x-ndjson") {
    json lines = json::array();
    std::istringstream in(reply->body);
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    return lines;
  }
  return json::parse(reply->body, nullptr, false);
}

// Chats: two satisfied replies (HB) and one complaint answered with `feedback` (FB), in a
// conversation named "<user>-conversation": for these users, never one the gate holds out
// (one conversation in ten, drawn by a hash of its id).
void harvest(const clients::LocalServer& server, const std::string& user,
             const std::string& feedback = "you could have said my kite is in the garden .") {
  auto client = clients::WsClient::connect(server.ws_url());
  ASSERT_OK(client);
  const json hello = {{"type", "hello"}, {"user_id", user}, {"conversation_id", user + "-conversation"}};
  ASSERT_EQ(testing::request(**client, hello)["type"], "welcome");
  for (const std::string& text : std::vector<std::string>{"hello ! what colour is your car ?", "nice . where is your car ?",
                                                          "cool . where is your kite ?", "what ? you are not making sense",
                                                          feedback}) {
    ASSERT_EQ(testing::request(**client, {{"type", "message"}, {"text", text}})["type"], "reply");
  }
}

// `selffeed store export` of the examples `bundle` was trained on, into `name`.jsonl; its
// exit code, with what it said in `said`.
int export_snapshot(const TempDir& dir, const std::string& bundle, const std::string& name, std::string& said) {
  const std::string line = std::string(SELFFEED_BINARY) + " --log-level warn store export --store " + dir.str("store") +
                           " --snapshot-of " + bundle + " --out " + dir.str(name + ".jsonl") + " 2> " +
                           dir.str(name + ".log");
  const int status = std::system(line.c_str());
  said = testing::read_file(dir.str(name + ".log"));
  return status;
}

TEST(LearningLoopTest, RetrainGatePromoteSwapLiveAndRollBack) {
  TempDir dir;
  write_gate_file(dir.str("gate.txt"));
  const std::string key = "a key of at least sixteen bytes";
  std::ofstream(dir.str("pseudonym.key")) << key << "\n";
  auto server = testing::start_server(dir.str(), dir.str("store"),
                                      {"--admin-token", "secret", "--gate-valid", dir.str("gate.txt"),
                                       "--gate-epsilon", "0", "--pseudonym-key-file", dir.str("pseudonym.key")});
  ASSERT_TRUE(server);
  harvest(*server, "alice");
  harvest(*server, "bob");
  harvest(*server, "carol");
  harvest(*server, "dave", "call me at 555 123 4567");  // kept, but never said to anyone

  // Bob asks for his data to be deleted before the next training run.
  std::set<std::uint64_t> bobs_seqs;
  for (const json& e : admin(*server, "GET", "/admin/export")) {
    if (e["user_id"] == "bob") bobs_seqs.insert(e["seq"].get<std::uint64_t>());
  }
  ASSERT_FALSE(bobs_seqs.empty());
  // His conversation, both sides: five messages and five replies.
  const json bobs_transcripts = admin(*server, "GET", "/admin/transcripts?user=bob");
  ASSERT_EQ(bobs_transcripts.size(), 1u);
  EXPECT_EQ(bobs_transcripts[0]["user_id"], "bob");
  EXPECT_EQ(bobs_transcripts[0]["turns"].size(), 10u);
  EXPECT_EQ(bobs_transcripts[0]["turns"][0]["text"], "hello ! what colour is your car ?");
  EXPECT_EQ(admin(*server, "GET", "/admin/transcripts").size(), 4u);
  EXPECT_EQ(admin(*server, "GET", "/admin/transcripts?user=b%6Fb").size(), 1u);  // query values are URL-decoded
  EXPECT_EQ(admin(*server, "GET", "/admin/transcripts?updated_after_ms=soon")["error"], "invalid_argument");
  EXPECT_EQ(admin(*server, "GET", "/admin/export?after=-1")["error"], "invalid_argument");
  EXPECT_EQ(admin(*server, "GET", "/admin/export?after=" + std::to_string(*bobs_seqs.rbegin())).size(),
            admin(*server, "GET", "/admin/export").size() - static_cast<std::size_t>(*bobs_seqs.rbegin()));
  // Exports that leave the machine: dave's phone number redacted, ids pseudonymised (the
  // same person, the same pseudonym, in examples and transcripts alike).
  const auto said_by = [](const json& lines, const std::string& user) {
    std::vector<std::string> responses;
    for (const json& e : lines) {
      if (e.value("user_id", "") == user) responses.push_back(e["response"]);
    }
    return responses;
  };
  EXPECT_EQ(said_by(admin(*server, "GET", "/admin/export?redact=1"), "dave").back(), "call me at [phone number]");
  EXPECT_EQ(said_by(admin(*server, "GET", "/admin/export"), "dave").back(), "call me at 555 123 4567");
  const std::string daves_pseudonym = "anon-" + hmac_sha256_hex(key, "dave").substr(0, 20);
  const json hidden = admin(*server, "GET", "/admin/export?redact=1&pseudonymise=1");
  EXPECT_EQ(said_by(hidden, daves_pseudonym).back(), "call me at [phone number]");
  for (const json& e : hidden) {
    EXPECT_TRUE(e["user_id"].get<std::string>().starts_with("anon-")) << e.dump();
    EXPECT_TRUE(e["conversation_id"].get<std::string>().starts_with("anon-")) << e.dump();
  }
  const json daves_conversation = admin(*server, "GET", "/admin/transcripts?user=dave&pseudonymise=1&redact=1");
  ASSERT_EQ(daves_conversation.size(), 1u);
  EXPECT_EQ(daves_conversation[0]["user_id"], daves_pseudonym);
  EXPECT_EQ(daves_conversation[0]["turns"][8]["text"], "call me at [phone number]");
  EXPECT_EQ(admin(*server, "GET", "/admin/export?redact=yes")["error"], "invalid_argument");

  const json deleted_bob = admin(*server, "DELETE", "/admin/users/bob");
  ASSERT_EQ(deleted_bob["user_id"], "bob");
  EXPECT_EQ(deleted_bob["models_trained_on_them"], json::array()) << "no version has learned from him yet";
  EXPECT_EQ(admin(*server, "GET", "/admin/transcripts?user=bob").size(), 0u);
  EXPECT_EQ(admin(*server, "GET", "/admin/transcripts").size(), 3u);

  // A client that stays connected through every change below.
  auto watcher = clients::WsClient::connect(server->ws_url());
  ASSERT_OK(watcher);
  ASSERT_EQ(testing::request(**watcher, {{"type", "hello"}})["model_version"], "toy-v1");

  const json no_trust = admin(*server, "GET", "/admin/trust");
  EXPECT_EQ(no_trust["error"], "not_found") << "toy-v1 was not trained on a harvest: " << no_trust.dump();
  EXPECT_NE(no_trust.value("message", "").find("no trust.json beside the bundle"), std::string::npos)
      << no_trust.dump();
  // Retrain from the live model while the server runs (the store is opened read-only).
  const json v2 = train("retrain --store " + dir.str("store") + " --out " + dir.str("v2") + " --personachat " +
                            toy_train_file() + " --version toy-v2",
                        dir, "v2");
  ASSERT_TRUE(v2.is_object());
  const json& harvested = v2["lineage"]["harvested"];
  EXPECT_EQ(harvested["HB"], 6) << "alice's, carol's and dave's two satisfied replies";
  EXPECT_EQ(harvested["FB"], 2);
  EXPECT_EQ(harvested["refused_by_the_guard"], json({{"phone number", 1}}));
  EXPECT_EQ(harvested["over_the_user_cap"], 0) << "two each, far under the default cap";
  EXPECT_EQ(testing::read_file(dir.str("v2/bundle/candidates.txt")).find("4567"), std::string::npos);
  std::set<std::uint64_t> used;
  for (const auto& seq : harvested["example_seqs"]) used.insert(seq.get<std::uint64_t>());
  EXPECT_EQ(used.size(), 8u);
  for (std::uint64_t seq : bobs_seqs) EXPECT_EQ(used.count(seq), 0u) << "a deleted user's example was trained on";
  EXPECT_NE(v2["lineage"]["fine_tuned_from"].get<std::string>().find("run/bundle"), std::string::npos);
  // Beside it, what the trust rule saw of each user; the live model judged their feedback.
  const json trust = json::parse(testing::read_file(dir.str("v2/trust.json")));
  EXPECT_NE(trust["feedback_judged_by"].get<std::string>().find("run/bundle"), std::string::npos);
  EXPECT_EQ(harvested["feedback_judged_by"], trust["feedback_judged_by"]);
  std::set<std::string> teachers;
  for (const json& t : trust["teachers"]) {
    teachers.insert(t["teacher"].get<std::string>());
    EXPECT_TRUE(t["trusted"].get<bool>()) << t.dump();
    EXPECT_TRUE(t["feedback_rank"].is_null()) << "nobody taught ten FB examples";
  }
  EXPECT_TRUE(teachers.contains("alice"));
  EXPECT_FALSE(teachers.contains("bob")) << "a deleted user is not read at all";
  // The snapshot toy-v2 learned from, written again from the store beside the running
  // server: exactly those examples, the hash its lineage pinned.
  std::string said;
  ASSERT_EQ(export_snapshot(dir, dir.str("v2/bundle"), "v2-snapshot", said), 0) << said;
  EXPECT_NE(said.find("the snapshot it pinned, to the byte"), std::string::npos) << said;
  const std::string snapshot = testing::read_file(dir.str("v2-snapshot.jsonl"));
  EXPECT_EQ(sha256_hex(snapshot), harvested["snapshot_sha256"]);
  std::set<std::uint64_t> exported;
  std::istringstream snapshot_lines(snapshot);
  for (std::string line; std::getline(snapshot_lines, line);) exported.insert(json::parse(line)["seq"].get<std::uint64_t>());
  EXPECT_EQ(exported, used);

  const json promoted = admin(*server, "POST", "/admin/models/load", {{"bundle", dir.str("v2/bundle")}});
  ASSERT_EQ(promoted["promoted"], true) << promoted.dump();
  EXPECT_GT(promoted["candidate"]["personachat_hits@1"], promoted["live"]["personachat_hits@1"]);
  EXPECT_EQ(promoted["live_version"], "toy-v2");
  // The operator reads what the trust rule saw when the live version was trained.
  const json live_trust = admin(*server, "GET", "/admin/trust");
  EXPECT_EQ(live_trust["version"], "toy-v2");
  EXPECT_EQ(live_trust["teachers"], trust["teachers"]);
  EXPECT_EQ(admin(*server, "GET", "/admin/trust?version=toy-v2"), live_trust);
  EXPECT_EQ(admin(*server, "GET", "/admin/trust?version=no-such")["error"], "not_found");
  json reply = testing::request(**watcher, {{"type", "message"}, {"text", "what colour is your bike ?"}});
  ASSERT_EQ(reply["type"], "reply") << reply.dump();
  EXPECT_EQ(reply["model_version"], "toy-v2") << "the connected client gets the new model without reconnecting";

  // A bundle trained on shuffled replies is refused and changes nothing.
  {
    std::ifstream in(toy_train_file());
    std::vector<std::string> contexts, labels;
    for (std::string line; std::getline(in, line);) {
      const auto tab = line.find('\t');
      contexts.push_back(line.substr(0, tab));
      labels.push_back(line.substr(tab + 1));
    }
    std::rotate(labels.begin(), labels.begin() + 3, labels.end());
    std::ofstream out(dir.str("shuffled.txt"));
    for (std::size_t i = 0; i < contexts.size(); ++i) out << contexts[i] << '\t' << labels[i] << '\n';
  }
  train("train --out " + dir.str("bad") + " --personachat " + dir.str("shuffled.txt") +
            " --d-model 32 --heads 2 --layers 1 --ffn 16 --vocab 100 --version toy-bad",
        dir, "bad");
  const json refused = admin(*server, "POST", "/admin/models/load", {{"bundle", dir.str("bad/bundle")}});
  EXPECT_EQ(refused["promoted"], false) << refused.dump();
  EXPECT_EQ(refused["live_version"], "toy-v2");

  // Rollback restores toy-v1, again without a reconnect.
  const json rolled_back = admin(*server, "POST", "/admin/models/rollback");
  EXPECT_EQ(rolled_back["live_version"], "toy-v1") << rolled_back.dump();
  reply = testing::request(**watcher, {{"type", "message"}, {"text", "where is your door ?"}});
  EXPECT_EQ(reply["model_version"], "toy-v1");

  // Every decision is in the registry.
  std::map<std::string, std::string> status;
  const json registry = admin(*server, "GET", "/models");
  for (const json& m : registry["models"]) status[m["version"]] = m["status"];
  EXPECT_EQ(status["toy-v1"], "live");
  EXPECT_EQ(status["toy-v2"], "retired");
  EXPECT_EQ(status["toy-bad"], "rejected");

  // Deleting a user whose examples toy-v2 learned from says so: their words live on in it.
  std::set<std::uint64_t> alices_seqs;
  for (const json& e : admin(*server, "GET", "/admin/export")) {
    if (e["user_id"] == "alice") alices_seqs.insert(e["seq"].get<std::uint64_t>());
  }
  ASSERT_EQ(alices_seqs.size(), 3u);
  const json deleted_alice = admin(*server, "DELETE", "/admin/users/alice");
  EXPECT_GT(deleted_alice["examples"], 0);
  EXPECT_EQ(deleted_alice["models_trained_on_them"], json({"toy-v2"})) << deleted_alice.dump();
  // toy-v2's trust report no longer names her.
  const json trust_after_alice = admin(*server, "GET", "/admin/trust?version=toy-v2");
  ASSERT_TRUE(trust_after_alice["teachers"].is_array()) << trust_after_alice.dump();
  EXPECT_EQ(trust_after_alice["teachers"].size() + 1, live_trust["teachers"].size());
  for (const json& t : trust_after_alice["teachers"]) EXPECT_NE(t["teacher"], "alice");
  // Its snapshot (alice's two HB and one FB among them) is no longer in the store whole,
  // and the export says so (asked by version this time).
  ASSERT_EQ(export_snapshot(dir, "toy-v2", "v2-after-alice", said), 0) << said;
  EXPECT_NE(said.find("3 of the 8 examples it was trained on are no longer in the store"), std::string::npos) << said;

  // Forgetting. toy-v2 is marked in the registry, and no operator puts it back by mistake.
  EXPECT_EQ(deleted_alice["live_model_trained_on_them"], false) << "toy-v1 is live";
  EXPECT_EQ(deleted_alice["live_replies_withdrawn"], 0) << "her words are not in toy-v1's pool";
  auto learned_from_deleted = [&] {
    std::map<std::string, bool> marked;
    const json registry = admin(*server, "GET", "/models");
    for (const json& m : registry["models"]) marked[m["version"]] = m["learned_from_deleted_users"];
    return marked;
  };
  EXPECT_EQ(learned_from_deleted(), (std::map<std::string, bool>{{"toy-v1", false}, {"toy-v2", true}, {"toy-bad", false}}));
  const json not_promoted = admin(*server, "POST", "/admin/models/promote", {{"version", "toy-v2"}});
  EXPECT_EQ(not_promoted["error"], "failed_precondition") << not_promoted.dump();
  EXPECT_NE(not_promoted["message"].get<std::string>().find("learned from the examples of a deleted user"),
            std::string::npos) << not_promoted.dump();
  EXPECT_EQ(admin(*server, "POST", "/admin/models/shadow", {{"bundle", dir.str("v2/bundle")}, {"share", 1}})["error"],
            "failed_precondition");
  // Forced live, it raises the alert until a model without alice's examples replaces it.
  const json forced = admin(*server, "POST", "/admin/models/promote", {{"version", "toy-v2"}, {"force", true}});
  ASSERT_EQ(forced["live_version"], "toy-v2") << forced.dump();
  const json alerts = admin(*server, "GET", "/admin/alerts")["alerts"];
  ASSERT_EQ(alerts.size(), 1u) << alerts.dump();
  EXPECT_EQ(alerts[0]["alert"], "live_model_learned_from_deleted_users");
  EXPECT_EQ(alerts[0]["subject"], "toy-v2");
  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_alert{alert=\"live_model_learned_from_deleted_users\",subject=\"toy-v2\"} 1"),
            std::string::npos);
  // Retraining does not fine-tune toy-v2's weights: it restarts from toy-v1, which did not
  // learn from her, and the gate measures the result against toy-v1.
  const json v3 = train("retrain --store " + dir.str("store") + " --out " + dir.str("v3") + " --personachat " +
                            toy_train_file() + " --version toy-v3",
                        dir, "v3");
  ASSERT_TRUE(v3.is_object());
  EXPECT_EQ(v3["lineage"]["restarted_from"]["version"], "toy-v1") << v3["lineage"].dump();
  EXPECT_EQ(v3["lineage"]["restarted_from"]["instead_of"], "toy-v2");
  EXPECT_NE(v3["lineage"]["fine_tuned_from"].get<std::string>().find("run/bundle"), std::string::npos);
  EXPECT_GT(v3["lineage"]["harvested"]["HB"], 0);
  for (const json& seq : v3["lineage"]["harvested"]["example_seqs"]) {
    EXPECT_EQ(alices_seqs.count(seq.get<std::uint64_t>()), 0u) << "a deleted user's example was trained on";
  }
  const json forgot = admin(*server, "POST", "/admin/models/load", {{"bundle", dir.str("v3/bundle")}});
  ASSERT_EQ(forgot["promoted"], true) << forgot.dump();
  EXPECT_NE(forgot["reason"].get<std::string>().find("against toy-v1"), std::string::npos) << forgot.dump();
  EXPECT_TRUE(admin(*server, "GET", "/admin/alerts")["alerts"].empty());
  metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_alert{alert=\"live_model_learned_from_deleted_users\",subject=\"toy-v2\"} 0"),
            std::string::npos);
  // Rollback passes over toy-v2, retired last, to toy-v1.
  const json back = admin(*server, "POST", "/admin/models/rollback");
  EXPECT_EQ(back["live_version"], "toy-v1") << back.dump();

  // A model retrained without her that is no better than the version it restarted from
  // (here toy-v1's very weights: no step) is refused, and that version goes live in its
  // place: the live model that learned from her goes either way.
  ASSERT_EQ(admin(*server, "POST", "/admin/models/promote", {{"version", "toy-v2"}, {"force", true}})["live_version"],
            "toy-v2");
  const std::string same = std::string(SELFFEED_BINARY) + " --log-level warn retrain --store " + dir.str("store") +
                           " --out " + dir.str("v4") + " --personachat " + toy_train_file() +
                           " --version toy-v4 --steps 0 --holdout 0.25 > " + dir.str("v4.json") + " 2> " + dir.str("v4.log");
  ASSERT_EQ(std::system(same.c_str()), 0) << testing::read_file(dir.str("v4.log"));
  const json refused_but_forgot = admin(*server, "POST", "/admin/models/load", {{"bundle", dir.str("v4/bundle")}});
  EXPECT_EQ(refused_but_forgot["promoted"], false) << refused_but_forgot.dump();
  EXPECT_EQ(refused_but_forgot["live_version"], "toy-v1") << refused_but_forgot.dump();
  EXPECT_NE(refused_but_forgot["reason"].get<std::string>().find("toy-v1 goes live instead"), std::string::npos);
  EXPECT_TRUE(admin(*server, "GET", "/admin/alerts")["alerts"].empty());
}

// What a deleted user said is never said again by the live model, though its pool holds it
// (here the training file's own reply, said back to the bot), across a restart too.
TEST(LearningLoopTest, ADeletedUsersRepliesAreNeverSaidAgainAcrossARestart) {
  TempDir dir;
  const std::string question = "hello ! what colour is your car ?";
  auto answer_in_a_new_conversation = [&](const clients::LocalServer& server) {
    auto client = clients::WsClient::connect(server.ws_url());
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return std::string();
    EXPECT_EQ(testing::request(**client, {{"type", "hello"}})["type"], "welcome");
    const json reply = testing::request(**client, {{"type", "message"}, {"text", question}});
    EXPECT_EQ(reply["type"], "reply") << reply.dump();
    return reply.value("text", std::string());
  };
  auto server = testing::start_server(dir.str(), dir.str("store"), {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  const std::string answer = answer_in_a_new_conversation(*server);
  ASSERT_FALSE(answer.empty());
  ASSERT_EQ(answer_in_a_new_conversation(*server), answer) << "the same question, the same answer";
  {
    // Eve says the bot's answer back to it: a satisfied reply, harvested as her HB example.
    auto eve = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(eve);
    ASSERT_EQ(testing::request(**eve, {{"type", "hello"}, {"user_id", "eve"}})["type"], "welcome");
    ASSERT_EQ(testing::request(**eve, {{"type", "message"}, {"text", question}})["type"], "reply");
    ASSERT_EQ(testing::request(**eve, {{"type", "message"}, {"text", answer}})["type"], "reply");
  }
  std::size_t eves_replies = 0;
  for (const json& e : admin(*server, "GET", "/admin/export?kind=HB")) eves_replies += e["response"] == answer;
  ASSERT_EQ(eves_replies, 1u);

  const json deleted = admin(*server, "DELETE", "/admin/users/eve");
  EXPECT_EQ(deleted["live_model_trained_on_them"], false) << "toy-v1 never learned from her";
  EXPECT_GE(deleted["live_replies_withdrawn"], 1) << deleted.dump();
  const std::string after = answer_in_a_new_conversation(*server);
  EXPECT_FALSE(after.empty());
  EXPECT_NE(after, answer);

  server.reset();  // SIGTERM; the store keeps the tombstone
  server = testing::start_server(dir.str(), dir.str("store"), {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  EXPECT_EQ(answer_in_a_new_conversation(*server), after);

  // Eve's id, back, is answered but teaches nothing: retraining would never read it.
  auto eve = clients::WsClient::connect(server->ws_url());
  ASSERT_OK(eve);
  const json welcome = testing::request(**eve, {{"type", "hello"}, {"user_id", "eve"}, {"learn", true}});
  ASSERT_EQ(welcome["type"], "welcome") << welcome.dump();
  EXPECT_EQ(welcome["learn"], false);
  ASSERT_EQ(testing::request(**eve, {{"type", "message"}, {"text", question}})["type"], "reply");
  ASSERT_EQ(testing::request(**eve, {{"type", "message"}, {"text", "nice , thanks !"}})["type"], "reply");
  for (const json& e : admin(*server, "GET", "/admin/export")) EXPECT_NE(e["user_id"], "eve") << e.dump();
}

// The same, when an anonymous user deletes the conversation in which they said it: the
// live pool withdraws the reply (shortly: the check runs on the admin thread).
TEST(LearningLoopTest, AReplySaidInADeletedConversationIsNeverSaidAgain) {
  TempDir dir;
  const std::string question = "hello ! what colour is your car ?";
  auto server = testing::start_server(dir.str(), dir.str("store"), {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  auto client = clients::WsClient::connect(server->ws_url());
  ASSERT_OK(client);
  auto& ws = **client;
  ASSERT_EQ(testing::request(ws, {{"type", "hello"}})["type"], "welcome");
  const std::string answer = testing::request(ws, {{"type", "message"}, {"text", question}}).value("text", "");
  ASSERT_FALSE(answer.empty());
  const json said_back = testing::request(ws, {{"type", "message"}, {"text", answer}});
  ASSERT_EQ(said_back["harvested"], json::array({"HB"})) << said_back.dump();
  const json deleted = testing::request(ws, {{"type", "delete_conversation"}});
  ASSERT_EQ(deleted["type"], "conversation_deleted") << deleted.dump();
  EXPECT_EQ(deleted["examples"], 1);
  std::string after = answer;
  for (int attempt = 0; attempt < 100 && after == answer; ++attempt) {
    ASSERT_EQ(testing::request(ws, {{"type", "hello"}})["type"], "welcome");
    after = testing::request(ws, {{"type", "message"}, {"text", question}}).value("text", "");
    if (after == answer) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(after.empty());
  EXPECT_NE(after, answer) << "the deleted conversation's reply is still offered";
  EXPECT_TRUE(admin(*server, "GET", "/admin/export?kind=HB").empty());
}

// Concurrent users commit their turns in whatever order they come. The same harvest,
// committed in another order, retrains into the same model: retraining reads the examples
// in an order fixed by their text and draws the gate's conversations by id, not by seq.
TEST(LearningLoopTest, TheSameHarvestCommittedInAnotherOrderRetrainsTheSameModel) {
  TempDir dir;
  std::vector<Example> harvest;
  for (std::size_t i = 0; i < kObjects.size(); ++i) {
    const Example turn{.context = "__p1__ hello ! what colour is your " + kObjects[i] + " ?",
                       .conversation_id = "conversation-" + std::to_string(i),
                       .user_id = "user-" + std::to_string(i),
                       .source = "server"};
    Example hb = turn, fb = turn;
    hb.kind = ExampleKind::kHB;
    hb.target = "my " + kObjects[i] + " is " + kColours[i] + " .";
    fb.kind = ExampleKind::kFB;
    fb.target = "it is in the garden , near the " + kObjects[(i + 1) % kObjects.size()] + " .";
    harvest.push_back(hb);
    harvest.push_back(fb);
  }
  std::vector<std::string> models;
  for (const std::string name : {"in-order", "reversed"}) {
    {
      auto store = store::Store::open({.path = dir.str(name + "-store")});
      ASSERT_OK(store);
      for (const Example& e : harvest) ASSERT_OK((*store)->add_example(e));  // one commit a turn, as they come
    }
    std::reverse(harvest.begin(), harvest.end());
    train("retrain --store " + dir.str(name + "-store") + " --init-bundle " + testing::toy_bundle() + " --out " +
              dir.str(name) + " --personachat " + toy_train_file() + " --version toy-v2 --seed 1",
          dir, name);
    models.push_back(testing::read_file(dir.str(name + "/bundle/dialogue.pt")));
  }
  ASSERT_FALSE(models[0].empty());
  EXPECT_TRUE(models[0] == models[1]) << "the commit order changed the retrained model";
}

// The periodic trainer inside the server: enough harvested examples trigger `selffeed
// retrain` in the background, the gate promotes, and a connected client sees the version.
TEST(LearningLoopTest, PeriodicTrainerRetrainsAndPromotesInTheBackground) {
  TempDir dir;
  write_gate_file(dir.str("gate.txt"));
  auto server = testing::start_server(
      dir.str(), dir.str("store"),
      {"--admin-token", "secret", "--gate-valid", dir.str("gate.txt"), "--gate-epsilon", "0",
       "--retrain-every-examples", "6", "--retrain-personachat", toy_train_file(), "--retrain-dir", dir.str("runs"),
       "--retrain-args", "--holdout 0.25 --steps 300 --validate-every 50 --batch 8 --warmup 10 --lr 0.01"});
  ASSERT_TRUE(server);
  auto watcher = clients::WsClient::connect(server->ws_url());
  ASSERT_OK(watcher);
  ASSERT_EQ(testing::request(**watcher, {{"type", "hello"}})["model_version"], "toy-v1");
  harvest(*server, "alice");  // 3 examples: not yet
  harvest(*server, "carol");  // 6: the trainer fires

  bool promoted = false;
  std::string metrics;
  for (int i = 0; i < 600 && !promoted; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto page = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(page);
    metrics = page->body;
    promoted = metrics.find("selffeed_trainer_runs_total{outcome=\"promoted\"} 1") != std::string::npos;
    ASSERT_EQ(metrics.find("selffeed_trainer_runs_total{outcome=\"failed\"} 1"), std::string::npos)
        << testing::read_file(server->log_path());
  }
  ASSERT_TRUE(promoted) << metrics;
  const json reply = testing::request(**watcher, {{"type", "message"}, {"text", "what colour is your lamp ?"}});
  ASSERT_EQ(reply["type"], "reply") << reply.dump();
  const std::string first = reply["model_version"];
  EXPECT_TRUE(first.starts_with("auto-")) << reply.dump();

  // Alice is deleted: the live version learned from her, so the trainer retrains at once,
  // with no new examples, from toy-v1, and the model without her goes live.
  const json deleted = admin(*server, "DELETE", "/admin/users/alice");
  ASSERT_EQ(deleted["live_model_trained_on_them"], true) << deleted.dump();
  // Until then it never says what she said ("nice . where is your car ?", ...), nor what
  // carol said in the same words.
  EXPECT_GE(deleted["live_replies_withdrawn"], 3) << deleted.dump();
  std::string live;
  for (int i = 0; i < 600 && (live.empty() || live == first); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    live = admin(*server, "GET", "/models")["live_model"];
    auto page = clients::http_request("GET", server->http_url("/metrics"));
    ASSERT_OK(page);
    ASSERT_EQ(page->body.find("selffeed_trainer_runs_total{outcome=\"failed\"} 1"), std::string::npos)
        << testing::read_file(server->log_path());
  }
  ASSERT_NE(live, first) << testing::read_file(server->log_path());
  EXPECT_TRUE(live.starts_with("auto-"));
  EXPECT_TRUE(admin(*server, "GET", "/admin/alerts")["alerts"].empty());
  const json registry = admin(*server, "GET", "/models");
  ASSERT_EQ(registry["models"].size(), 3u) << "toy-v1 and two auto- versions";
  for (const json& m : registry["models"]) {
    EXPECT_EQ(m["learned_from_deleted_users"], m["version"] == first) << m.dump();
  }
}

// With --trial-share a bundle the gate passes is not live yet: it answers a share of the
// users, and goes live once they have judged it no worse than the live model.
TEST(LearningLoopTest, ABundleTheGatePassesGoesOnTrialAndTheUsersPromoteIt) {
  TempDir dir;
  write_gate_file(dir.str("gate.txt"));
  auto server = testing::start_server(dir.str(), dir.str("store"),
                                      {"--admin-token", "secret", "--gate-valid", dir.str("gate.txt"),
                                       "--gate-epsilon", "0", "--trial-share", "0.5", "--trial-conversations", "3",
                                       "--trial-check-seconds", "1"});
  ASSERT_TRUE(server);
  harvest(*server, "alice");
  harvest(*server, "carol");
  train("retrain --store " + dir.str("store") + " --out " + dir.str("v2") + " --personachat " + toy_train_file() +
            " --version toy-v2",
        dir, "v2");

  const json loaded = admin(*server, "POST", "/admin/models/load", {{"bundle", dir.str("v2/bundle")}});
  EXPECT_EQ(loaded["promoted"], false) << loaded.dump();
  EXPECT_EQ(loaded["on_trial"], true);
  EXPECT_EQ(loaded["live_version"], "toy-v1");
  EXPECT_EQ(loaded["trial"], json({{"version", "toy-v2"}, {"share", 0.5}}));
  EXPECT_NE(loaded["reason"].get<std::string>().find("better overall"), std::string::npos) << loaded.dump();

  // Users who like both the same, until the judge has seen three conversations a side.
  std::map<std::string, int> conversations;
  for (int i = 0; i < 100 && (conversations["toy-v1"] < 3 || conversations["toy-v2"] < 3); ++i) {
    auto client = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(client);
    const json welcome = testing::request(**client, {{"type", "hello"}, {"user_id", "user-" + std::to_string(i)}});
    ++conversations[welcome["model_version"]];
    ASSERT_EQ(testing::request(**client, {{"type", "message"}, {"text", "what colour is your boat ?"}})["type"], "reply");
    ASSERT_EQ(testing::request(**client, {{"type", "message"}, {"text", "nice ."}})["type"], "reply");
  }
  std::string live;
  for (int i = 0; i < 100 && live != "toy-v2"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    live = admin(*server, "GET", "/models")["live_model"];
  }
  EXPECT_EQ(live, "toy-v2");
  std::map<std::string, std::string> status;
  const json registry = admin(*server, "GET", "/models");
  for (const json& m : registry["models"]) status[m["version"]] = m["status"];
  EXPECT_EQ(status["toy-v2"], "live");
  EXPECT_EQ(status["toy-v1"], "retired");
  EXPECT_EQ(registry["trial"], nullptr);
}

// The periodic trainer with trials: its bundle goes on trial, and no new retraining starts
// (it would replace the version on trial before the users judge it) until the trial ends.
TEST(LearningLoopTest, ThePeriodicTrainerWaitsForTheVerdictOfATrial) {
  TempDir dir;
  write_gate_file(dir.str("gate.txt"));
  auto server = testing::start_server(
      dir.str(), dir.str("store"),
      {"--admin-token", "secret", "--gate-valid", dir.str("gate.txt"), "--gate-epsilon", "0", "--trial-share", "0.5",
       "--retrain-every-examples", "6", "--retrain-personachat", toy_train_file(), "--retrain-dir", dir.str("runs"),
       "--retrain-args", "--holdout 0.25 --steps 300 --validate-every 50 --batch 8 --warmup 10 --lr 0.01"});
  ASSERT_TRUE(server);
  // The metrics page once `wanted` is on it (bounded wait).
  auto metrics_with = [&](const std::string& wanted) {
    std::string page;
    for (int i = 0; i < 600 && page.find(wanted) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto reply = clients::http_request("GET", server->http_url("/metrics"));
      if (reply.ok()) page = reply->body;
    }
    EXPECT_NE(page.find(wanted), std::string::npos) << page;
    return page;
  };
  harvest(*server, "alice");
  harvest(*server, "carol");  // 6 examples: the trainer fires, the gate passes, a trial starts
  metrics_with("selffeed_trainer_runs_total{outcome=\"trial\"} 1");
  ASSERT_FALSE(admin(*server, "GET", "/models")["trial"].is_null());

  harvest(*server, "dave");
  harvest(*server, "erin");  // 6 more: due, but the trial is undecided
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the trainer looks every second
  const std::string waiting = metrics_with("selffeed_trainer_state 3");
  EXPECT_NE(waiting.find("selffeed_trainer_runs_total{outcome=\"trial\"} 1"), std::string::npos) << waiting;
  EXPECT_NE(waiting.find("selffeed_trainer_runs_total{outcome=\"refused\"} 0"), std::string::npos) << waiting;
  EXPECT_NE(waiting.find("selffeed_trainer_runs_total{outcome=\"failed\"} 0"), std::string::npos) << waiting;

  // The operator ends the trial: the trainer retrains on what is waiting (whatever the gate
  // then says of it).
  ASSERT_EQ(admin(*server, "POST", "/admin/models/end-trial")["trial"], nullptr);
  bool second_run = false;
  for (int i = 0; i < 600 && !second_run; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::string page = metrics_with("selffeed_trainer_runs_total");
    second_run = page.find("selffeed_trainer_runs_total{outcome=\"trial\"} 2") != std::string::npos ||
                 page.find("selffeed_trainer_runs_total{outcome=\"promoted\"} 1") != std::string::npos ||
                 page.find("selffeed_trainer_runs_total{outcome=\"refused\"} 1") != std::string::npos ||
                 page.find("selffeed_trainer_runs_total{outcome=\"failed\"} 1") != std::string::npos;
  }
  EXPECT_TRUE(second_run);
}

}  // namespace
}  // namespace selffeed
