// `selffeed chat ws://host:port/ws`: a line-oriented chat over the protocol in
// docs/protocol.md, showing the bot's feedback requests and what it kept.
#include <iostream>

#include <nlohmann/json.hpp>

#include "selffeed/clients/clients.h"
#include "selffeed/common/records.h"

namespace selffeed::clients {
namespace {

using nlohmann::json;
constexpr auto kReplyTimeout = std::chrono::seconds(30);

// Reads frames until one answers our request (anything but an unsolicited frame).
Result<json> await_answer(WsClient& client) {
  for (;;) {
    SELFFEED_ASSIGN_OR_RETURN(std::string frame, client.read(kReplyTimeout));
    json message = json::parse(frame, nullptr, /*allow_exceptions=*/false);
    if (message.is_object()) return message;
  }
}

void show(const json& m, std::ostream& out) {
  const std::string type = m.value("type", "");
  if (type == "reply") {
    const std::string kind = m.value("kind", "answer");
    if (kind == "feedback_request") {
      out << "\n  >>> the bot asks for feedback <<<\n";
    }
    out << "bot: " << m.value("text", "") << '\n';
    for (const auto& kept : m.value("harvested", json::array())) {
      const std::string k = kept.get<std::string>();
      out << "  (kept your message as a " << (k == "FB" ? "feedback" : k == "HB" ? "dialogue" : k)
          << " example)\n";
    }
    if (m.contains("rating_request") && m["rating_request"].is_number_integer()) {
      out << "  (the bot asks how its answer before this one was: /good or /bad rates it)\n";
    }
  } else if (type == "conversation_deleted") {
    out << "  (conversation deleted: " << m.value("turns", 0) << " turns and " << m.value("examples", 0)
        << " training examples are gone; starting a new one)\n";
  } else if (type == "rated") {
    const json& reason = m.value("reason", json());
    out << "  (rating of turn " << m.value("turn", -1) << " stored"
        << (reason.is_string() ? ", because " + reason.get<std::string>() : "") << ")\n";
  } else if (type == "suggested") {
    out << "  (what the bot could have said at turn " << m.value("turn", -1) << " stored)\n";
  } else if (type == "reset_done") {
    out << "  (new topic)\n";
  } else if (type == "error") {
    out << "  error [" << m.value("code", "") << "]: " << m.value("message", "") << '\n';
  }
}

// Says hello for a new conversation and shows the welcome; false when there is none.
bool start_conversation(WsClient& ws, const TerminalChatOptions& options, std::ostream& out) {
  json hello = {{"type", "hello"}, {"learn", options.learn}};
  if (!options.user_id.empty()) hello["user_id"] = options.user_id;
  if (Status s = ws.send_text(hello.dump()); !s.ok()) {
    out << s.message() << '\n';
    return false;
  }
  auto welcome = await_answer(ws);
  if (!welcome.ok() || welcome->value("type", "") != "welcome") {
    out << "no welcome from the server: " << (welcome.ok() ? welcome->dump() : welcome.status().message()) << '\n';
    return false;
  }
  out << "connected: conversation " << welcome->value("conversation_id", "") << ", model "
      << welcome->value("model_version", "") << "\n";
  if (!welcome->value("learn", true)) out << "learning off: nothing you say here is kept for training\n";
  if (const auto persona = welcome->find("persona"); persona != welcome->end() && persona->is_array() && !persona->empty()) {
    out << "the bot:";
    for (const auto& fact : *persona) out << ' ' << (fact.is_string() ? fact.get<std::string>() : fact.dump());
    out << '\n';
  }
  return true;
}

}  // namespace

int run_terminal_chat(std::string_view url, const TerminalChatOptions& options, std::istream& in, std::ostream& out) {
  auto client = WsClient::connect(url);
  if (!client.ok()) {
    out << "cannot connect: " << client.status().message() << '\n';
    return 1;
  }
  WsClient& ws = **client;
  if (!start_conversation(ws, options, out)) return 1;
  out << "type a message; /good or /bad [" << dislike_reason_names("|")
      << "] rates the last reply (or the one the bot asked about), /instead TEXT says what it could have said, "
         "/reset changes topic, /delete deletes this conversation, /quit ends\n";

  int rate_turn = -1;  // what /good, /bad and /instead are about
  constexpr std::string_view kInstead = "/instead ";
  constexpr std::string_view kBadBecause = "/bad ";  // and a reason; the server names the valid ones
  std::string line;
  while (out << "you: " << std::flush, std::getline(in, line)) {
    json request;
    if (line == "/quit") break;
    if (line.empty()) continue;
    if (line == "/good" || line == "/bad" || line.starts_with(kBadBecause)) {
      if (rate_turn < 0) {
        out << "  nothing to rate yet\n";
        continue;
      }
      request = {{"type", "rate"}, {"turn", rate_turn}, {"value", line == "/good" ? "up" : "down"}};
      if (line.starts_with(kBadBecause)) request["reason"] = line.substr(kBadBecause.size());
    } else if (line.starts_with(kInstead)) {
      if (rate_turn < 0) {
        out << "  nothing to suggest for yet\n";
        continue;
      }
      request = {{"type", "suggest"}, {"turn", rate_turn}, {"text", line.substr(kInstead.size())}};
    } else if (line == "/reset") {
      request = {{"type", "reset"}};
    } else if (line == "/delete") {
      request = {{"type", "delete_conversation"}};
    } else {
      request = {{"type", "message"}, {"text", line}};
    }
    if (Status s = ws.send_text(request.dump()); !s.ok()) {
      out << "connection lost: " << s.message() << '\n';
      return 1;
    }
    auto answer = await_answer(ws);
    if (!answer.ok()) {
      out << "connection lost: " << answer.status().message() << '\n';
      return 1;
    }
    show(*answer, out);
    const std::string type = answer->value("type", "");
    if (type == "reply") {
      const json& asked = answer->value("rating_request", json());
      rate_turn = asked.is_number_integer() ? asked.get<int>() : answer->value("turn", -1);
    } else if (type == "conversation_deleted") {
      rate_turn = -1;
      if (!start_conversation(ws, options, out)) return 1;
    }
  }
  ws.close();
  return 0;
}

}  // namespace selffeed::clients
