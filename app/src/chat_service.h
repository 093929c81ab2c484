// What `selffeed serve` plugs into the websocket server: chat messages go to the
// ChatEngine after parsing; HTTP requests are /healthz, /metrics, /stats and the admin API
// (bearer token), including model changes (ModelManager). Admin work that touches the
// store or loads models runs on its own thread, never on an I/O thread.
#pragma once

#include <memory>
#include <string>

#include "chat_engine.h"
#include "model_manager.h"
#include "selffeed/common/metrics.h"
#include "selffeed/store/store.h"
#include "selffeed/websocket/server.h"

namespace selffeed::app {

struct ChatServiceOptions {
  ProtocolLimits protocol;
  // Bearer token for /admin/*; empty disables the admin API.
  std::string admin_token;
  // The key of /admin/export's and /admin/transcripts' pseudonymise=1; empty: refused.
  std::string pseudonym_key;
  // /admin/alerts lists an answer this many users reported as inappropriate, until it is
  // withdrawn; 0: never.
  std::size_t reported_alert_users = 3;
};

class ChatService final : public websocket::Handler {
 public:
  ChatService(ChatServiceOptions options, ChatEngine& engine, ModelManager& models, store::Store& store,
              metrics::Registry& metrics);
  ~ChatService() override;

  void on_message(const websocket::ConnectionPtr& connection, std::string text) override;
  void on_close(const websocket::ConnectionPtr& connection) override;
  void on_http(websocket::HttpRequest request, Respond respond) override;

 private:
  struct Admin;
  websocket::HttpResponse public_stats();
  void refresh_base_stats();
  // Takes a deletion's examples off /stats (no scan of the whole store).
  void examples_deleted(const store::DeleteUserReport& report);
  // At start, and after a deletion (the deleted reports leave the alerts): ReportedReplies::load.
  void reload_reports();
  websocket::HttpResponse model_history();
  void admin(const websocket::HttpRequest& request, Respond respond);
  websocket::HttpResponse model_admin(const websocket::HttpRequest& request);
  websocket::HttpResponse shadow_admin(const std::string& action, const nlohmann::json& body);

  const ChatServiceOptions options_;
  ChatEngine& engine_;
  ModelManager& models_;
  store::Store& store_;
  metrics::Registry& metrics_;
  std::unique_ptr<Admin> admin_;
};

}  // namespace selffeed::app
