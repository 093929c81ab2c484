// An A/B trial through a real server: a second bundle answers a share of the users beside
// the live one, each user keeps their model across reconnects and a restart, the report
// counts what each version's users did, and promotion ends the trial.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "selffeed/common/context.h"
#include "selffeed/store/store.h"
#include "server_process.h"

namespace selffeed {
namespace {

using nlohmann::json;
using testing::TempDir;

json http(const clients::LocalServer& server, const std::string& method, const std::string& path,
          const json& body = json::object()) {
  auto reply = clients::http_request(method, server.http_url(path), body.dump(), "Bearer secret", std::chrono::minutes(2));
  EXPECT_TRUE(reply.ok()) << reply.status().to_string();
  if (!reply.ok()) return {};
  json parsed = json::parse(reply->body, nullptr, false);
  if (parsed.is_object()) parsed["http_status"] = reply->status;
  return parsed;
}

// A copy of the toy bundle that calls itself `version`: the same model under another name.
std::string copy_bundle(const TempDir& dir, const std::string& version) {
  const std::string to = dir.str(version);
  std::filesystem::copy(testing::toy_bundle(), to, std::filesystem::copy_options::recursive);
  json info = json::parse(testing::read_file(to + "/bundle.json"));
  info["version"] = version;
  std::ofstream(to + "/bundle.json") << info.dump(2);
  return to;
}

struct Visit {
  std::string welcomed_by;  // the version in the welcome
  std::string answered_by;  // and in the reply
};

// `user` says hello and two messages; with `complain`, the second is a complaint the
// regexes catch, which the bot answers with a feedback request.
Visit visit(const clients::LocalServer& server, const std::string& user, bool complain = false) {
  auto client = clients::WsClient::connect(server.ws_url());
  EXPECT_TRUE(client.ok());
  if (!client.ok()) return {};
  Visit v;
  v.welcomed_by = testing::request(**client, {{"type", "hello"}, {"user_id", user}}).value("model_version", "");
  for (const std::string text : {"what colour is your car ?", complain ? "what ? you are not making sense" : "nice ."}) {
    const json reply = testing::request(**client, {{"type", "message"}, {"text", text}});
    EXPECT_EQ(reply["type"], "reply") << reply.dump();
    v.answered_by = reply.value("model_version", "");
  }
  return v;
}

// The entries of a list of versions (a report's or the registry's) by version.
std::map<std::string, json> by_version(const json& list) {
  std::map<std::string, json> out;
  for (const json& v : list) out[v["version"]] = v;
  return out;
}

TEST(ModelTrialTest, AShareOfUsersGetsTheTrialModelTheReportCountsEachAndPromotionEndsIt) {
  TempDir dir;
  const std::string store = dir.str("store");
  const std::string candidate = copy_bundle(dir, "toy-v1b");
  auto server = testing::start_server(dir.str(), store, {"--admin-token", "secret"});
  ASSERT_TRUE(server);

  // Refused: a share out of (0, 1), the live version, ending a trial that is not running.
  EXPECT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", candidate}, {"share", 1.5}})["http_status"], 400);
  EXPECT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", candidate}})["http_status"], 400);
  EXPECT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", testing::toy_bundle()}, {"share", 0.5}})["http_status"],
            409);
  EXPECT_EQ(http(*server, "POST", "/admin/models/end-trial")["http_status"], 404);
  EXPECT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", dir.str("nowhere")}, {"share", 0.5}})["http_status"],
            404);

  const json started = http(*server, "POST", "/admin/models/trial", {{"bundle", candidate}, {"share", 0.5}});
  ASSERT_EQ(started["http_status"], 200) << started.dump();
  EXPECT_EQ(started["trial"], json({{"version", "toy-v1b"}, {"share", 0.5}}));
  EXPECT_EQ(started["live_version"], "toy-v1");

  // Forty users: each is answered by one version, in the welcome and the reply alike, and
  // both versions answer some.
  std::map<std::string, std::string> model_of;
  std::map<std::string, int> users_of;
  for (int i = 0; i < 40; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const Visit v = visit(*server, user, /*complain=*/i % 4 == 0);
    EXPECT_EQ(v.welcomed_by, v.answered_by) << user;
    model_of[user] = v.answered_by;
    ++users_of[v.answered_by];
  }
  // Half and half, give or take what a fair coin gives (12..28 of 40: 99%); the draw is
  // deterministic, and an unmixed hash of such similar ids put 30 on one side.
  EXPECT_EQ(users_of.size(), 2u);
  EXPECT_GE(users_of["toy-v1b"], 12);
  EXPECT_GE(users_of["toy-v1"], 12);
  // They keep their model when they come back.
  for (int i = 0; i < 40; i += 3) {
    const std::string user = "user-" + std::to_string(i);
    EXPECT_EQ(visit(*server, user).answered_by, model_of[user]) << user;
  }

  json models = http(*server, "GET", "/models");
  EXPECT_EQ(models["trial"], json({{"version", "toy-v1b"}, {"share", 0.5}}));
  std::map<std::string, std::string> status;
  for (const json& m : models["models"]) status[m["version"]] = m["status"];
  EXPECT_EQ(status["toy-v1b"], "trial");
  EXPECT_EQ(status["toy-v1"], "live");
  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("selffeed_trial_share{version=\"toy-v1b\"} 0.5"), std::string::npos);

  // The report counts each version's users: two bot turns per visit, answers but for the
  // feedback request after each complaint (the regexes judge, so every complaint is caught).
  std::map<std::string, int> bot_turns, answers, complaints;
  for (int i = 0; i < 40; ++i) {
    const std::string& version = model_of["user-" + std::to_string(i)];
    const int visits = i % 3 == 0 ? 2 : 1;
    bot_turns[version] += 2 * visits;
    answers[version] += 2 * visits;
    if (i % 4 == 0) {
      ++complaints[version];
      --answers[version];
    }
  }
  // A trial user rates two answers: up for one their next message liked, down for one
  // they complained about (the regexes judge those messages 1 and 0).
  std::string rater;
  for (const auto& [user, version] : model_of) {
    if (version == "toy-v1b") rater = user;
  }
  {
    auto client = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(client);
    ASSERT_EQ(testing::request(**client, {{"type", "hello"}, {"user_id", rater}})["model_version"], "toy-v1b");
    const json liked = testing::request(**client, {{"type", "message"}, {"text", "where is your kite ?"}});
    const json disliked = testing::request(**client, {{"type", "message"}, {"text", "nice ."}});
    ASSERT_EQ(testing::request(**client, {{"type", "message"}, {"text", "what ? you are not making sense"}})["type"],
              "reply");
    ASSERT_EQ(testing::request(**client, {{"type", "rate"}, {"turn", liked["turn"]}, {"value", "up"}})["type"], "rated");
    ASSERT_EQ(testing::request(**client, {{"type", "rate"}, {"turn", disliked["turn"]}, {"value", "down"}})["type"],
              "rated");
    bot_turns["toy-v1b"] += 3;
    answers["toy-v1b"] += 2;
    ++complaints["toy-v1b"];
  }
  const json report = http(*server, "GET", "/admin/models/report");
  ASSERT_EQ(report["http_status"], 200) << report.dump();
  auto versions = by_version(report["versions"]);
  for (const std::string version : {"toy-v1", "toy-v1b"}) {
    const json& v = versions[version];
    EXPECT_EQ(v["answers"], answers[version]) << version;
    EXPECT_EQ(v["asks"]["count"], complaints[version]) << version;
    EXPECT_EQ(v["asks"]["of"], bot_turns[version]) << version;
    EXPECT_EQ(v["thumbs_down_per_answer"]["of"], answers[version]) << version;
    EXPECT_EQ(v["complaints"]["count"], complaints[version]) << version;
    EXPECT_LE(v["asks"]["low"].get<double>(), v["asks"]["value"].get<double>());
    EXPECT_GE(v["asks"]["high"].get<double>(), v["asks"]["value"].get<double>());
  }
  EXPECT_EQ(versions["toy-v1b"]["thumbs_down_per_answer"]["count"], 1);
  EXPECT_EQ(versions["toy-v1b"]["thumbs_up"], 1);
  EXPECT_EQ(versions["toy-v1"]["thumbs_down_per_answer"]["count"], 0);
  // The estimates of the replies to the rated answers agree with the thumbs.
  EXPECT_EQ(versions["toy-v1b"]["thumbs_with_estimate"], 2);
  EXPECT_EQ(versions["toy-v1b"]["estimator_auc_vs_thumbs"], 1.0);
  EXPECT_TRUE(versions["toy-v1"]["estimator_auc_vs_thumbs"].is_null());
  EXPECT_EQ(report["comparison"]["version"], "toy-v1b");
  EXPECT_EQ(report["comparison"]["against"], "toy-v1");

  // The same report from the store directly, beside the running server.
  const std::string line = std::string(SELFFEED_BINARY) + " --log-level warn models report --json --store " + store +
                           " > " + dir.str("report.json") + " 2> " + dir.str("report.log");
  ASSERT_EQ(std::system(line.c_str()), 0) << testing::read_file(dir.str("report.log"));
  const json from_store = json::parse(testing::read_file(dir.str("report.json")));
  EXPECT_EQ(by_version(from_store["versions"])["toy-v1b"]["answers"], answers["toy-v1b"]);

  // A restart resumes the trial: the users keep their models.
  ASSERT_EQ(server->stop(SIGTERM), 0);
  server = testing::start_server(dir.str(), store, {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  EXPECT_EQ(http(*server, "GET", "/models")["trial"], json({{"version", "toy-v1b"}, {"share", 0.5}}));
  for (int i = 1; i < 40; i += 5) {
    const std::string user = "user-" + std::to_string(i);
    EXPECT_EQ(visit(*server, user).answered_by, model_of[user]) << user;
  }

  // Ending the trial puts everyone on the live model; trying again and promoting the
  // version on trial makes it everyone's and ends the trial too.
  EXPECT_EQ(http(*server, "POST", "/admin/models/end-trial")["trial"], nullptr);
  EXPECT_EQ(visit(*server, rater).answered_by, "toy-v1");
  ASSERT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", candidate}, {"share", 0.5}})["http_status"], 200);
  EXPECT_EQ(visit(*server, rater).answered_by, "toy-v1b");
  const json promoted = http(*server, "POST", "/admin/models/promote", {{"version", "toy-v1b"}});
  EXPECT_EQ(promoted["live_version"], "toy-v1b") << promoted.dump();
  EXPECT_EQ(promoted["trial"], nullptr);
  for (const auto& [user, version] : model_of) {
    if (version == "toy-v1") {
      EXPECT_EQ(visit(*server, user).answered_by, "toy-v1b") << user;
      break;
    }
  }
  status.clear();
  models = http(*server, "GET", "/models");
  for (const json& m : models["models"]) status[m["version"]] = m["status"];
  EXPECT_EQ(status["toy-v1b"], "live");
  EXPECT_EQ(status["toy-v1"], "retired");
}

// A new user's conversation: two messages. On `unhappy_with`'s side the second is a
// complaint (which the bot answers by asking for feedback) and the first answer gets a
// thumbs down. The version that answered.
std::string chat(const clients::LocalServer& server, const std::string& user, const std::string& unhappy_with) {
  auto client = clients::WsClient::connect(server.ws_url());
  EXPECT_TRUE(client.ok());
  if (!client.ok()) return {};
  const std::string version =
      testing::request(**client, {{"type", "hello"}, {"user_id", user}}).value("model_version", "");
  const json first = testing::request(**client, {{"type", "message"}, {"text", "what colour is your car ?"}});
  EXPECT_EQ(first["type"], "reply") << first.dump();
  const bool unhappy = version == unhappy_with;
  if (unhappy) {
    EXPECT_EQ(testing::request(**client, {{"type", "rate"}, {"turn", first["turn"]}, {"value", "down"}})["type"], "rated");
  }
  const json second = testing::request(
      **client, {{"type", "message"}, {"text", unhappy ? "what ? you are not making sense" : "nice ."}});
  EXPECT_EQ(second["type"], "reply") << second.dump();
  return version;
}

// Users chat, `per_side` new ones on each side at least, until the judge has decided the
// trial (bounded); the /models page after the verdict.
json chat_until_decided(const clients::LocalServer& server, const std::string& prefix, int per_side,
                        const std::string& unhappy_with = "") {
  std::map<std::string, int> conversations;
  for (int i = 0; i < 200; ++i) {
    ++conversations[chat(server, prefix + std::to_string(i), unhappy_with)];
    if (conversations.size() == 2 && conversations.begin()->second >= per_side &&
        conversations.rbegin()->second >= per_side) {
      break;
    }
  }
  for (int i = 0; i < 100; ++i) {
    const json models = http(server, "GET", "/models");
    if (models["trial"].is_null()) return models;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "the trial was not decided";
  return {};
}

TEST(ModelTrialTest, TheUsersRejectAVersionTheyLikeLessAndPromoteOneTheyLikeAsMuch) {
  TempDir dir;
  const std::string candidate = copy_bundle(dir, "toy-v1b");
  auto server = testing::start_server(dir.str(), dir.str("store"),
                                      {"--admin-token", "secret", "--trial-conversations", "6",
                                       "--trial-check-seconds", "1"});
  ASSERT_TRUE(server);

  // Its users complain and give thumbs down; the live model's users do not.
  ASSERT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", candidate}, {"share", 0.5}})["http_status"], 200);
  json models = chat_until_decided(*server, "first-", 6, "toy-v1b");
  EXPECT_EQ(models["live_model"], "toy-v1");
  json trial = by_version(models["models"])["toy-v1b"];
  EXPECT_EQ(trial["status"], "rejected");
  const std::string verdict = trial["metrics"]["trial"]["verdict"];
  EXPECT_TRUE(verdict.starts_with("worse with users than toy-v1: asks +0.500")) << verdict;
  EXPECT_NE(verdict.find("thumbs down per answer"), std::string::npos) << verdict;
  EXPECT_EQ(chat(*server, "first-0", ""), "toy-v1") << "everyone is back on the live model";

  // Tried again, with users who like both the same: it goes live. Only the turns since
  // this trial began count.
  ASSERT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", candidate}, {"share", 0.5}})["http_status"], 200);
  models = chat_until_decided(*server, "second-", 6);
  EXPECT_EQ(models["live_model"], "toy-v1b");
  trial = by_version(models["models"])["toy-v1b"];
  EXPECT_EQ(trial["status"], "live");
  EXPECT_EQ(trial["metrics"]["trial"]["verdict"], "not worse with users than toy-v1");
  EXPECT_EQ(by_version(models["models"])["toy-v1"]["status"], "retired");
  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_trial_verdicts_total{outcome=\"rejected\"} 1"), std::string::npos);
  EXPECT_NE(metrics->body.find("selffeed_trial_verdicts_total{outcome=\"promoted\"} 1"), std::string::npos);
}

// The toy bundle's model with another candidate pool: four of its eight colour answers
// become "my <object> is the best .", so it answers some turns otherwise. Its directory.
std::string shadow_bundle(const TempDir& dir) {
  std::ifstream in(testing::toy_bundle() + "/../../train.txt");
  std::ofstream pool(dir.str("pool.txt"));
  for (std::string line; std::getline(in, line);) {
    for (const std::string object : {"car", "house", "bike", "boat"}) {
      const std::string answer = "\tmy " + object + " is ";
      if (const auto at = line.find(answer); at != std::string::npos) line = line.substr(0, at) + answer + "the best .";
    }
    pool << line << "\n";
  }
  pool.close();
  const std::string command = std::string(SELFFEED_BINARY) + " --log-level warn train --init-bundle " +
                              testing::toy_bundle() + " --steps 0 --holdout 0.25 --personachat " + dir.str("pool.txt") +
                              " --version toy-shadow --out " + dir.str("shadow") + " > " + dir.str("shadow.json") +
                              " 2> " + dir.str("shadow.log");
  EXPECT_EQ(std::system(command.c_str()), 0) << testing::read_file(dir.str("shadow.log"));
  return dir.str("shadow/bundle");
}

// `user` asks about `object`; with `complain`, complains about the answer and corrects it
// with `correction` (a feedback example), else likes it (an imitation example). The live
// answers they were given.
std::vector<std::string> ask(const clients::LocalServer& server, const std::string& user, const std::string& object,
                             bool complain, const std::string& correction = "") {
  std::vector<std::string> answers;
  auto client = clients::WsClient::connect(server.ws_url());
  EXPECT_TRUE(client.ok());
  if (!client.ok()) return answers;
  EXPECT_EQ(testing::request(**client, {{"type", "hello"}, {"user_id", user}})["type"], "welcome");
  const json first =
      testing::request(**client, {{"type", "message"}, {"text", "hello ! what colour is your " + object + " ?"}});
  EXPECT_EQ(first["kind"], "answer") << first.dump();
  answers.push_back(first.value("text", ""));
  const json second =
      testing::request(**client, {{"type", "message"}, {"text", complain ? "what ? you are not making sense" : "nice ."}});
  EXPECT_EQ(second["kind"], complain ? "feedback_request" : "answer") << second.dump();
  if (complain) {
    EXPECT_EQ(testing::request(**client, {{"type", "message"}, {"text", correction}})["type"], "reply");
  } else {
    answers.push_back(second.value("text", ""));
  }
  return answers;
}

// Each conversation's bot answers in the store as (live answer, shadow reply or "").
std::map<std::string, std::vector<std::pair<std::string, std::string>>> answers_in(const std::string& store_dir) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
  auto store = store::Store::open({.path = store_dir, .mode = store::OpenMode::kReadOnly});
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  if (!store.ok()) return out;
  const Status scanned = (*store)->scan_transcripts({}, [&](const Conversation& c, const std::vector<Turn>& turns) {
    for (const Turn& t : turns) {
      if (t.speaker == Speaker::kBot && t.phase == Phase::kNormal) {
        out[c.user_id].emplace_back(t.text, t.shadow ? t.shadow->text : "");
        if (t.shadow) {
          EXPECT_EQ(t.shadow->version, "toy-shadow");
        }
      } else if (t.speaker == Speaker::kBot) {
        EXPECT_FALSE(t.shadow) << "only answers have a shadow: " << t.text;
      }
    }
    return true;
  });
  EXPECT_TRUE(scanned.ok()) << scanned.to_string();
  return out;
}

TEST(ModelShadowTest, AShadowAnswersUnseenBesideTheLiveModelAndTheReportComparesThem) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  const std::string shadow = shadow_bundle(dir);
  auto server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
  ASSERT_TRUE(server);

  // Refused: a share out of (0, 1], the live version, a missing bundle, ending no shadow.
  EXPECT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", shadow}, {"share", 0}})["http_status"], 400);
  EXPECT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", shadow}})["http_status"], 400);
  EXPECT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", testing::toy_bundle()}, {"share", 1}})["http_status"],
            409);
  EXPECT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", dir.str("nowhere")}, {"share", 1}})["http_status"],
            404);
  EXPECT_EQ(http(*server, "POST", "/admin/models/end-shadow")["http_status"], 404);

  const json started = http(*server, "POST", "/admin/models/shadow", {{"bundle", shadow}, {"share", 1}});
  ASSERT_EQ(started["http_status"], 200) << started.dump();
  EXPECT_EQ(started["shadow"], json({{"version", "toy-shadow"}, {"share", 1.0}}));
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], json({{"version", "toy-shadow"}, {"share", 1.0}}));

  // Eight users: half like their answers, half correct them with what the shadow's pool holds.
  const std::vector<std::string> objects = {"car", "house", "bike", "boat", "kite", "lamp", "door", "shoe"};
  std::map<std::string, std::vector<std::string>> seen;  // the answers each user was given
  int corrections = 0;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const bool complain = i % 2 == 0;
    const std::string user = "user-" + std::to_string(i);
    seen[user] = ask(*server, user, objects[i], complain, "my " + objects[i] + " is the best .");
    corrections += complain;
  }
  const json report = http(*server, "GET", "/admin/models/report");
  ASSERT_EQ(report["http_status"], 200) << report.dump();
  ASSERT_EQ(report["shadows"].size(), 1u) << report.dump();
  const json& r = report["shadows"][0];

  // The users saw the live answers only; the store keeps the shadow's reply beside each.
  auto stored = answers_in(store_dir);
  std::uint64_t answers = 0, same = 0, differ = 0;
  for (const auto& [user, given] : seen) {
    ASSERT_EQ(stored[user].size(), given.size()) << user;
    for (std::size_t k = 0; k < given.size(); ++k) {
      EXPECT_EQ(stored[user][k].first, given[k]) << user;
      ASSERT_FALSE(stored[user][k].second.empty()) << "share 1: the shadow saw every answer";
      ++answers;
      (stored[user][k].first == stored[user][k].second ? same : differ) += 1;
    }
  }
  EXPECT_GT(differ, 0u) << "the other pool answers some turns otherwise";
  EXPECT_EQ(r["version"], "toy-shadow");
  EXPECT_EQ(r["beside"], "toy-v1");
  EXPECT_EQ(r["conversations"], objects.size());
  EXPECT_EQ(r["answers"], answers);
  EXPECT_EQ(r["same"]["count"], same);
  EXPECT_EQ(r["corrected"], corrections);
  // Each corrected answer (a complaining user's first) and the shadow's reply beside it,
  // against the correction.
  double live_f1 = 0, shadow_f1 = 0;
  for (std::size_t i = 0; i < objects.size(); i += 2) {
    const auto& [live_answer, shadow_reply] = stored["user-" + std::to_string(i)][0];
    live_f1 += token_f1(live_answer, "my " + objects[i] + " is the best .") / corrections;
    shadow_f1 += token_f1(shadow_reply, "my " + objects[i] + " is the best .") / corrections;
  }
  EXPECT_NEAR(r["live_f1_with_correction"].get<double>(), live_f1, 1e-12);
  EXPECT_NEAR(r["shadow_f1_with_correction"].get<double>(), shadow_f1, 1e-12);
  EXPECT_EQ(r["same_when_liked"]["of"], objects.size() / 2) << "the regexes like every \"nice .\"";
  const std::string metrics = clients::http_request("GET", server->http_url("/metrics"))->body;
  EXPECT_NE(metrics.find("selffeed_shadow_share{version=\"toy-shadow\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("selffeed_shadow_answers_total{version=\"toy-shadow\",agrees=\"false\"} " +
                         std::to_string(differ)),
            std::string::npos)
      << metrics;

  // A restart resumes it.
  ASSERT_EQ(server->stop(SIGTERM), 0);
  server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], json({{"version", "toy-shadow"}, {"share", 1.0}}));

  // Beside a trial, only the live model's users have a shadow; at share 0.5 about half of
  // the conversations do, each conversation all or none of its answers.
  ASSERT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", shadow}, {"share", 0.5}})["http_status"], 200);
  ASSERT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", copy_bundle(dir, "toy-v1b")}, {"share", 0.5}})
                ["http_status"],
            200);
  std::map<std::string, std::string> model_of;
  for (int i = 0; i < 24; ++i) {
    const std::string user = "half-" + std::to_string(i);
    model_of[user] = visit(*server, user).answered_by;
  }
  ASSERT_EQ(http(*server, "POST", "/admin/models/end-shadow")["shadow"], nullptr);
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], nullptr);
  ASSERT_EQ(server->stop(SIGTERM), 0);
  server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], nullptr) << "an ended shadow stays ended";
  visit(*server, "after-the-shadow");
  stored = answers_in(store_dir);
  int live_with = 0, live_without = 0;
  for (const auto& [user, version] : model_of) {
    const auto& given = stored[user];
    ASSERT_EQ(given.size(), 2u) << user;
    const bool with = !given[0].second.empty();
    EXPECT_EQ(with, !given[1].second.empty()) << "a conversation is drawn whole: " << user;
    if (version == "toy-v1b") {
      EXPECT_FALSE(with) << "a trial user's answers are not compared: " << user;
    }
    if (version == "toy-v1") ++(with ? live_with : live_without);
  }
  EXPECT_GT(live_with, 0);
  EXPECT_GT(live_without, 0);
  for (const auto& [answer, shadow_reply] : stored["after-the-shadow"]) EXPECT_EQ(shadow_reply, "") << answer;

  // A version in shadow that goes live is no longer in shadow: it would compare itself.
  ASSERT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", shadow}, {"share", 1}})["http_status"], 200);
  ASSERT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", shadow}, {"share", 0.5}})["http_status"], 200);
  ASSERT_EQ(http(*server, "POST", "/admin/models/promote", {{"version", "toy-shadow"}})["live_version"], "toy-shadow");
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], nullptr);
  ASSERT_EQ(server->stop(SIGTERM), 0);
  server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], nullptr) << "nor after a restart";

  // A shadow whose bundle is gone by the restart is dropped: the server serves without it.
  const std::string gone = dir.str("gone");
  std::filesystem::copy(shadow, gone, std::filesystem::copy_options::recursive);
  ASSERT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", gone}, {"share", 1}})["http_status"], 200);
  ASSERT_EQ(server->stop(SIGTERM), 0);
  std::filesystem::remove_all(gone);
  server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], nullptr);
  EXPECT_EQ(visit(*server, "after-the-bundle-went").answered_by, "toy-v1");
  EXPECT_NE(testing::read_file(server->log_path()).find("is not resumed"), std::string::npos);

  // So is a saved shadow the server cannot read.
  ASSERT_EQ(server->stop(SIGTERM), 0);
  {
    auto store = store::Store::open({.path = store_dir});
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    ASSERT_TRUE((*store)->set_setting("shadow", R"({"bundle": 7, "share": "all"})").ok());
  }
  server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  EXPECT_EQ(http(*server, "GET", "/models")["shadow"], nullptr);
  EXPECT_NE(testing::read_file(server->log_path()).find("unreadable setting"), std::string::npos);
}

// A reply the operator withdraws is offered by no version that serves: neither the live
// one, nor the one on trial, nor the one in shadow (here all three the same model).
TEST(ModelTrialTest, AWithdrawnReplyIsOfferedByNoVersionThatServes) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  const std::string candidate = copy_bundle(dir, "toy-v1b");
  const std::string shadow = copy_bundle(dir, "toy-shadow");
  auto server = testing::start_server(dir.str(), store_dir, {"--admin-token", "secret"});
  ASSERT_TRUE(server);
  ASSERT_EQ(http(*server, "POST", "/admin/models/trial", {{"bundle", candidate}, {"share", 0.5}})["http_status"], 200);
  ASSERT_EQ(http(*server, "POST", "/admin/models/shadow", {{"bundle", shadow}, {"share", 1}})["http_status"], 200);
  // The version that answers a new user, and its first answer.
  auto first_answer = [&](const std::string& user) -> std::pair<std::string, std::string> {
    auto client = clients::WsClient::connect(server->ws_url());
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return {};
    EXPECT_EQ(testing::request(**client, {{"type", "hello"}, {"user_id", user}})["type"], "welcome");
    const json reply = testing::request(**client, {{"type", "message"}, {"text", "what colour is your car ?"}});
    return {reply.value("model_version", ""), reply.value("text", "")};
  };
  const std::string withdrawn = first_answer("user-0").second;
  ASSERT_FALSE(withdrawn.empty());
  const json done = http(*server, "POST", "/admin/replies/withdraw", {{"text", withdrawn}});
  ASSERT_EQ(done["http_status"], 200) << done.dump();
  std::map<std::string, std::string> version_of;
  std::set<std::string> versions;
  for (int i = 1; i <= 16; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const auto [version, text] = first_answer(user);
    version_of[user] = version;
    versions.insert(version);
    EXPECT_NE(text, withdrawn) << version;
  }
  EXPECT_EQ(versions, (std::set<std::string>{"toy-v1", "toy-v1b"}));
  // The shadow answers beside the live version's users.
  for (const auto& [user, answers] : answers_in(store_dir)) {
    if (user == "user-0" || version_of[user] != "toy-v1") continue;
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_FALSE(answers[0].second.empty()) << "the shadow answered beside " << user;
    EXPECT_NE(answers[0].second, withdrawn) << "the shadow";
  }
}

}  // namespace
}  // namespace selffeed
