// `selffeed simulate`: the user simulator (clients/simulator.h) against a running server,
// replaying Synthetic-Persona-Chat dialogues and reacting with real ConvAI2 complaints.
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "selffeed/clients/simulator.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::app {
namespace {

using nlohmann::json;

// RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes.
std::vector<std::vector<std::string>> read_csv(std::istream& in) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (char c; in.get(c);) {
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          field += '"';
          in.get();
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      rows.back().push_back(std::move(field));
      field.clear();
      rows.emplace_back();
    } else if (c != '\r') {
      field += c;
    }
  }
  if (!field.empty() || !rows.back().empty()) rows.back().push_back(std::move(field));
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

// Synthetic-Persona-Chat: the "Best Generated Conversation" column, "User 1: ..." lines;
// consecutive lines of one speaker are joined. The partner's persona is that of the speaker
// of the second line ("user 1 personas" or "user 2 personas", one fact per line).
Result<std::vector<clients::SimulatedDialogue>> load_synthetic_persona_chat(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read '" + path + "'");
  const auto rows = read_csv(in);
  if (rows.empty() || rows[0].size() < 3) return invalid_argument_error("'" + path + "' is not Synthetic-Persona-Chat CSV");
  std::vector<clients::SimulatedDialogue> out;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() < 3) continue;
    std::istringstream conversation(rows[r][2]);
    clients::SimulatedDialogue d;
    std::string last_speaker;
    for (std::string line; std::getline(conversation, line);) {
      const auto colon = line.find(':');
      if (colon == std::string::npos || !line.starts_with("User ")) continue;
      const std::string speaker = line.substr(0, colon);
      std::string text = line.substr(colon + 1);
      text.erase(0, text.find_first_not_of(' '));
      if (text.empty()) continue;
      if (speaker == last_speaker && !d.lines.empty()) {
        d.lines.back() += " " + text;
      } else {
        d.lines.push_back(text);
      }
      if (d.lines.size() == 2 && speaker != last_speaker) {
        std::istringstream persona(rows[r][speaker == "User 1" ? 0 : 1]);
        for (std::string fact; std::getline(persona, fact);) {
          if (!fact.empty() && fact.back() == '\r') fact.pop_back();
          if (!fact.empty()) d.partner_persona.push_back(std::move(fact));
        }
      }
      last_speaker = speaker;
    }
    if (d.lines.size() >= 2) out.push_back(std::move(d));
  }
  return out;
}

// Short human replies to bot turns the human rated 0, from the train split only (the
// valid and test splits are the satisfaction evaluation's).
Result<std::vector<std::string>> load_complaints(const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (const std::string& file : files) {
    SELFFEED_ASSIGN_OR_RETURN(auto examples, trainer::load_convai2_satisfaction(file, /*labelled_only=*/true));
    for (const auto& e : examples) {
      if (e.label != 0 || e.split != trainer::Split::kTrain) continue;
      const std::string& reply = e.input.user_reply;
      if (reply.empty() || reply.size() > 60) continue;
      out.push_back(reply);
    }
  }
  if (out.empty()) return invalid_argument_error("no low-rated ConvAI2 replies found for the simulator's complaints");
  return out;
}

struct SimulateFlags {
  std::string url = "ws://127.0.0.1:8080/ws";
  std::string dialogues;
  std::vector<std::string> complaints;
  std::string json_out;
  clients::SimulatorOptions options;
};

int simulate(SimulateFlags& f) {
  auto dialogues = load_synthetic_persona_chat(f.dialogues);
  if (!dialogues.ok()) return fail(dialogues.status());
  auto complaints = load_complaints(f.complaints);
  if (!complaints.ok()) return fail(complaints.status());
  f.options.url = f.url;
  f.options.dialogues = std::move(*dialogues);
  f.options.complaints = std::move(*complaints);
  auto report = clients::run_simulation(f.options);
  if (!report.ok()) return fail(report.status());
  const json out = {{"conversations", report->conversations},
                    {"user_messages", report->user_messages},
                    {"poor_replies", report->poor_replies},
                    {"answers", report->answers},
                    {"repeated_answers", report->repeated_answers},
                    {"repeated_questions", report->repeated_questions},
                    {"greetings_mid_conversation", report->greetings_mid_conversation},
                    {"renamed_bot", report->renamed_bot},
                    {"changed_occupation", report->changed_occupation},
                    {"complaints", report->complaints},
                    {"feedback_requests", report->feedback_requests},
                    {"thumbs_down", report->thumbs_down},
                    {"thumbs_up", report->thumbs_up},
                    {"rating_requests", report->rating_requests},
                    {"suggestions", report->suggestions},
                    {"junk_taught", report->junk_taught},
                    {"repetitive_reasons", report->repetitive_reasons},
                    {"off_topic_reasons", report->off_topic_reasons},
                    {"harvested_hb", report->harvested_hb},
                    {"harvested_fb", report->harvested_fb},
                    {"mean_reply_f1", report->mean_reply_f1},
                    {"rate_limited", report->rate_limited},
                    {"errors", report->errors}};
  std::printf("%s\n", out.dump(2).c_str());
  if (Status s = write_report(f.json_out, out.dump(2)); !s.ok()) return fail(s);
  return report->errors == 0 ? 0 : 1;
}

}  // namespace

void add_simulate_commands(CLI::App& app, Action& action) {
  auto f = std::make_shared<SimulateFlags>();
  CLI::App* cmd = app.add_subcommand("simulate", "simulated users chat with a running server (clients/simulator.h)");
  cmd->add_option("url", f->url, "the server's chat endpoint")->capture_default_str();
  cmd->add_option("--dialogues", f->dialogues, "Synthetic-Persona-Chat CSV to replay")->required();
  cmd->add_option("--complaints", f->complaints, "ConvAI2 rated JSON files (low-rated replies of the train split)")
      ->required();
  cmd->add_option("--conversations", f->options.conversations)->capture_default_str();
  cmd->add_option("--offset", f->options.first_dialogue, "first dialogue used (rounds take disjoint slices)")
      ->capture_default_str();
  cmd->add_option("--lines", f->options.max_user_lines, "user lines per conversation")->capture_default_str();
  cmd->add_option("--poor-f1", f->options.poor_reply_f1, "token F1 below which a reply is poor")->capture_default_str();
  cmd->add_option("--thumbs-rate", f->options.thumbs_rate, "share of poor replies that get a thumbs-down")
      ->capture_default_str();
  cmd->add_option("--thumbs-up-rate", f->options.thumbs_up_rate, "share of the other answers that get a thumbs-up")
      ->capture_default_str();
  cmd->add_option("--suggest-rate", f->options.suggest_rate,
                  "share of the thumbs-downs after which the user also says what the bot could have said (the "
                  "partner's line)")
      ->capture_default_str();
  cmd->add_option("--reason-rate", f->options.reason_rate,
                  "share of the thumbs-downs given with a reason: repetitive when the answer repeats the bot, "
                  "else off_topic")
      ->capture_default_str();
  cmd->add_option("--users", f->options.users, "concurrent simulated users")->capture_default_str();
  cmd->add_option("--user-ids", f->options.user_ids, "distinct user ids the conversations are spread over "
                                                       "(default: 4 per concurrent user)");
  cmd->add_option("--troll-user-ids", f->options.troll_user_ids,
                  "the first this many user ids are trolls (<prefix>-troll-<n>): they answer feedback requests and "
                  "suggest with a line of another dialogue")
      ->capture_default_str();
  cmd->add_option("--seed", f->options.seed)->capture_default_str();
  cmd->add_option("--user-prefix", f->options.user_prefix)->capture_default_str();
  cmd->add_option("--conversation-prefix", f->options.conversation_prefix,
                  "name the conversation of dialogue n PREFIX-n (default: the server names them), so that a "
                  "rerun against a fresh store is the same run");
  cmd->add_option("--json", f->json_out, "also write the report here");
  cmd->add_flag("--partner-persona", f->options.partner_persona,
                "give the bot, in hello, the persona of the dialogue's speaker it stands in for");
  cmd->callback([&action, f] { action = [f] { return simulate(*f); }; });
}

}  // namespace selffeed::app
