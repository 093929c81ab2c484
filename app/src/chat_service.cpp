#include "chat_service.h"

#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "disliked_replies.h"
#include "model_report.h"
#include "snapshots.h"
#include "selffeed/common/digest.h"
#include "selffeed/common/log.h"

namespace selffeed::app {
namespace {

using nlohmann::json;
using websocket::HttpResponse;

constexpr std::string_view kJson = "application/json";

HttpResponse json_response(int status, const json& body) {
  return {status, std::string(kJson), body.dump(2, ' ', false, json::error_handler_t::replace) + "\n"};
}

HttpResponse error_response(int status, std::string_view code, std::string_view message) {
  return json_response(status, {{"error", code}, {"message", message}});
}

// {"version": V, "share": S}, or null when there is no such model (on trial, in shadow).
json beside_json(const ChatEngine::Beside& beside) {
  if (beside.version.empty()) return nullptr;
  return {{"version", beside.version}, {"share", beside.share}};
}

// A refused model change, by what went wrong.
HttpResponse model_error_response(const Status& s) {
  const int status = s.code() == StatusCode::kNotFound             ? 404
                     : s.code() == StatusCode::kInvalidArgument    ? 400
                     : s.code() == StatusCode::kAlreadyExists      ? 409
                     : s.code() == StatusCode::kFailedPrecondition ? 409
                     : s.code() == StatusCode::kDataLoss           ? 422
                                                                   : 500;
  return error_response(status, status_code_name(s.code()), s.message());
}

// application/x-www-form-urlencoded: "+" is a space, "%XX" a byte; a malformed escape stays as it is.
std::string url_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// "a=1&b=x" -> value of `key`, URL-decoded ("" when absent).
std::string query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? "" : url_decoded(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

// The query parameter `name` as a whole decimal number into `out`, left as it is when
// absent; kInvalidArgument ("NAME must be WHAT") when it is not one.
template <typename T>
Status read_query_number(std::string_view query, std::string_view name, std::string_view what, T& out) {
  const std::string text = query_value(query, name);
  if (text.empty()) return ok_status();
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return invalid_argument_error(std::string(name) + " must be " + std::string(what));
  }
  out = value;
  return ok_status();
}

// A query flag `name`: 0 or 1, false when absent.
Result<bool> query_flag(std::string_view query, std::string_view name) {
  const std::string value = query_value(query, name);
  if (!value.empty() && value != "0" && value != "1") return invalid_argument_error(std::string(name) + " must be 0 or 1");
  return value == "1";
}

// An export's redact=1 and pseudonymise=1. Pseudonyms need the server's key: an export that
// asked for them never falls back to the real ids.
Result<ExportPrivacy> export_privacy(std::string_view query, const std::string& pseudonym_key) {
  ExportPrivacy privacy;
  SELFFEED_ASSIGN_OR_RETURN(privacy.redact, query_flag(query, "redact"));
  SELFFEED_ASSIGN_OR_RETURN(const bool pseudonymise, query_flag(query, "pseudonymise"));
  if (pseudonymise) {
    if (pseudonym_key.empty()) {
      return invalid_argument_error("pseudonymise=1 needs a server started with --pseudonym-key-file");
    }
    privacy.pseudonym_key = pseudonym_key;
  }
  return privacy;
}

// JSON Lines that `write` (a store export) produces, or the storage error it returns.
HttpResponse ndjson_response(const std::function<Result<std::uint64_t>(std::ostream&)>& write) {
  std::ostringstream out;
  auto lines = write(out);
  if (!lines.ok()) return error_response(500, "storage_error", lines.status().to_string());
  return {200, "application/x-ndjson", out.str()};
}

// Equal-time comparison, so a wrong token reveals nothing through timing.
bool same_token(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || b.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

json stats_json(const store::StoreStats& stats) {
  json examples = json::object();
  for (const auto& [kind, count] : stats.examples) examples[std::string(example_kind_name(kind))] = count;
  return {{"conversations", stats.conversations}, {"turns", stats.turns},   {"examples", examples},
          {"models", stats.models},               {"last_seq", stats.last_seq}, {"deleted_users", stats.deleted_users}};
}

// A block of judged replies: the labeling functions' coverage by name, their conflicts and
// the estimator's mean score; null when there is none yet.
json block_json(const std::optional<DriftMonitor::Block>& block, const std::vector<std::string>& functions) {
  if (!block) return nullptr;
  json coverage = json::object();
  for (std::size_t f = 0; f < functions.size() && f < block->coverage.size(); ++f) {
    coverage[functions[f]] = block->coverage[f];
  }
  return {{"replies", block->replies},       {"coverage", coverage},
          {"conflict", block->conflict},     {"scored", block->scored},
          {"mean_score", block->mean_score}};
}

json drift_json(const DriftMonitor::Report& report) {
  json alerts = json::array();
  for (const DriftMonitor::Alert& a : report.alerts) {
    alerts.push_back({{"alert", a.name},
                      {"subject", a.subject},
                      {"reference", a.reference},
                      {"now", a.now},
                      {"message", a.message},
                      {"since_ms", a.since_ms}});
  }
  auto thumbs_json = [](const DriftMonitor::Thumbs& t) {
    auto optional = [](std::optional<double> value) { return value ? json(*value) : json(nullptr); };
    return json{{"up", t.up},
                {"down", t.down},
                {"mean_score", t.mean_score},
                {"auc", optional(t.auc)},
                {"calibration_error", optional(t.calibration_error)}};
  };
  json thumbs = thumbs_json(report.thumbs);
  thumbs["requested"] = thumbs_json(report.requested_thumbs);
  return {{"alerts", alerts},
          {"blocks", report.blocks},
          {"reference", block_json(report.reference, report.functions)},
          {"score_reference", block_json(report.score_reference, report.functions)},
          {"latest", block_json(report.latest, report.functions)},
          {"thumbs", thumbs}};
}

}  // namespace

// One thread for admin requests, which read or rewrite the store and may take a while.
struct ChatService::Admin {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> tasks;
  bool stopping = false;
  // Store totals when the server started; live counters are added on top for /stats, and
  // what was deleted since taken off.
  store::StoreStats base;
  std::map<ExampleKind, std::uint64_t> harvested_at_base;  // the engine's counters then
  std::map<ExampleKind, std::uint64_t> deleted_since_base;
  std::thread thread;

  Admin() {
    thread = std::thread([this] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock lock(mutex);
          wake.wait(lock, [&] { return stopping || !tasks.empty(); });
          if (tasks.empty()) return;
          task = std::move(tasks.front());
          tasks.pop_front();
        }
        task();
      }
    });
  }
  ~Admin() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    thread.join();
  }
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex);
      tasks.push_back(std::move(task));
    }
    wake.notify_one();
  }
};

ChatService::ChatService(ChatServiceOptions options, ChatEngine& engine, ModelManager& models, store::Store& store,
                         metrics::Registry& metrics)
    : options_(std::move(options)),
      engine_(engine),
      models_(models),
      store_(store),
      metrics_(metrics),
      admin_(std::make_unique<Admin>()) {
  // Counting the store scans all of it, and the reports read a week of transcripts: not on
  // the startup path.
  admin_->post([this] {
    refresh_base_stats();
    reload_reports();
  });
  // What is gone from the store may live on in weights and pools, as after DELETE
  // /admin/users/...; the gate or a promotion may hold the models for minutes, so not on
  // the inference worker.
  engine_.on_conversation_deleted([this](const store::DeleteConversationReport& report) {
    examples_deleted(report);
    admin_->post([this] {
      reload_reports();
      auto forgetting = models_.forget_deleted_users();
      if (!forgetting.ok()) {
        SELFFEED_LOGGER("serve")->error("a deleted conversation: what the models learned from it could not be "
                                        "checked: {}", forgetting.status().to_string());
      } else {
        SELFFEED_LOGGER("serve")->info("a deleted conversation: {} live pool replies withdrawn; the live model {}",
                                       forgetting->withdrawn_replies,
                                       forgetting->live ? "learned from deleted data (alert)"
                                                        : "learned from no deleted data");
      }
    });
  });
}

void ChatService::reload_reports() {
  if (Status loaded = engine_.reported_replies().load(store_); !loaded.ok()) {
    SELFFEED_LOGGER("serve")->warn("the answers reported as inappropriate are not read again; the alerts count "
                                   "what was read before and the reports since: {}",
                                   loaded.to_string());
  }
}

void ChatService::examples_deleted(const store::DeleteUserReport& report) {
  std::lock_guard lock(admin_->mutex);
  for (const auto& [kind, n] : report.examples_by_kind) admin_->deleted_since_base[kind] += n;
}

void ChatService::refresh_base_stats() {
  auto stats = store_.stats();
  if (!stats.ok()) {
    SELFFEED_LOGGER("serve")->warn("store stats unavailable: {}", stats.status().to_string());
    return;
  }
  std::lock_guard lock(admin_->mutex);
  admin_->base = *stats;
  for (ExampleKind kind : kAllExampleKinds) admin_->harvested_at_base[kind] = engine_.harvested(kind);
  admin_->deleted_since_base.clear();
}

ChatService::~ChatService() = default;

void ChatService::on_message(const websocket::ConnectionPtr& connection, std::string text) {
  const auto received = ChatEngine::Clock::now();
  auto parsed = parse_client_message(text, options_.protocol);
  if (auto* error = std::get_if<ProtocolError>(&parsed)) {
    metrics::error_counter(metrics_, error->code).inc();
    connection->send(websocket::error_frame(error->code, error->message, error->id));
    return;
  }
  ClientMessage& message = std::get<ClientMessage>(parsed);
  const std::string id = message.id;
  if (!engine_.submit(connection, std::move(message), received)) {
    metrics::error_counter(metrics_, "overloaded").inc();
    connection->send(websocket::error_frame("overloaded", "the server is busy; please retry in a moment", id));
  }
}

void ChatService::on_close(const websocket::ConnectionPtr& connection) { engine_.connection_closed(connection); }

void ChatService::on_http(websocket::HttpRequest request, Respond respond) {
  if (request.path == "/healthz") {
    return respond(json_response(200, {{"status", "ok"}, {"model_version", engine_.model_version()}}));
  }
  if (request.path == "/metrics") {
    return respond({200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render()});
  }
  if (request.path == "/stats") return respond(public_stats());
  if (request.path == "/models") {
    return admin_->post([this, respond = std::move(respond)] { respond(model_history()); });
  }
  if (request.path.starts_with("/admin/")) return admin(request, std::move(respond));
  respond(error_response(404, "not_found", "no such endpoint: " + request.path));
}

HttpResponse ChatService::public_stats() {
  json harvested = json::object();
  std::lock_guard lock(admin_->mutex);
  for (ExampleKind kind : {ExampleKind::kHB, ExampleKind::kFB, ExampleKind::kST}) {
    harvested[std::string(example_kind_name(kind))] =
        admin_->base.examples[kind] + engine_.harvested(kind) - admin_->harvested_at_base[kind] -
        admin_->deleted_since_base[kind];
  }
  return json_response(200, {{"model_version", engine_.model_version()}, {"harvested", harvested}});
}

// The registry without paths: versions, status, metrics and the data each was trained on.
HttpResponse ChatService::model_history() {
  // The engine before the registry: the manager writes the registry first (model_manager.h).
  const std::string live_version = engine_.model_version();
  const ChatEngine::Beside trial = engine_.trial();
  const ChatEngine::Beside shadow = engine_.shadow();
  auto models = store_.list_models();
  if (!models.ok()) return error_response(500, "storage_error", models.status().to_string());
  auto forgetting = learned_from_deleted_users(store_, *models);
  if (!forgetting.ok()) return error_response(500, "storage_error", forgetting.status().to_string());
  json list = json::array();
  for (const ModelRecord& m : *models) {
    const json lineage = json::parse(m.lineage_json, nullptr, false);
    list.push_back({{"version", m.version},
                    {"status", model_status_name(m.status)},
                    {"metrics", json::parse(m.metrics_json, nullptr, false)},
                    {"data", lineage.is_object() ? lineage.value("sources", json::array()) : json::array()},
                    {"learned_from_deleted_users", forgetting->contains(m.version)},
                    {"created_ms", m.created_ms}});
  }
  return json_response(200, {{"live_model", live_version},
                             {"trial", beside_json(trial)},
                             {"shadow", beside_json(shadow)},
                             {"models", list}});
}

void ChatService::admin(const websocket::HttpRequest& request, Respond respond) {
  if (options_.admin_token.empty()) {
    return respond(error_response(403, "admin_disabled", "the admin API is off: start the server with --admin-token"));
  }
  const std::string_view bearer = "Bearer ";
  const std::string_view auth = request.authorization;
  if (!auth.starts_with(bearer) || !same_token(auth.substr(bearer.size()), options_.admin_token)) {
    return respond(error_response(401, "unauthorized", "missing or wrong bearer token"));
  }
  // Store work leaves the I/O thread.
  admin_->post([this, request, respond = std::move(respond)] {
    const std::string users_prefix = "/admin/users/";
    if (request.path == "/admin/stats" && request.method == "GET") {
      const std::string live_version = engine_.model_version();  // before the registry, as in model_history
      auto stats = store_.stats();
      auto models = store_.list_models();
      if (!stats.ok() || !models.ok()) {
        return respond(error_response(500, "storage_error", (stats.ok() ? models.status() : stats.status()).to_string()));
      }
      json model_list = json::array();
      for (const ModelRecord& m : *models) {
        model_list.push_back({{"version", m.version},
                              {"status", model_status_name(m.status)},
                              {"path", m.path},
                              {"metrics", json::parse(m.metrics_json, nullptr, false)},
                              {"created_ms", m.created_ms}});
      }
      return respond(json_response(200, {{"store", stats_json(*stats)},
                                         {"live_model", live_version},
                                         {"queue_depth", engine_.queue_depth()},
                                         {"models", model_list}}));
    }
    if (request.path == "/admin/labeling-functions" && request.method == "GET") {
      LiveLabelModel& live = engine_.label_model();
      const Result<bool> refit = query_flag(request.query, "refit");
      if (!refit.ok()) return respond(error_response(400, "invalid_argument", refit.status().message()));
      std::optional<LiveLabelModel::Fit> fit = *refit ? live.refit() : live.latest();
      if (!fit) return respond(json_response(200, {{"fitted", false}}));
      json functions = json::array();
      for (const LiveLabelModel::FunctionFit& f : fit->functions) {
        functions.push_back({{"name", f.name}, {"coverage", f.coverage}, {"accuracy", f.accuracy}});
      }
      return respond(json_response(200, {{"fitted", true},
                                         {"replies", fit->replies},
                                         {"seen", fit->seen},
                                         {"prior", fit->prior},
                                         {"degenerate", fit->degenerate},
                                         {"functions", functions}}));
    }
    if (request.path == "/admin/alerts" && request.method == "GET") {
      json alerts = drift_json(engine_.drift().report());
      if (const std::int64_t since = models_.live_tainted_since_ms(); since != 0) {
        alerts["alerts"].push_back(
            {{"alert", "live_model_learned_from_deleted_users"},
             {"subject", engine_.model_version()},
             {"reference", nullptr},
             {"now", nullptr},
             {"message", "the live model learned from the examples of a deleted user: its weights carry them (its "
                         "pool's copies of their replies are withdrawn); retrain without them (selffeed retrain "
                         "starts from a version that did not) and promote the result"},
             {"since_ms", since}});
      }
      if (options_.reported_alert_users > 0) {
        auto withdrawn = withdrawn_reply_digests(store_);
        if (!withdrawn.ok()) return respond(error_response(500, "storage_error", withdrawn.status().to_string()));
        for (const auto& [text, users] : engine_.reported_replies().reported_by(options_.reported_alert_users)) {
          if (withdrawn->contains(sha256_hex(text))) continue;
          alerts["alerts"].push_back(
              {{"alert", "reply_reported_inappropriate"},
               {"subject", text},
               {"reference", nullptr},
               {"now", users},
               {"message", std::to_string(users) + " users reported this answer as rude or inappropriate: review it "
                                                   "(GET /admin/replies/disliked?reason=inappropriate) and withdraw "
                                                   "it if so (POST /admin/replies/withdraw)"},
               {"since_ms", nullptr}});
        }
      }
      return respond(json_response(200, alerts));
    }
    if (request.path == "/admin/alerts/rebase" && request.method == "POST") {
      engine_.drift().rebase();
      SELFFEED_LOGGER("serve")->info("admin: drift reference rebased; the next block of judged replies is the new one");
      return respond(json_response(200, {{"rebased", true}}));
    }
    if (request.path == "/admin/export" && request.method == "GET") {
      const Result<ExportPrivacy> privacy = export_privacy(request.query, options_.pseudonym_key);
      if (!privacy.ok()) return respond(error_response(400, "invalid_argument", privacy.status().message()));
      store::ExportFilter filter;
      if (const std::string kind = query_value(request.query, "kind"); !kind.empty()) {
        filter.kind = parse_example_kind(kind);
        if (!filter.kind) return respond(error_response(400, "invalid_argument", "kind must be HH, HB, FB or ST"));
      }
      if (Status read = read_query_number(request.query, "after", "a sequence number", filter.after_seq); !read.ok()) {
        return respond(error_response(400, "invalid_argument", read.message()));
      }
      return respond(
          ndjson_response([&](std::ostream& out) { return store_.export_examples(out, filter, export_rewrite(*privacy)); }));
    }
    if (request.path == "/admin/transcripts" && request.method == "GET") {
      const Result<ExportPrivacy> privacy = export_privacy(request.query, options_.pseudonym_key);
      if (!privacy.ok()) return respond(error_response(400, "invalid_argument", privacy.status().message()));
      store::TranscriptFilter filter;
      if (const std::string user = query_value(request.query, "user"); !user.empty()) filter.user_id = user;
      if (Status read = read_query_number(request.query, "updated_after_ms", "a time in ms", filter.updated_after_ms);
          !read.ok()) {
        return respond(error_response(400, "invalid_argument", read.message()));
      }
      return respond(ndjson_response(
          [&](std::ostream& out) { return store_.export_transcripts(out, filter, export_rewrite(*privacy)); }));
    }
    if (request.path == "/admin/pairs" && request.method == "GET") {
      const Result<ExportPrivacy> privacy = export_privacy(request.query, options_.pseudonym_key);
      if (!privacy.ok()) return respond(error_response(400, "invalid_argument", privacy.status().message()));
      store::TranscriptFilter filter;
      if (const std::string user = query_value(request.query, "user"); !user.empty()) filter.user_id = user;
      return respond(ndjson_response(
          [&](std::ostream& out) { return export_preference_pairs(store_, filter, export_rewrite(*privacy), out); }));
    }
    if (request.path.starts_with(users_prefix) && request.method == "DELETE") {
      const std::string segment = request.path.substr(users_prefix.size());
      if (segment.empty() || segment.find('/') != std::string::npos) {
        return respond(error_response(400, "invalid_argument", "expected /admin/users/<user id, URL-encoded>"));
      }
      const std::string user = url_decoded(segment);
      auto report = store_.delete_user(user);
      if (!report.ok()) return respond(error_response(500, "storage_error", report.status().to_string()));
      examples_deleted(*report);
      reload_reports();
      // What is gone from the store may live on in weights: the versions that learned from it.
      auto models = store_.list_models();
      if (!models.ok()) return respond(error_response(500, "storage_error", models.status().to_string()));
      const std::vector<std::string> trained = versions_trained_on(*models, report->example_seqs);
      std::string versions;
      for (const std::string& v : trained) versions += (versions.empty() ? "" : ", ") + v;
      SELFFEED_LOGGER("serve")->info("deleted user '{}': {} conversations, {} turns, {} examples; learned from by: {}",
                                     user, report->conversations, report->turns, report->examples,
                                     versions.empty() ? "no version" : versions);
      // The deletion is durable; what still serves their words stops where it can.
      auto forgetting = models_.forget_deleted_users();
      if (!forgetting.ok()) {
        return respond(error_response(500, "storage_error",
                                      "the user's data is deleted, but what the models learned from it could not be "
                                      "checked: " + forgetting.status().to_string()));
      }
      auto or_null = [](const std::string& version) { return version.empty() ? json(nullptr) : json(version); };
      return respond(json_response(200, {{"user_id", user},
                                         {"conversations", report->conversations},
                                         {"turns", report->turns},
                                         {"examples", report->examples},
                                         {"models_trained_on_them", trained},
                                         {"live_model_trained_on_them", forgetting->live},
                                         {"live_replies_withdrawn", forgetting->withdrawn_replies},
                                         {"trial_ended", or_null(forgetting->trial_ended)},
                                         {"shadow_ended", or_null(forgetting->shadow_ended)}}));
    }
    if (request.path == "/admin/models/report" && request.method == "GET") {
      ReportOptions options;
      if (Status read = read_query_number(request.query, "since_ms", "a time in ms", options.since_ms); !read.ok()) {
        return respond(error_response(400, "invalid_argument", read.message()));
      }
      auto report = report_models(store_, options);
      if (!report.ok()) return respond(error_response(500, "storage_error", report.status().to_string()));
      return respond(json_response(200, to_json(*report)));
    }
    if (request.path == "/admin/trust" && request.method == "GET") {
      const std::string asked = query_value(request.query, "version");
      auto report = trust_report(store_, asked.empty() ? engine_.model_version() : asked);
      if (!report.ok()) return respond(model_error_response(report.status()));
      return respond(json_response(200, *report));
    }
    if (request.path == "/admin/replies/disliked" && request.method == "GET") {
      DislikedFilter filter;
      Status read = read_query_number(request.query, "since_ms", "a time in ms", filter.since_ms);
      if (read.ok()) read = read_query_number(request.query, "min_users", "a count", filter.min_users);
      if (!read.ok()) return respond(error_response(400, "invalid_argument", read.message()));
      if (const std::string reason = query_value(request.query, "reason"); !reason.empty()) {
        filter.reason = parse_dislike_reason(reason);
        if (!filter.reason) return respond(error_response(400, "invalid_argument", "unknown reason '" + reason + "'"));
      }
      auto replies = disliked_replies(store_, filter);
      if (!replies.ok()) return respond(error_response(500, "storage_error", replies.status().to_string()));
      return respond(json_response(200, to_json(*replies)));
    }
    if ((request.path == "/admin/replies/withdraw" || request.path == "/admin/replies/restore") &&
        request.method == "POST") {
      const json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
      if (!body.is_object() || !body.contains("text") || !body["text"].is_string() ||
          body["text"].get_ref<const std::string&>().empty()) {
        return respond(
            error_response(400, "invalid_argument", "expected {\"text\": \"<the reply, as the bot said it>\"}"));
      }
      const bool withdraw = request.path.ends_with("/withdraw");
      auto done = models_.set_reply_withdrawn(body["text"].get<std::string>(), withdraw);
      if (!done.ok()) return respond(error_response(500, "storage_error", done.status().to_string()));
      return respond(json_response(200, {{"withdrawn", withdraw},
                                         {"changed", done->changed},
                                         {"in_live_pool", done->in_live_pool},
                                         {"live_replies_withdrawn", done->live_replies_withdrawn}}));
    }
    if (request.path.starts_with("/admin/models/") && request.method == "POST") return respond(model_admin(request));
    respond(error_response(404, "not_found", "no such admin endpoint: " + request.method + " " + request.path));
  });
}

// POST /admin/models/shadow {"bundle": DIR, "share": S}, /admin/models/end-shadow.
HttpResponse ChatService::shadow_admin(const std::string& action, const json& body) {
  if (action == "end-shadow") {
    auto version = models_.end_shadow();
    if (!version.ok()) return model_error_response(version.status());
    return json_response(200, {{"version", *version}, {"shadow", nullptr}, {"live_version", engine_.model_version()}});
  }
  if (!body.contains("bundle") || !body["bundle"].is_string() || !body.contains("share") || !body["share"].is_number()) {
    return error_response(400, "invalid_argument",
                          "expected {\"bundle\": \"<bundle directory>\", \"share\": <0..1, of the conversations>}");
  }
  auto version = models_.shadow(body["bundle"].get<std::string>(), body["share"].get<double>());
  if (!version.ok()) return model_error_response(version.status());
  return json_response(
      200, {{"version", *version}, {"shadow", beside_json(engine_.shadow())}, {"live_version", engine_.model_version()}});
}

// POST /admin/models/load {"bundle": DIR}, /admin/models/promote {"version": V},
// /admin/models/rollback.
HttpResponse ChatService::model_admin(const websocket::HttpRequest& request) {
  const json body = request.body.empty() ? json::object() : json::parse(request.body, nullptr, false);
  if (!body.is_object()) return error_response(400, "invalid_json", "the body must be a JSON object");
  const std::string action = request.path.substr(std::string_view("/admin/models/").size());
  Result<ModelChange> change = invalid_argument_error("unknown model action '" + action + "'");
  if (action == "load") {
    if (!body.contains("bundle") || !body["bundle"].is_string()) {
      return error_response(400, "invalid_argument", "expected {\"bundle\": \"<bundle directory>\"}");
    }
    change = models_.consider(body["bundle"].get<std::string>());
  } else if (action == "promote") {
    if (!body.contains("version") || !body["version"].is_string()) {
      return error_response(400, "invalid_argument", "expected {\"version\": \"<registered version>\"}");
    }
    if (body.contains("force") && !body["force"].is_boolean()) {
      return error_response(400, "invalid_argument", "\"force\" must be true or false");
    }
    change = models_.promote(body["version"].get<std::string>(), body.value("force", false));
  } else if (action == "rollback") {
    change = models_.rollback();
  } else if (action == "trial") {
    if (!body.contains("bundle") || !body["bundle"].is_string() || !body.contains("share") ||
        !body["share"].is_number()) {
      return error_response(400, "invalid_argument",
                            "expected {\"bundle\": \"<bundle directory>\", \"share\": <0..1, of the users>}");
    }
    change = models_.trial(body["bundle"].get<std::string>(), body["share"].get<double>());
  } else if (action == "end-trial") {
    change = models_.end_trial();
  } else if (action == "shadow" || action == "end-shadow") {
    return shadow_admin(action, body);
  }
  if (!change.ok()) return model_error_response(change.status());
  const std::string outcome = action == "end-trial" ? "trial_ended"
                              : change->on_trial      ? "trial"
                              : change->promoted      ? "live"
                                                      : "refused";
  metrics::Registry& r = metrics_;
  r.counter("selffeed_model_decisions_total", "Model changes asked for over the admin API, by outcome.",
            {{"outcome", outcome}})
      .inc();
  const ChatEngine::Beside trial = engine_.trial();
  return json_response(200, {{"version", change->version},
                             {"promoted", change->promoted},
                             {"reason", change->reason},
                             {"candidate", gate_scores_json(change->candidate_scores)},
                             {"live", gate_scores_json(change->live_scores)},
                             {"live_version", change->live_version},
                             {"on_trial", change->on_trial},
                             {"trial", beside_json(trial)}});
}

}  // namespace selffeed::app
