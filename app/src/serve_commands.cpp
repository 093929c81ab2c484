// `selffeed serve` (the chat server) and `selffeed chat` (the terminal client).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <pthread.h>
#include <sys/resource.h>

#include "chat_engine.h"
#include "chat_service.h"
#include "commands.h"
#include "periodic_trainer.h"
#include "snapshots.h"
#include "trial_judge.h"
#include "selffeed/clients/clients.h"
#include "selffeed/common/log.h"
#include "selffeed/common/utf8.h"
#include "selffeed/dialogue/dialogue.h"
#include "selffeed/store/store.h"
#include "selffeed/websocket/server.h"

namespace selffeed::app {
namespace {

struct ServeFlags {
  std::string bundle = "models/demo";
  std::string store = "./selffeed-data";
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string port_file;
  std::string web_root = std::string(SELFFEED_SOURCE_DIR) + "/clients/web";
  std::string satisfaction = "auto";
  double threshold = -1;
  std::uint32_t max_feedback_requests = 0;
  std::uint32_t max_rating_requests = 1;
  double rating_request_share = 0.1;
  std::uint32_t max_feedback_requests_per_user = 0;
  std::size_t label_model_window = 10000;
  DriftMonitor::Options drift;
  std::string labeling_functions;
  int io_threads = 1;
  int torch_threads = 1;
  std::size_t max_batch = 32;
  std::size_t max_queue = 4096;
  std::string admin_token;
  std::string pseudonym_key_file;
  std::size_t max_text_bytes = 2000;
  websocket::Limits limits;
  std::vector<std::string> trusted_proxies;
  std::size_t max_examples_per_address_per_hour = 0;
  int idle_timeout_s = 600;
  int send_timeout_ms = 10000;
  int shutdown_grace_ms = 5000;
  std::string gate_valid;
  std::uint64_t min_free_disk_mb = 256;
  std::vector<std::string> satisfaction_labelled;
  std::size_t retrain_every_examples = 0;
  int retrain_every_minutes = 0;
  std::string retrain_personachat;
  std::string retrain_dir = "./runs/periodic";
  std::string retrain_args;
  std::size_t gate_examples = 1000;
  double gate_epsilon = 0.01;
  double trial_share = 0;
  std::uint64_t trial_conversations = 0;
  int trial_check_seconds = 60;
  std::string persona;
  std::size_t reported_alert_users = 3;
};

// A persona file: one fact about the bot per line ("i have two dogs ."), blank lines skipped.
Result<std::vector<std::string>> load_persona(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found_error("cannot read the persona file '" + path + "'");
  std::vector<std::string> persona;
  const ProtocolLimits limits;  // the same as a hello's persona
  std::size_t line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    const std::string where = "persona file '" + path + "', line " + std::to_string(line_number);
    if (!is_valid_utf8(line)) return invalid_argument_error(where + ": not valid UTF-8");
    const std::size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos) continue;
    line = line.substr(begin, line.find_last_not_of(" \t\r") + 1 - begin);
    if (line.size() > limits.max_persona_sentence_bytes) {
      return invalid_argument_error(where + ": longer than " + std::to_string(limits.max_persona_sentence_bytes) + " bytes");
    }
    persona.push_back(std::move(line));
  }
  if (persona.empty()) return invalid_argument_error("the persona file '" + path + "' has no sentence");
  if (persona.size() > limits.max_persona_sentences) {
    return invalid_argument_error("the persona file '" + path + "' has more than " +
                                  std::to_string(limits.max_persona_sentences) + " sentences");
  }
  return persona;
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// Every connection, HTTP or chat, holds a file descriptor and the store holds more. The
// usual soft limit (1024) is below --max-connections plus those; the hard limit rarely is.
void raise_open_file_limit(std::size_t max_connections, spdlog::logger* log) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) getrlimit(RLIMIT_NOFILE, &limit);
  }
  constexpr std::size_t kForTheStoreAndHttp = 512;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < max_connections + kForTheStoreAndHttp) {
    log->warn("at most {} open files (ulimit -n): fewer than --max-connections ({}) plus {} for the store and "
              "HTTP; connections beyond that wait until others close",
              limit.rlim_cur, max_connections, kForTheStoreAndHttp);
  }
}

int serve(const ServeFlags& f) {
  // SIGTERM and SIGINT are taken by sigwait() below; every thread started from here on
  // inherits the blocked mask, so no I/O or worker thread is interrupted by them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto* log = SELFFEED_LOGGER("serve");
  raise_open_file_limit(f.limits.max_connections, log);
  dialogue::configure_threads({.intra_op = f.torch_threads});
  const ScorerKind scorer = f.satisfaction == "model" ? ScorerKind::kModel
                            : f.satisfaction == "regex" ? ScorerKind::kRegex
                                                        : ScorerKind::kAuto;
  auto models = load_live_models(f.bundle, scorer);
  if (!models.ok()) {
    return fail(models.status().with_context("cannot load the model bundle (train one with scripts/train_demo_model.sh)"));
  }
  auto store = store::Store::open({.path = f.store, .min_free_bytes = f.min_free_disk_mb << 20});
  if (!store.ok()) return fail(store.status());

  metrics::Registry registry;
  ChatEngineOptions engine_options;
  if (f.threshold >= 0) engine_options.satisfaction_threshold = f.threshold;
  engine_options.policy.max_feedback_requests = f.max_feedback_requests;
  engine_options.policy.max_rating_requests = f.max_rating_requests;
  engine_options.rating_request_share = f.rating_request_share;
  engine_options.max_feedback_requests_per_user = f.max_feedback_requests_per_user;
  engine_options.label_model_window = f.label_model_window;
  engine_options.drift = f.drift;
  auto labeling_functions = satisfaction::labeling_functions_with(f.labeling_functions);
  if (!labeling_functions.ok()) return fail(labeling_functions.status());
  engine_options.labeling_functions = std::move(*labeling_functions);
  engine_options.max_batch = std::max<std::size_t>(1, f.max_batch);
  engine_options.max_queue = f.max_queue;
  engine_options.max_examples_per_address_per_hour = f.max_examples_per_address_per_hour;
  if (!f.persona.empty()) {
    auto persona = load_persona(f.persona);
    if (!persona.ok()) return fail(persona.status());
    engine_options.persona = std::move(persona).value();
    if (models->get()->dialogue->config().persona_weight == 0) {
      log->warn("the bundle's persona weight is 0: the persona only names the bot (fit it with `selffeed fit-lexical`)");
    }
  }
  ChatEngine engine(engine_options, **store, *models, registry);

  ModelManager model_manager({.scorer = scorer, .gate_file = f.gate_valid, .gate_examples = f.gate_examples,
                              .epsilon = f.gate_epsilon, .gate_satisfaction_files = f.satisfaction_labelled,
                              .trial_share = f.trial_share, .metrics = &registry},
                             **store, engine, *models);
  if (Status s = model_manager.register_live(); !s.ok()) return fail(s);

  ChatServiceOptions service_options;
  service_options.protocol.max_text_bytes = f.max_text_bytes;
  service_options.admin_token = f.admin_token;
  service_options.reported_alert_users = f.reported_alert_users;
  if (!f.pseudonym_key_file.empty()) {
    auto key = read_pseudonym_key(f.pseudonym_key_file);
    if (!key.ok()) return fail(key.status());
    service_options.pseudonym_key = std::move(key).value();
  }
  auto service = std::make_shared<ChatService>(service_options, engine, model_manager, **store, registry);

  websocket::ServerOptions server_options;
  server_options.address = f.host;
  server_options.port = static_cast<std::uint16_t>(f.port);
  server_options.io_threads = f.io_threads;
  std::error_code ec;
  if (std::filesystem::is_directory(f.web_root, ec)) {
    server_options.static_root = f.web_root;
  } else {
    log->warn("no web client at {}; serving the chat endpoint only", f.web_root);
  }
  server_options.limits = f.limits;
  server_options.trusted_proxies = f.trusted_proxies;
  server_options.limits.idle_timeout = std::chrono::seconds(f.idle_timeout_s);
  server_options.limits.send_timeout = std::chrono::milliseconds(f.send_timeout_ms);
  server_options.metrics = &registry;
  std::unique_ptr<PeriodicTrainer> periodic;
  if (f.retrain_every_examples > 0 || f.retrain_every_minutes > 0) {
    if (f.retrain_personachat.empty()) {
      return fail(invalid_argument_error("the periodic trainer needs --retrain-personachat (the HH training file)"));
    }
    std::vector<std::string> retrain_args = split_words(f.retrain_args);
    for (const std::string& file : f.satisfaction_labelled) {
      retrain_args.insert(retrain_args.end(), {"--satisfaction-labelled", file});
    }
    // The functions that vote on live replies also weigh the weak labels (with a pool).
    if (!f.labeling_functions.empty()) retrain_args.insert(retrain_args.end(), {"--labeling-functions", f.labeling_functions});
    std::error_code self_ec;
    periodic = std::make_unique<PeriodicTrainer>(
        PeriodicTrainerOptions{f.retrain_every_examples, std::chrono::minutes(f.retrain_every_minutes),
                               std::filesystem::read_symlink("/proc/self/exe", self_ec).string(),
                               std::filesystem::absolute(f.store, self_ec).string(),
                               std::filesystem::absolute(f.retrain_dir, self_ec).string(), f.retrain_personachat,
                               std::move(retrain_args)},
        engine, model_manager, registry);
  }

  std::unique_ptr<TrialJudge> trial_judge;
  if (f.trial_conversations > 0) {
    trial_judge = std::make_unique<TrialJudge>(
        TrialJudgeOptions{f.trial_conversations, std::chrono::seconds(std::max(1, f.trial_check_seconds))},
        model_manager, registry);
  }

  auto server = websocket::Server::start(server_options, service);
  if (!server.ok()) return fail(server.status());

  const std::uint16_t port = (*server)->port();
  if (!f.port_file.empty()) {
    // Written to a temporary name and renamed, so a reader never sees half a number.
    const std::string tmp = f.port_file + ".tmp";
    std::ofstream(tmp) << port << '\n';
    std::filesystem::rename(tmp, f.port_file, ec);
  }
  std::printf("selffeed is serving model %s on http://%s:%u/ (chat: ws://%s:%u/ws, store: %s)\n",
              (*models)->version.c_str(), f.host.c_str(), port, f.host.c_str(), port, f.store.c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log->info("signal {}: finishing in-flight turns and shutting down", signal_number);
  periodic.reset();      // a retraining in progress is stopped; its run directory stays
  trial_judge.reset();
  (*server)->drain();   // no new messages reach the engine
  engine.stop();        // answers everything already queued
  (*server)->stop(std::chrono::milliseconds(f.shutdown_grace_ms));  // flush replies, close 1001
  log->info("stopped");
  return 0;
}

}  // namespace

void add_serve_commands(CLI::App& app, Action& action) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* serve_cmd = app.add_subcommand("serve", "Run the chat server (WebSocket at /ws, web client at /)");
  serve_cmd->add_option("--bundle", flags->bundle, "model bundle to serve")->capture_default_str();
  serve_cmd->add_option("--store", flags->store, "RocksDB directory for conversations and harvested examples")
      ->envname("SELFFEED_STORE")
      ->capture_default_str();
  serve_cmd->add_option("--host", flags->host, "address to listen on")->capture_default_str();
  serve_cmd->add_option("--port", flags->port, "port (0: any free port)")->envname("SELFFEED_PORT")->capture_default_str();
  serve_cmd->add_option("--port-file", flags->port_file, "write the port here once listening");
  serve_cmd->add_option("--web-root", flags->web_root, "directory of the web client")->capture_default_str();
  serve_cmd->add_option("--satisfaction", flags->satisfaction, "auto, model (the bundle's estimator) or regex")
      ->check(CLI::IsMember({"auto", "model", "regex"}))
      ->capture_default_str();
  serve_cmd->add_option("--threshold", flags->threshold, "satisfaction threshold (default: the estimator's own)");
  serve_cmd->add_option("--max-feedback-requests", flags->max_feedback_requests,
                        "ask for feedback at most this many times in one conversation (0: no limit); past it, a reply "
                        "the estimator calls unsatisfied is answered and learned from not at all")
      ->capture_default_str();
  serve_cmd->add_option("--max-feedback-requests-per-user", flags->max_feedback_requests_per_user,
                        "ask one user (by user id) for feedback at most this many times in any 24 hours, across "
                        "conversations (0: no limit); past it, as past --max-feedback-requests")
      ->capture_default_str();
  serve_cmd->add_option("--rating-request-share", flags->rating_request_share,
                        "on this share of the replies it judges, drawn at random (feedback requests too), the bot "
                        "also asks the user to rate the answer they replied to (0: never): an unbiased sample of "
                        "thumbs for the estimator")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  serve_cmd->add_option("--max-rating-requests", flags->max_rating_requests,
                        "ask for a rating at most this many times in one conversation (0: never); a user past "
                        "--max-feedback-requests-per-user is not asked")
      ->capture_default_str();
  serve_cmd->add_option("--label-model-window", flags->label_model_window,
                        "judged replies the live label model re-learns the labeling functions' accuracies on "
                        "(/admin/labeling-functions, /metrics); 0: off")
      ->capture_default_str();
  serve_cmd->add_option("--labeling-functions", flags->labeling_functions,
                        "pattern labeling functions that vote on every judged reply beside the built-ins (the live "
                        "label model, drift alerts, /metrics), one a line: NAME satisfied|unsatisfied reply|answer "
                        "RE2-PATTERN")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--drift-block", flags->drift.block,
                        "judged replies per drift comparison: each block is compared with the first "
                        "(/admin/alerts); 0: off")
      ->capture_default_str();
  serve_cmd->add_option("--drift-min-shift", flags->drift.min_shift,
                        "the smallest change of a labeling function's coverage, of their conflicts or of the mean "
                        "satisfaction score that raises an alert")
      ->capture_default_str();
  serve_cmd->add_option("--thumbs-min-auc", flags->drift.min_thumbs_auc,
                        "alert when the estimator's ROC-AUC against the latest thumbs falls below this (once 50 up "
                        "and 50 down are in)")
      ->capture_default_str();
  serve_cmd->add_option("--reported-alert-users", flags->reported_alert_users,
                        "alert (/admin/alerts) on an answer this many users reported as inappropriate, until it is "
                        "withdrawn; 0: never")
      ->capture_default_str();
  serve_cmd->add_option("--io-threads", flags->io_threads, "network threads")->capture_default_str();
  serve_cmd->add_option("--torch-threads", flags->torch_threads, "LibTorch intra-op threads")->capture_default_str();
  serve_cmd->add_option("--max-batch", flags->max_batch, "requests per inference batch (1: no micro-batching)")
      ->capture_default_str();
  serve_cmd->add_option("--max-queue", flags->max_queue, "queued requests before 'overloaded'")->capture_default_str();
  serve_cmd->add_option("--admin-token", flags->admin_token, "bearer token of the admin API (empty: off)")
      ->envname("SELFFEED_ADMIN_TOKEN");
  serve_cmd->add_option("--pseudonym-key-file", flags->pseudonym_key_file,
                        "secret key of the admin exports' pseudonymise=1 (user and conversation ids as pseudonyms)")
      ->envname("SELFFEED_PSEUDONYM_KEY_FILE");
  serve_cmd->add_option("--max-text-bytes", flags->max_text_bytes, "longest message text")->capture_default_str();
  serve_cmd->add_option("--max-message-bytes", flags->limits.max_message_bytes, "largest WebSocket message")
      ->capture_default_str();
  serve_cmd->add_option("--rate", flags->limits.messages_per_second, "messages per second per connection")
      ->capture_default_str();
  serve_cmd->add_option("--burst", flags->limits.burst, "message burst per connection")->capture_default_str();
  serve_cmd->add_option("--max-rate-violations", flags->limits.max_rate_violations,
                        "rate-limited messages in a row before closing the connection")
      ->capture_default_str();
  serve_cmd->add_option("--max-connections", flags->limits.max_connections, "open chat connections")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-connections-per-address", flags->limits.max_connections_per_address,
                   "open connections (chat or HTTP) from one client address (0: no limit)")
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-examples-per-address-per-hour", flags->max_examples_per_address_per_hour,
                   "examples (HB, FB, thumbs) one client address may teach the bot per hour; past it its messages "
                   "are answered without learning and its ratings refused (0: no limit)")
      ->capture_default_str();
  serve_cmd->add_option("--trusted-proxy", flags->trusted_proxies,
                        "a reverse proxy's IP address (repeatable): the client of its requests is the one its "
                        "X-Forwarded-For header names, and the per-address limit counts that client");
  serve_cmd->add_option("--idle-timeout", flags->idle_timeout_s, "seconds without a message before closing")
      ->capture_default_str();
  serve_cmd->add_option("--outbound-queue", flags->limits.outbound_queue_messages, "frames queued per connection")
      ->capture_default_str();
  serve_cmd->add_option("--send-timeout-ms", flags->send_timeout_ms, "drop a client that takes no frame this long")
      ->capture_default_str();
  serve_cmd->add_option("--socket-send-buffer", flags->limits.socket_send_buffer_bytes, "SO_SNDBUF (0: OS default)");
  serve_cmd->add_option("--shutdown-grace-ms", flags->shutdown_grace_ms, "time to flush replies on SIGTERM")
      ->capture_default_str();
  serve_cmd->add_option("--min-free-disk-mb", flags->min_free_disk_mb,
                        "answer storage_full instead of writing while the store's disk has less free")
      ->capture_default_str();
  serve_cmd->add_option("--gate-valid", flags->gate_valid,
                        "PersonaChat valid with candidates: the promotion gate's hits@1/20 set");
  serve_cmd->add_option("--gate-examples", flags->gate_examples, "examples of --gate-valid used (0: all)")
      ->capture_default_str();
  serve_cmd->add_option("--gate-epsilon", flags->gate_epsilon,
                        "allowed drop of a new model's PersonaChat hits@1 and satisfaction AUC")
      ->capture_default_str();
  serve_cmd->add_option("--trial-share", flags->trial_share,
                        "a bundle the gate passes goes on trial for this share of the users before it goes live "
                        "(0: live at once)")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  serve_cmd->add_option("--trial-conversations", flags->trial_conversations,
                        "decide a trial once it and the live model have answered this many conversations each "
                        "since it began: live unless its users asked, complained or gave thumbs down more "
                        "(0: the operator decides)")
      ->capture_default_str();
  serve_cmd->add_option("--trial-check-seconds", flags->trial_check_seconds, "how often a trial is looked at")
      ->capture_default_str();
  serve_cmd->add_option("--satisfaction-labelled", flags->satisfaction_labelled,
                        "rated ConvAI2 files: the gate scores estimators on their test split, and the periodic "
                        "retraining fine-tunes the estimator on their train split plus the users' thumbs")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--retrain-every-examples", flags->retrain_every_examples,
                        "retrain after this many new HB+FB examples (0: never)")
      ->capture_default_str();
  serve_cmd->add_option("--retrain-every-minutes", flags->retrain_every_minutes,
                        "retrain after this many minutes with new examples (0: never)")
      ->capture_default_str();
  serve_cmd->add_option("--retrain-personachat", flags->retrain_personachat, "HH training file for retraining");
  serve_cmd->add_option("--retrain-dir", flags->retrain_dir, "where retraining runs go")->capture_default_str();
  serve_cmd->add_option("--retrain-args", flags->retrain_args,
                        "extra `selffeed retrain` flags, space-separated (e.g. \"--steps 500 --lr 0.001\")");
  serve_cmd->add_option("--persona", flags->persona,
                        "the bot's persona: one fact per line (\"i have two dogs .\"); its replies lean on them");
  serve_cmd->callback([&action, flags] { action = [flags] { return serve(*flags); }; });

  auto url = std::make_shared<std::string>("ws://127.0.0.1:8080/ws");
  auto chat = std::make_shared<clients::TerminalChatOptions>();
  CLI::App* chat_cmd = app.add_subcommand("chat", "Chat with a running server from the terminal");
  chat_cmd->add_option("url", *url, "server chat endpoint")->capture_default_str();
  chat_cmd->add_option("--user", chat->user_id, "user id (for deleting your data later)");
  chat_cmd->add_flag("!--no-learn", chat->learn, "this conversation teaches the bot nothing (nothing is kept for training)");
  chat_cmd->callback([&action, url, chat] {
    action = [url, chat] { return clients::run_terminal_chat(*url, *chat, std::cin, std::cout); };
  });
}

}  // namespace selffeed::app
