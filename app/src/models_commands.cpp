// `selffeed models list|load|promote|rollback|trial|end-trial|shadow|end-shadow|report`:
// the model registry, and the models answering beside the live one.
// `list` and `report` read a store directly (read-only, so they work beside a running
// server) or ask a server; changes go through the running server's admin API, which owns
// the store and the live model.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "model_report.h"
#include "selffeed/clients/clients.h"
#include "selffeed/store/store.h"

namespace selffeed::app {
namespace {

using nlohmann::json;

struct ModelsFlags {
  std::string server = "http://127.0.0.1:8080";
  std::string token;
  std::string store;
  std::string argument;  // bundle directory (load, trial) or version (promote)
  bool force = false;    // promote
  double share = 0.5;    // trial
  double shadow_share = 1.0;
  ReportOptions report;
  bool json_output = false;
};

int print_reply(const Result<clients::HttpReply>& reply) {
  if (!reply.ok()) return fail(reply.status());
  std::printf("%s", reply->body.c_str());
  return reply->status == 200 ? 0 : 1;
}

int list(const ModelsFlags& f) {
  if (f.store.empty()) return print_reply(clients::http_request("GET", f.server + "/models"));
  auto store = store::Store::open({.path = f.store, .mode = store::OpenMode::kReadOnly});
  if (!store.ok()) return fail(store.status());
  auto models = (*store)->list_models();
  if (!models.ok()) return fail(models.status());
  auto forgetting = learned_from_deleted_users(**store, *models);
  if (!forgetting.ok()) return fail(forgetting.status());
  std::printf("| version | status | PersonaChat hits@1 | gate | trial | learned from deleted users | path |\n"
              "|---|---|---|---|---|---|---|\n");
  for (const ModelRecord& m : *models) {
    const json metrics = json::parse(m.metrics_json, nullptr, false);
    auto reason_of = [&](const char* step, const char* field) {
      return metrics.is_object() && metrics.contains(step) && metrics[step].is_object()
                 ? metrics[step].value(field, std::string())
                 : std::string();
    };
    const json hits = metrics.is_object() ? metrics.value("personachat_hits@1", json(nullptr)) : json(nullptr);
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", m.version.c_str(),
                std::string(model_status_name(m.status)).c_str(),
                hits.is_number() ? std::to_string(hits.get<double>()).c_str() : "-",
                reason_of("gate", "reason").c_str(), reason_of("trial", "verdict").c_str(),
                forgetting->contains(m.version) ? "yes" : "no", m.path.c_str());
  }
  return 0;
}

int report(const ModelsFlags& f) {
  if (f.store.empty()) {
    if (f.report.version.empty() && f.report.against.empty()) {
      return print_reply(clients::http_request("GET",
                                               f.server + "/admin/models/report?since_ms=" +
                                                   std::to_string(f.report.since_ms),
                                               "", "Bearer " + f.token, std::chrono::minutes(10)));
    }
    return fail(invalid_argument_error("--version and --against need --store"));
  }
  auto store = store::Store::open({.path = f.store, .mode = store::OpenMode::kReadOnly});
  if (!store.ok()) return fail(store.status());
  auto result = report_models(**store, f.report);
  if (!result.ok()) return fail(result.status());
  if (f.json_output) {
    std::printf("%s\n", to_json(*result).dump(2).c_str());
  } else {
    std::printf("%s", to_markdown(*result).c_str());
  }
  return 0;
}

int change(const ModelsFlags& f, const std::string& action, const json& body) {
  return print_reply(clients::http_request("POST", f.server + "/admin/models/" + action, body.dump(),
                                           "Bearer " + f.token, std::chrono::minutes(10)));
}

}  // namespace

void add_models_commands(CLI::App& app, Action& action) {
  auto f = std::make_shared<ModelsFlags>();
  CLI::App* models = app.add_subcommand("models", "list the model registry; load (through the gate), promote, roll back");
  models->require_subcommand(1);
  auto server_flags = [f](CLI::App* cmd) {
    cmd->add_option("--server", f->server, "the running server")->capture_default_str();
    cmd->add_option("--token", f->token, "its admin token")->envname("SELFFEED_ADMIN_TOKEN");
  };
  CLI::App* list_cmd = models->add_subcommand("list", "versions, status, gate numbers");
  server_flags(list_cmd);
  list_cmd->add_option("--store", f->store, "read this store's registry directly instead");
  list_cmd->callback([&action, f] { action = [f] { return list(*f); }; });

  CLI::App* load = models->add_subcommand("load", "gate a new bundle against the live model; swap it in if it passes");
  server_flags(load);
  load->add_option("bundle", f->argument, "bundle directory (as the server sees it)")->required();
  load->callback([&action, f] { action = [f] { return change(*f, "load", {{"bundle", f->argument}}); }; });

  CLI::App* promote = models->add_subcommand("promote", "make a registered version live, without the gate");
  server_flags(promote);
  promote->add_option("version", f->argument)->required();
  promote->add_flag("--force", f->force, "also a version that learned from the examples of a deleted user");
  promote->callback([&action, f] {
    action = [f] { return change(*f, "promote", {{"version", f->argument}, {"force", f->force}}); };
  });

  CLI::App* rollback = models->add_subcommand(
      "rollback", "return to the most recently retired version that did not learn from a deleted user's examples");
  server_flags(rollback);
  rollback->callback([&action, f] { action = [f] { return change(*f, "rollback", json::object()); }; });

  CLI::App* trial = models->add_subcommand(
      "trial", "serve a bundle to a share of the users beside the live model (an A/B trial), without the gate");
  server_flags(trial);
  trial->add_option("bundle", f->argument, "bundle directory (as the server sees it)")->required();
  trial->add_option("--share", f->share, "share of the users it answers, drawn by user id")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  trial->callback([&action, f] {
    action = [f] { return change(*f, "trial", {{"bundle", f->argument}, {"share", f->share}}); };
  });

  CLI::App* end_trial = models->add_subcommand("end-trial", "everyone back on the live model");
  server_flags(end_trial);
  end_trial->callback([&action, f] { action = [f] { return change(*f, "end-trial", json::object()); }; });

  CLI::App* shadow = models->add_subcommand(
      "shadow", "let a bundle also answer a share of the conversations beside the live model, unseen; "
                "`models report` compares the two on the same turns");
  server_flags(shadow);
  shadow->add_option("bundle", f->argument, "bundle directory (as the server sees it)")->required();
  shadow->add_option("--share", f->shadow_share, "share of the conversations it sees, drawn by conversation id")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  shadow->callback([&action, f] {
    action = [f] { return change(*f, "shadow", {{"bundle", f->argument}, {"share", f->shadow_share}}); };
  });

  CLI::App* end_shadow = models->add_subcommand("end-shadow", "stop the shadow");
  server_flags(end_shadow);
  end_shadow->callback([&action, f] { action = [f] { return change(*f, "end-shadow", json::object()); }; });

  CLI::App* report_cmd = models->add_subcommand(
      "report", "how each version did with users: asks, complaints, thumbs, with 95% intervals; a trial "
      "against live; a shadow's answers beside the live ones");
  server_flags(report_cmd);
  report_cmd->add_option("--store", f->store, "read this store directly instead");
  report_cmd->add_option("--since-ms", f->report.since_ms, "only turns from this time on (Unix ms)");
  report_cmd->add_option("--version", f->report.version, "compare this version (default: the one on trial)");
  report_cmd->add_option("--against", f->report.against, "with this one (default: the live one)");
  report_cmd->add_flag("--json", f->json_output, "JSON instead of Markdown tables");
  report_cmd->callback([&action, f] { action = [f] { return report(*f); }; });
}

}  // namespace selffeed::app
