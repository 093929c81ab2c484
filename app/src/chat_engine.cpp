#include "chat_engine.h"

#include <algorithm>
#include <random>
#include <span>
#include <unordered_set>
#include <utility>

#include "selffeed/common/context.h"
#include "selffeed/common/hash.h"
#include "selffeed/common/log.h"
#include "selffeed/satisfaction/satisfaction.h"
#include "teaching_budget.h"
#include "user_ask_limit.h"

namespace selffeed::app {
namespace {

spdlog::logger* log() { return SELFFEED_LOGGER("serve"); }

// The store setting that keeps the drift monitor's references across restarts.
constexpr const char* kDriftReferencesSetting = "drift_references";

std::string random_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buffer[33];
  std::snprintf(buffer, sizeof buffer, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buffer;
}

// A uniform draw in [0, 1) that depends only on `key` and `salt`: FNV-1a 64, then
// MurmurHash3's finalizer, without which the top bits barely move when only the last
// characters do ("user-1", "user-2", ...: 490 of 500 such ids fell below 0.5).
double stable_draw(std::string_view key, std::string_view salt) {
  std::uint64_t h = fnv1a64(salt);
  h = fnv1a64(std::string_view("\0", 1), h);  // "ab"+"c" and "a"+"bc" draw apart
  h = fnv1a64(key, h);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// The labeling functions' votes on a reply to the bot's last turn (the end of `history`),
// as the estimator sees it; thumbs and the model's confidence are not known yet here.
std::vector<satisfaction::Vote> labeling_votes(std::span<const satisfaction::LabelingFunction> functions,
                                               const std::vector<std::string>& history, const std::string& reply) {
  satisfaction::SatisfactionInput in;
  in.history.assign(history.begin(), history.end() - 1);
  in.bot_reply = history.back();
  in.user_reply = reply;
  return satisfaction::apply_labeling_functions(functions, in);
}

std::vector<double> satisfaction_buckets() { return {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0}; }
std::vector<double> batch_buckets() { return {1, 2, 4, 8, 16, 32, 64, 128}; }

}  // namespace

struct ChatEngine::Session {
  websocket::ConnectionPtr connection;
  Conversation conversation;
  feedback::State state;
  std::uint32_t next_turn = 0;
  bool moved = false;  // another connection resumed this conversation
  // The user's thumbs on the bot's last answer, given before they replied to it (here, or
  // as the turn kept it when the conversation was resumed): the drift monitor reads it once
  // the reply is judged (up: true).
  std::optional<bool> unreplied_answer_rated;
};

struct ChatEngine::Metrics {
  metrics::Registry& registry;
  metrics::Counter& turns;
  metrics::Counter& turns_not_learning;
  metrics::Counter& over_teaching_budget;
  metrics::Counter& feedback_requests;
  metrics::Counter& feedback_requests_held_back;
  metrics::Counter& answers_held_back;
  metrics::Counter& rating_requests;
  metrics::Counter& requested_ratings;
  metrics::Counter& suggestions;
  metrics::Counter& conversations_deleted;
  metrics::Counter& shadow_failures;
  metrics::Histogram& reply_latency;
  metrics::Histogram& satisfaction;
  metrics::Histogram& batch_size;
  metrics::Gauge& queue_depth;
  metrics::Gauge& sessions;

  explicit Metrics(metrics::Registry& r)
      : registry(r),
        turns(r.counter("selffeed_turns_total", "User messages answered (acknowledged after a durable commit).")),
        turns_not_learning(r.counter("selffeed_turns_not_learning_total",
                                     "User messages answered without teaching the bot: in conversations "
                                     "that do not, or over their address's teaching budget.")),
        over_teaching_budget(r.counter("selffeed_over_teaching_budget_total",
                                       "Messages answered without learning, and ratings refused, because their "
                                       "client address had spent its hourly teaching budget.")),
        feedback_requests(r.counter("selffeed_feedback_requests_total", "Times the bot asked for feedback.")),
        feedback_requests_held_back(r.counter("selffeed_feedback_requests_held_back_total",
                                              "Replies the estimate called unsatisfied in conversations that had "
                                              "been asked for feedback the most times allowed: answered instead.")),
        answers_held_back(r.counter("selffeed_answers_held_back_total",
                                    "Answers a ranking rule (repeat, asking back, name, greeting) held back, "
                                    "served because nothing else was left among the candidates looked at.")),
        rating_requests(r.counter("selffeed_rating_requests_total",
                                  "Times the bot asked the user to rate its previous answer.")),
        requested_ratings(r.counter("selffeed_requested_ratings_total",
                                    "Answers the bot had asked to rate that were rated (a changed mind counts "
                                    "once).")),
        suggestions(r.counter("selffeed_suggestions_total",
                              "What users said the bot could have said instead of an answer (suggest), each also "
                              "counted as an FB example harvested.")),
        conversations_deleted(r.counter("selffeed_conversations_deleted_total",
                                        "Conversations their users deleted (delete_conversation).")),
        shadow_failures(r.counter("selffeed_shadow_failures_total",
                                  "Batches the version in shadow failed on (their users were answered).")),
        reply_latency(r.histogram("selffeed_reply_latency_seconds",
                                  "From a message's arrival to its reply being queued for sending.",
                                  metrics::latency_buckets())),
        satisfaction(r.histogram("selffeed_satisfaction_score", "Estimated P(satisfied) of user replies.",
                                 satisfaction_buckets())),
        batch_size(r.histogram("selffeed_inference_batch_size", "Requests answered per worker batch.",
                               batch_buckets())),
        queue_depth(r.gauge("selffeed_inference_queue_depth", "Requests waiting for the inference worker.")),
        sessions(r.gauge("selffeed_sessions", "Connections with a conversation.")) {}

  metrics::Counter& harvested(ExampleKind kind) {
    return registry.counter("selffeed_harvested_examples_total", "Training examples harvested, by kind.",
                            {{"kind", std::string(example_kind_name(kind))}});
  }
  // What each labeling function says about the users' replies: their shares of the judged
  // replies (selffeed_satisfaction_score_count) drifting away from those on the training
  // pool (`selffeed lf-report`) says the users now talk otherwise than the estimator learned.
  metrics::Counter& vote(const satisfaction::LabelingFunction& function, satisfaction::Vote vote) {
    return registry.counter("selffeed_labeling_function_votes_total",
                            "Votes of each labeling function on the judged replies to the bot "
                            "(abstentions not counted).",
                            {{"function", function.name},
                             {"vote", vote == satisfaction::Vote::kSatisfied ? "satisfied" : "unsatisfied"}});
  }
  // The yield of each model version: its HB and FB per judged reply says how often its
  // users were satisfied and how often they answered a request.
  metrics::Counter& judged(const std::string& version) {
    return registry.counter("selffeed_judged_replies_total",
                            "User replies the satisfaction estimator judged, by the model version that answered.",
                            {{"version", version}});
  }
  metrics::Counter& dislike_reasons(DislikeReason reason) {
    return registry.counter("selffeed_dislike_reasons_total",
                            "Thumbs down given with a reason (rate's \"reason\"), by reason; a reason given "
                            "again counts again.",
                            {{"reason", std::string(dislike_reason_name(reason))}});
  }
  metrics::Counter& harvested_by(const std::string& version, ExampleKind kind) {
    return registry.counter("selffeed_harvested_examples_by_version_total",
                            "HB and FB examples harvested, by the model version that answered and kind.",
                            {{"version", version}, {"kind", std::string(example_kind_name(kind))}});
  }
  metrics::Counter& error(std::string_view code) { return metrics::error_counter(registry, code); }
  void set_trial(const std::string& version, double share) {
    registry.gauge("selffeed_trial_share", "Share of users the version on trial answers (0 once it ends).",
                   {{"version", version}})
        .set(share);
  }
  void set_shadow(const std::string& version, double share) {
    registry.gauge("selffeed_shadow_share", "Share of conversations the version in shadow sees (0 once it ends).",
                   {{"version", version}})
        .set(share);
  }
  metrics::Counter& shadow_answer(const std::string& version, bool agrees) {
    return registry.counter("selffeed_shadow_answers_total",
                            "Answers the version in shadow gave beside the live model's, by whether they were the same.",
                            {{"version", version}, {"agrees", agrees ? "true" : "false"}});
  }
  void set_model(const std::string& old_version, const std::string& version) {
    if (!old_version.empty()) {
      registry.gauge("selffeed_model_info", "The live model version (value 1).", {{"version", old_version}}).set(0);
    }
    registry.gauge("selffeed_model_info", "The live model version (value 1).", {{"version", version}}).set(1);
  }
};

// A user message on its way through the models and the policy.
struct ChatEngine::PendingTurn {
  const Job* job = nullptr;
  Session* session = nullptr;
  feedback::ModelRequest plan;
  std::optional<double> satisfaction;
  std::vector<satisfaction::Vote> votes;  // of the labeling functions, on a judged reply
  std::optional<dialogue::RankedReply> ranked;
  feedback::Outcome outcome;
  std::optional<bool> shadow_agrees;  // whether the shadow's reply is the answer, where it gave one
  // The state the turn is planned and decided on: the session's, or a copy with learning
  // off when its address has spent its teaching budget.
  std::optional<feedback::State> without_learning;
  const feedback::State& state() const { return without_learning ? *without_learning : session->state; }
};

ChatEngine::ChatEngine(ChatEngineOptions options, store::Store& store, std::shared_ptr<LiveModels> models,
                       metrics::Registry& registry)
    : options_(std::move(options)), store_(store), metrics_(std::make_unique<Metrics>(registry)),
      label_model_(std::make_unique<LiveLabelModel>(
          LiveLabelModel::Options{.window = options_.label_model_window,
                                  .refit_every = std::max<std::size_t>(100, options_.label_model_window / 4),
                                  .min_replies = std::min(LiveLabelModel::Options{}.min_replies,
                                                          options_.label_model_window),
                                  .functions = satisfaction::names_of(options_.labeling_functions)},
          registry)),
      drift_(std::make_unique<DriftMonitor>(
          [&] {
            DriftMonitor::Options drift = options_.drift;
            drift.functions = satisfaction::names_of(options_.labeling_functions);
            drift.keep_references = [this](const std::string& references) {
              if (Status kept = store_.set_setting(kDriftReferencesSetting, references); !kept.ok()) {
                log()->warn("drift: the references are not kept; a restart takes new ones: {}", kept.to_string());
              }
            };
            return drift;
          }(),
          registry)),
      models_(std::move(models)) {
  if (options_.max_examples_per_address_per_hour > 0) {
    teaching_budget_ = std::make_unique<TeachingBudget>(options_.max_examples_per_address_per_hour);
  }
  if (options_.max_feedback_requests_per_user > 0) {
    user_asks_ = std::make_unique<UserAskLimit>(options_.max_feedback_requests_per_user);
  }
  for (ExampleKind kind : {ExampleKind::kHB, ExampleKind::kFB, ExampleKind::kST}) metrics_->harvested(kind);
  for (DislikeReason reason : kAllDislikeReasons) metrics_->dislike_reasons(reason);
  metrics_->set_model("", models_->version);
  auto kept = store_.get_setting(kDriftReferencesSetting);
  Status restored = kept.ok() ? drift_->restore_references(*kept, models_->version) : kept.status();
  if (!restored.ok()) log()->warn("drift: the kept references are not restored; new ones are taken: {}", restored.to_string());
  worker_ = std::thread([this] { run(); });
}

ChatEngine::~ChatEngine() { stop(); }

bool ChatEngine::submit(const websocket::ConnectionPtr& connection, ClientMessage message, Clock::time_point received) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.max_queue || stopping_) return false;
    queue_.push_back({connection, std::move(message), received});
    metrics_->queue_depth.set(static_cast<double>(queue_.size()));
  }
  wake_.notify_one();
  return true;
}

void ChatEngine::connection_closed(const websocket::ConnectionPtr& connection) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;  // stop() lets go of every session anyway
    queue_.push_back({connection, std::nullopt, Clock::now()});
  }
  wake_.notify_one();
}

void ChatEngine::swap_models(std::shared_ptr<LiveModels> models) {
  std::lock_guard lock(mutex_);
  metrics_->set_model(models_->version, models->version);
  log()->info("live model is now {} (was {})", models->version, models_->version);
  if (models->version != models_->version) drift_->model_changed(models->version);
  if (trial_ && trial_->version == models->version) {
    metrics_->set_trial(trial_->version, 0);
    log()->info("the trial of {} ends: it is live", trial_->version);
    trial_.reset();
  }
  if (shadow_ && shadow_->version == models->version) {
    metrics_->set_shadow(shadow_->version, 0);
    log()->info("the shadow of {} ends: it is live", shadow_->version);
    shadow_.reset();
  }
  models_ = std::move(models);
}

void ChatEngine::withdraw_replies(const std::string& version, std::vector<std::int64_t> candidate_ids) {
  auto ids = std::make_shared<const std::vector<std::int64_t>>(std::move(candidate_ids));
  std::lock_guard lock(mutex_);
  auto& withdrawn = withdrawn_[version];
  if (!ids->empty() || (withdrawn && !withdrawn->empty())) {
    log()->info("{} withdraws {} pool replies (of deleted users, or withdrawn by the operator)", version, ids->size());
  }
  withdrawn = std::move(ids);
  // The versions that serve no more keep nothing.
  std::erase_if(withdrawn_, [&](const auto& entry) {
    const std::string& v = entry.first;
    return v != version && v != models_->version && !(trial_ && v == trial_->version) &&
           !(shadow_ && v == shadow_->version);
  });
}

std::vector<std::shared_ptr<LiveModels>> ChatEngine::serving_models() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<LiveModels>> out = {models_};
  if (trial_) out.push_back(trial_);
  if (shadow_) out.push_back(shadow_);
  return out;
}

void ChatEngine::start_trial(std::shared_ptr<LiveModels> models, double share) {
  std::lock_guard lock(mutex_);
  if (trial_) metrics_->set_trial(trial_->version, 0);
  metrics_->set_trial(models->version, share);
  log()->info("trial: {} answers {:.0f}% of users, {} the rest", models->version, 100 * share, models_->version);
  trial_ = std::move(models);
  trial_share_ = share;
}

void ChatEngine::end_trial() {
  std::lock_guard lock(mutex_);
  if (!trial_) return;
  metrics_->set_trial(trial_->version, 0);
  log()->info("the trial of {} ends: everyone gets {}", trial_->version, models_->version);
  trial_.reset();
}

ChatEngine::Beside ChatEngine::trial() const {
  std::lock_guard lock(mutex_);
  return trial_ ? Beside{trial_->version, trial_share_} : Beside{};
}

void ChatEngine::start_shadow(std::shared_ptr<LiveModels> models, double share) {
  std::lock_guard lock(mutex_);
  if (shadow_) metrics_->set_shadow(shadow_->version, 0);
  metrics_->set_shadow(models->version, share);
  log()->info("shadow: {} also answers {:.0f}% of the conversations, unseen", models->version, 100 * share);
  shadow_ = std::move(models);
  shadow_share_ = share;
}

void ChatEngine::end_shadow() {
  std::lock_guard lock(mutex_);
  if (!shadow_) return;
  metrics_->set_shadow(shadow_->version, 0);
  log()->info("the shadow of {} ends", shadow_->version);
  shadow_.reset();
}

ChatEngine::Beside ChatEngine::shadow() const {
  std::lock_guard lock(mutex_);
  return shadow_ ? Beside{shadow_->version, shadow_share_} : Beside{};
}

const LiveModels& ChatEngine::Serving::models_for(const Conversation& conversation) const {
  if (!trial) return *live;
  const std::string& user = conversation.user_id.empty() ? conversation.id : conversation.user_id;
  return stable_draw(user, trial->version) < trial_share ? *trial : *live;
}

const LiveModels* ChatEngine::Serving::shadow_for(const Conversation& conversation) const {
  // Only beside the live model: a trial user's turns compare nothing with what the others get.
  if (!shadow || &models_for(conversation) != live.get()) return nullptr;
  return stable_draw(conversation.id, shadow->version) < shadow_share ? shadow.get() : nullptr;
}

std::string ChatEngine::model_version() const {
  std::lock_guard lock(mutex_);
  return models_->version;
}

std::size_t ChatEngine::queue_depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::uint64_t ChatEngine::harvested(ExampleKind kind) const { return metrics_->harvested(kind).value(); }

void ChatEngine::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  // Connections belong to the server's io_context, which may go before this engine does.
  std::lock_guard lock(mutex_);
  queue_.clear();
  sessions_.clear();
  conversation_owner_.clear();
}

void ChatEngine::run() {
  std::deque<Job> pending;  // taken from the queue, waiting for their connection's turn
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !pending.empty(); });
      while (!queue_.empty()) {
        pending.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      metrics_->queue_depth.set(0);
      if (pending.empty() && stopping_) return;
    }
    std::vector<Job> batch = take_batch(pending);
    process(batch);
  }
}

std::vector<ChatEngine::Job> ChatEngine::take_batch(std::deque<Job>& pending) const {
  std::vector<Job> batch;
  std::unordered_set<std::uint64_t> connections;
  std::deque<Job> rest;
  while (!pending.empty()) {
    Job job = std::move(pending.front());
    pending.pop_front();
    if (batch.size() < options_.max_batch && connections.insert(job.connection->id()).second) {
      batch.push_back(std::move(job));
    } else {
      rest.push_back(std::move(job));
    }
  }
  pending = std::move(rest);
  return batch;
}

void ChatEngine::process(std::vector<Job>& batch) {
  Serving serving;
  {
    std::lock_guard lock(mutex_);
    // One model generation per batch.
    serving = {models_, trial_, trial_share_, shadow_, shadow_share_, withdrawn_};
  }
  metrics_->batch_size.observe(static_cast<double>(batch.size()));
  // One pass of each model over the messages it answers.
  std::unordered_map<const LiveModels*, std::vector<const Job*>> messages;
  for (const Job& job : batch) {
    if (!job.message) {
      auto it = sessions_.find(job.connection->id());
      if (it != sessions_.end()) {
        auto owner = conversation_owner_.find(it->second->conversation.id);
        if (owner != conversation_owner_.end() && owner->second == job.connection->id()) conversation_owner_.erase(owner);
        sessions_.erase(it);
      }
      continue;
    }
    switch (job.message->type) {
      case ClientMessageType::kHello: hello(job, serving); break;
      case ClientMessageType::kRate: rate(job); break;
      case ClientMessageType::kSuggest: suggest(job); break;
      case ClientMessageType::kReset: reset(job); break;
      case ClientMessageType::kDeleteConversation: delete_conversation(job); break;
      case ClientMessageType::kMessage: {
        auto session = sessions_.find(job.connection->id());
        // Without a session answer_messages() sends the error; any model will do.
        const LiveModels& models =
            session == sessions_.end() ? *serving.live : serving.models_for(session->second->conversation);
        messages[&models].push_back(&job);
        break;
      }
      case ClientMessageType::kPing: job.connection->send(pong_frame(job.message->id)); break;
    }
  }
  for (auto& [models, jobs] : messages) answer_messages(jobs, *models, serving);
  metrics_->sessions.set(static_cast<double>(sessions_.size()));
}

void ChatEngine::send_error(const Job& job, std::string_view code, std::string_view message) {
  metrics_->error(code).inc();
  job.connection->send(websocket::error_frame(code, message, job.message ? job.message->id : ""));
}

void ChatEngine::send_storage_error(const Job& job, const Status& status) {
  log()->error("store: {}", status.to_string());
  if (status.code() == StatusCode::kResourceExhausted) {
    send_error(job, "storage_full", "the server's disk is full: nothing was saved; please try again later");
  } else {
    send_error(job, "storage_error", "the server could not save this: nothing was saved; please try again");
  }
}

const std::vector<std::string>& ChatEngine::persona_of(const feedback::State& state) const {
  return state.persona.empty() ? options_.persona : state.persona;
}

ChatEngine::Session* ChatEngine::session_for(const Job& job) {
  auto it = sessions_.find(job.connection->id());
  if (it == sessions_.end()) {
    send_error(job, "no_conversation", "send a hello message first");
    return nullptr;
  }
  if (it->second->moved) {
    send_error(job, "conversation_moved", "this conversation was resumed on another connection; send hello again");
    return nullptr;
  }
  return it->second.get();
}

void ChatEngine::hello(const Job& job, const Serving& serving) {
  const ClientMessage& m = *job.message;
  const std::uint64_t connection_id = job.connection->id();
  auto session = std::make_unique<Session>();
  session->connection = job.connection;
  const std::string id = m.conversation_id.empty() ? random_id() : m.conversation_id;

  bool resumed = false;
  std::vector<Turn> recent;
  auto existing = store_.get_conversation(id);
  if (existing.ok()) {
    if (!m.user_id.empty() && !existing->user_id.empty() && m.user_id != existing->user_id) {
      return send_error(job, "user_mismatch", "this conversation belongs to another user");
    }
    session->conversation = std::move(*existing);
    auto state = feedback::State::parse(session->conversation.state);
    if (state.ok()) {
      session->state = std::move(*state);
    } else {
      log()->warn("conversation {}: unreadable policy state ({}); starting a fresh topic", id,
                  state.status().message());
    }
    // The user changes their mind about teaching the bot, or gives the bot another persona:
    // stored before the welcome says so.
    const bool new_persona = m.persona && *m.persona != session->state.persona;
    if ((m.learn && *m.learn != session->state.learn) || new_persona) {
      if (m.learn) session->state = feedback::with_learning(session->state, *m.learn);
      if (new_persona) session->state.persona = *m.persona;
      session->conversation.state = session->state.serialize();
      session->conversation.updated_ms = unix_millis();
      if (Status s = store_.put_conversation(session->conversation); !s.ok()) return send_storage_error(job, s);
    }
    auto turns = store_.get_turns(id);
    if (!turns.ok()) return send_storage_error(job, turns.status());
    session->next_turn = turns->empty() ? 0 : turns->back().index + 1;
    // The bot's last answer, rated before the user replied (on another connection, or before
    // a restart): the drift monitor reads that rating once the reply is judged.
    if (!turns->empty() && turns->back().speaker == Speaker::kBot) {
      session->unreplied_answer_rated = turns->back().thumbs_up;
    }
    const std::size_t keep = std::min(turns->size(), options_.resume_turns);
    recent.assign(std::make_move_iterator(turns->end() - static_cast<std::ptrdiff_t>(keep)),
                  std::make_move_iterator(turns->end()));
    resumed = true;
  } else if (existing.status().code() == StatusCode::kNotFound) {
    const std::int64_t now = unix_millis();
    // A deleted user id teaches the bot nothing again: retraining would never read it.
    bool deleted = false;
    if (!m.user_id.empty()) {
      auto is_deleted = store_.is_user_deleted(m.user_id);
      if (!is_deleted.ok()) {
        if (is_deleted.status().code() == StatusCode::kInvalidArgument) {
          return send_error(job, "invalid_message", is_deleted.status().message());
        }
        return send_storage_error(job, is_deleted.status());
      }
      deleted = *is_deleted;
    }
    session->state.learn = !deleted && m.learn.value_or(true);
    session->state.persona = m.persona.value_or(std::vector<std::string>{});
    session->conversation = Conversation{id, m.user_id, now, now, session->state.serialize()};
    if (Status s = store_.put_conversation(session->conversation); !s.ok()) {
      if (s.code() == StatusCode::kInvalidArgument) return send_error(job, "invalid_message", s.message());
      return send_storage_error(job, s);
    }
  } else {
    return send_storage_error(job, existing.status());
  }

  // A conversation has one live connection: the newest hello wins (a reloaded page).
  if (auto owner = conversation_owner_.find(id); owner != conversation_owner_.end() && owner->second != connection_id) {
    if (auto other = sessions_.find(owner->second); other != sessions_.end()) other->second->moved = true;
  }
  if (auto previous = sessions_.find(connection_id); previous != sessions_.end()) {
    auto owner = conversation_owner_.find(previous->second->conversation.id);
    if (owner != conversation_owner_.end() && owner->second == connection_id) conversation_owner_.erase(owner);
  }
  conversation_owner_[id] = connection_id;
  remember_requests_of(session->conversation.user_id);

  WelcomeFrame welcome{.id = m.id,
                       .conversation_id = id,
                       .user_id = session->conversation.user_id,
                       .resumed = resumed,
                       .phase = session->state.phase,
                       .learn = session->state.learn,
                       .persona = persona_of(session->state),
                       .model_version = serving.models_for(session->conversation).version,
                       .recent_turns = std::move(recent)};
  log()->info("conversation {} {} (user '{}', connection {})", id, resumed ? "resumed" : "started",
              session->conversation.user_id, connection_id);
  sessions_[connection_id] = std::move(session);
  job.connection->send(welcome_frame(welcome));
}

void ChatEngine::remember_requests_of(const std::string& user_id) {
  if (!user_asks_ || user_id.empty() || user_asks_->knows(user_id)) return;
  const std::int64_t since = unix_millis() - UserAskLimit::kWindowMs;
  std::vector<std::int64_t> asked;
  const Status scanned = store_.scan_transcripts(
      {.user_id = user_id, .updated_after_ms = since}, [&](const Conversation&, const std::vector<Turn>& turns) {
        for (const Turn& t : turns) {
          if (t.speaker == Speaker::kBot && t.phase == Phase::kFeedbackRequested && t.time_ms > since) {
            asked.push_back(t.time_ms);
          }
        }
        return true;
      });
  // Unread, the user is read again at their next hello; until then only this server's count holds.
  if (!scanned.ok()) return log()->warn("feedback requests of user '{}': {}", user_id, scanned.to_string());
  user_asks_->remember(user_id, asked);
}

std::optional<std::vector<Turn>> ChatEngine::turns_to_teach_about(const Job& job, const Session& session,
                                                                 std::uint32_t from, bool answers_only) {
  const ClientMessage& m = *job.message;
  const std::string what = m.type == ClientMessageType::kRate ? "ratings" : "suggestions";
  const std::string turn = "turn " + std::to_string(m.turn);
  if (m.turn < 0 || m.turn >= session.next_turn) {
    send_error(job, "unknown_turn", turn + " does not exist in this conversation");
    return std::nullopt;
  }
  auto turns = store_.get_turns(session.conversation.id, from);
  if (!turns.ok()) {
    send_storage_error(job, turns.status());
    return std::nullopt;
  }
  const auto bot = std::find_if(turns->begin(), turns->end(), [&](const Turn& t) { return t.index == m.turn; });
  if (bot == turns->end() || bot->speaker != Speaker::kBot) {
    send_error(job, "unknown_turn", turn + " is not a bot turn of this conversation");
    return std::nullopt;
  }
  if (answers_only && bot->phase != Phase::kNormal) {
    send_error(job, "not_an_answer", turn + " is the bot asking, not answering: only its answers take " + what);
    return std::nullopt;
  }
  if (!session.state.learn) {
    send_error(job, "not_learning",
               "this conversation does not teach the bot (hello with \"learn\": false), so " + what + " are not kept");
    return std::nullopt;
  }
  if (teaching_budget_ && !teaching_budget_->has_room(job.connection->client_address(), Clock::now())) {
    metrics_->over_teaching_budget.inc();
    send_error(job, "teaching_budget_spent",
               "your address has taught the bot as much as it may this hour; " + what + " are kept again later");
    return std::nullopt;
  }
  return std::move(*turns);
}

void ChatEngine::rate(const Job& job) {
  Session* session = session_for(job);
  if (!session) return;
  const ClientMessage& m = *job.message;
  auto turns = turns_to_teach_about(job, *session, static_cast<std::uint32_t>(std::max<std::int64_t>(m.turn, 0)),
                                    /*answers_only=*/false);
  if (!turns) return;
  const std::string& address = job.connection->client_address();
  // The ST example reads like the estimator's input: the bot's turn and, when the user has
  // answered it already, that answer.
  satisfaction::SatisfactionInput input;
  input.bot_reply = turns->front().text;
  if (turns->size() > 1 && (*turns)[1].speaker == Speaker::kUser) input.user_reply = (*turns)[1].text;
  Example example;
  example.kind = ExampleKind::kST;
  example.context = satisfaction_context(input);
  example.target = m.thumbs_up ? "1" : "0";
  example.conversation_id = session->conversation.id;
  example.turn_index = m.turn;
  example.user_id = session->conversation.user_id;
  example.model_version = turns->front().model_version;
  example.created_ms = unix_millis();
  example.source = kFromThumbs;
  // The turn keeps the rating that stands (a changed mind replaces it: the welcome and the
  // transcript show it, and readers of the ST examples keep a turn's latest); the example
  // keeps every rating given.
  Turn rated = turns->front();
  const std::optional<bool> rated_before = rated.thumbs_up;
  rated.thumbs_up = m.thumbs_up;
  rated.dislike_reason = m.reason;
  auto seqs = store_.commit({.turns = {rated}, .examples = {example}});
  if (!seqs.ok()) return send_storage_error(job, seqs.status());
  metrics_->harvested(ExampleKind::kST).inc();
  // The bot's reply to the user's answer says whether the bot asked for this rating.
  const bool requested = turns->size() > 2 && (*turns)[2].rating_request == static_cast<std::uint32_t>(m.turn);
  if (requested && !rated_before) metrics_->requested_ratings.inc();
  if (m.reason) metrics_->dislike_reasons(*m.reason).inc();
  if (rated.phase == Phase::kNormal) {
    reported_.rated(session->conversation, rated, m.reason == DislikeReason::kInappropriate);
  }
  if (teaching_budget_) teaching_budget_->spend(address, 1, Clock::now());
  // The thumbs are the estimator's dev set in the wild, where the live one scored the reply;
  // before the reply, once it is judged.
  if (turns->size() > 1 && (*turns)[1].speaker == Speaker::kUser && (*turns)[1].satisfaction &&
      (*turns)[1].model_version == model_version()) {
    const double score = *(*turns)[1].satisfaction;
    if (!rated_before) {
      drift_->rated(score, m.thumbs_up, requested);
    } else if (*rated_before != m.thumbs_up) {
      drift_->rating_changed(score, m.thumbs_up, requested);
    }
  } else if (turns->size() == 1 && m.turn + 1 == session->next_turn) {
    session->unreplied_answer_rated = m.thumbs_up;
  }
  log()->info("conversation {} turn {} rated {}{}{}", session->conversation.id, m.turn, m.thumbs_up ? "up" : "down",
              m.reason ? std::string(" (") + std::string(dislike_reason_name(*m.reason)) + ")" : "",
              rated_before ? " again" : "");
  job.connection->send(rated_frame(m.id, m.turn, m.thumbs_up, m.reason, seqs->front()));
}

void ChatEngine::suggest(const Job& job) {
  Session* session = session_for(job);
  if (!session) return;
  const ClientMessage& m = *job.message;
  // From the turns before the answer, its context (feedback::answer_context).
  const std::int64_t from = std::max<std::int64_t>(0, m.turn - static_cast<std::int64_t>(kDefaultHistorySize));
  auto turns = turns_to_teach_about(job, *session, static_cast<std::uint32_t>(from), /*answers_only=*/true);
  if (!turns) return;
  const auto answer = std::find_if(turns->begin(), turns->end(), [&](const Turn& t) { return t.index == m.turn; });
  // The paper's FEEDBACK example, as after a feedback request: the context the answer was
  // chosen in, what the user would have had the bot say as the target.
  Example example;
  example.kind = ExampleKind::kFB;
  example.context = feedback::answer_context(std::span<const Turn>(turns->data(), answer - turns->begin()));
  example.target = m.text;
  example.conversation_id = session->conversation.id;
  example.turn_index = m.turn;
  example.user_id = session->conversation.user_id;
  example.model_version = answer->model_version;
  example.created_ms = unix_millis();
  example.source = kFromSuggestion;
  Turn suggested = *answer;
  suggested.suggestion = m.text;
  auto seqs = store_.commit({.turns = {suggested}, .examples = {example}});
  if (!seqs.ok()) return send_storage_error(job, seqs.status());
  metrics_->harvested(ExampleKind::kFB).inc();
  metrics_->suggestions.inc();
  if (teaching_budget_) teaching_budget_->spend(job.connection->client_address(), 1, Clock::now());
  log()->info("conversation {} turn {}: the user said what the bot could have said", session->conversation.id, m.turn);
  job.connection->send(suggested_frame(m.id, m.turn, seqs->front()));
}

// The user takes back a conversation: the store forgets it (its examples too, leaving a
// tombstone), the connection has no conversation until its next hello, and what the models
// learned from it is checked off this thread (on_conversation_deleted).
void ChatEngine::delete_conversation(const Job& job) {
  Session* session = session_for(job);
  if (!session) return;
  const std::string id = session->conversation.id;
  auto report = store_.delete_conversation(id);
  if (!report.ok()) return send_storage_error(job, report.status());
  metrics_->conversations_deleted.inc();
  log()->info("conversation {} deleted by its user: {} turns, {} examples", id, report->turns, report->examples);
  if (auto owner = conversation_owner_.find(id); owner != conversation_owner_.end()) conversation_owner_.erase(owner);
  sessions_.erase(job.connection->id());
  job.connection->send(conversation_deleted_frame(job.message->id, id, report->turns, report->examples));
  if (report->examples > 0 && conversation_deleted_) conversation_deleted_(*report);
}

void ChatEngine::reset(const Job& job) {
  Session* session = session_for(job);
  if (!session) return;
  Conversation updated = session->conversation;
  const feedback::State next = feedback::reset(session->state);
  updated.state = next.serialize();
  updated.updated_ms = unix_millis();
  // The transcript keeps where the topic ended, with the state that forgot it, in one commit.
  store::WriteSet writes{.conversations = {updated}};
  if (session->next_turn > 0) {
    auto last = store_.get_turns(updated.id, session->next_turn - 1);
    if (!last.ok()) return send_storage_error(job, last.status());
    if (!last->empty() && !last->front().ends_topic) {
      writes.turns.push_back(std::move(last->front()));
      writes.turns.back().ends_topic = true;
    }
  }
  if (auto committed = store_.commit(writes); !committed.ok()) return send_storage_error(job, committed.status());
  session->conversation = std::move(updated);
  session->state = next;
  job.connection->send(reset_frame(job.message->id));
}

std::vector<std::optional<ShadowReply>> ChatEngine::shadow_replies(const std::vector<PendingTurn>& turns,
                                                                   const std::vector<bool>& answered,
                                                                   const std::vector<dialogue::RankRequest>& requests,
                                                                   const Serving& serving) {
  std::vector<std::optional<ShadowReply>> out(turns.size());
  if (!serving.shadow) return out;
  std::vector<dialogue::RankRequest> seen;
  std::vector<std::size_t> seen_by;  // their turns' positions
  std::size_t next_request = 0;
  for (std::size_t i = 0; i < turns.size(); ++i) {
    if (!turns[i].plan.reply_context) continue;
    const dialogue::RankRequest& request = requests[next_request++];
    if (!answered[i] || serving.shadow_for(turns[i].session->conversation) == nullptr) continue;
    seen.push_back(request);
    seen.back().withdrawn = serving.withdrawn_from(*serving.shadow);  // ids into its own pool
    seen_by.push_back(i);
  }
  if (seen.empty()) return out;
  auto ranked = serving.shadow->dialogue->rank(seen, 1);
  if (!ranked.ok()) {
    log()->warn("the shadow {} failed on a batch; its users were answered: {}", serving.shadow->version,
                ranked.status().to_string());
    metrics_->shadow_failures.inc();
    return out;
  }
  for (std::size_t k = 0; k < seen.size(); ++k) {
    if (!(*ranked)[k].empty()) out[seen_by[k]] = ShadowReply{serving.shadow->version, (*ranked)[k].front().text};
  }
  return out;
}

void ChatEngine::answer_messages(std::vector<const Job*>& jobs, const LiveModels& models, const Serving& serving) {
  std::vector<PendingTurn> turns;
  for (const Job* job : jobs) {
    Session* session = session_for(*job);
    if (!session) continue;
    PendingTurn t;
    t.job = job;
    t.session = session;
    // The answer to a feedback request already made is kept whatever the budget: the user was asked.
    if (teaching_budget_ && session->state.learn && session->state.phase == Phase::kNormal &&
        !teaching_budget_->has_room(job->connection->client_address(), job->received)) {
      t.without_learning = feedback::with_learning(session->state, false);
      metrics_->over_teaching_budget.inc();
    }
    t.plan = feedback::plan(t.state(), job->message->text);
    turns.push_back(std::move(t));
  }
  if (turns.empty()) return;

  // One satisfaction pass and one ranking pass for the whole batch.
  std::vector<std::string> satisfaction_contexts;
  std::vector<dialogue::RankRequest> rank_requests;
  for (const PendingTurn& t : turns) {
    if (t.plan.satisfaction_context) satisfaction_contexts.push_back(*t.plan.satisfaction_context);
    if (t.plan.reply_context) {
      const std::vector<std::string>& persona = persona_of(t.session->state);
      rank_requests.push_back({.context = *t.plan.reply_context,
                               .persona = persona,
                               .previous_reply = t.plan.previous_reply,
                               .earlier_utterances = t.plan.earlier_utterances,
                               .asked_questions = t.plan.asked_questions,
                               .own_answers = t.plan.own_answers,
                               .bot_name = t.plan.bot_name.empty() ? first_in(persona, self_given_name) : t.plan.bot_name,
                               .bot_occupation = t.plan.bot_occupation.empty()
                                                     ? first_in(persona, self_stated_occupation)
                                                     : t.plan.bot_occupation,
                               .may_greet = t.plan.may_greet,
                               .withdrawn = serving.withdrawn_from(models)});
    }
  }
  auto fail_all = [&](const Status& status) {
    log()->error("inference failed: {}", status.to_string());
    for (const PendingTurn& t : turns) send_error(*t.job, "model_error", "the model failed on this message; please retry");
  };
  std::vector<double> scores;
  if (!satisfaction_contexts.empty()) {
    auto scored = models.satisfaction->score(satisfaction_contexts);
    if (!scored.ok()) return fail_all(scored.status());
    scores = std::move(*scored);
  }
  std::vector<std::vector<dialogue::RankedReply>> ranked;
  if (!rank_requests.empty()) {
    auto result = models.dialogue->rank(rank_requests, 1);
    if (!result.ok()) return fail_all(result.status());
    ranked = std::move(*result);
  }

  feedback::PolicyOptions policy = options_.policy;
  policy.satisfaction_threshold = options_.satisfaction_threshold.value_or(models.satisfaction->threshold());
  const std::int64_t now = unix_millis();
  store::WriteSet writes;
  std::size_t next_score = 0, next_rank = 0;
  std::vector<PendingTurn*> decided;
  std::vector<bool> answered(turns.size());            // decided, with an answer
  std::vector<std::size_t> bot_turn_at(turns.size());  // in writes.turns
  for (std::size_t position = 0; position < turns.size(); ++position) {
    PendingTurn& t = turns[position];
    if (t.plan.satisfaction_context) {
      t.satisfaction = scores[next_score++];
      t.votes = labeling_votes(options_.labeling_functions, t.session->state.history, t.job->message->text);
    }
    if (t.plan.reply_context) {
      if (!ranked[next_rank].empty()) t.ranked = ranked[next_rank].front();
      ++next_rank;
    }
    const std::string& user_id = t.session->conversation.user_id;
    policy.may_ask = !user_asks_ || user_id.empty() || user_asks_->may_ask(user_id, now);
    const std::string turn_key = t.session->conversation.id + ':' + std::to_string(t.session->next_turn);
    policy.rating_drawn = stable_draw(turn_key, "rating") < options_.rating_request_share;
    auto outcome = feedback::decide(t.state(), t.job->message->text, t.satisfaction,
                                    t.ranked ? std::optional<std::string>(t.ranked->text) : std::nullopt, policy);
    if (!outcome.ok()) {
      log()->error("policy: {}", outcome.status().to_string());
      send_error(*t.job, "internal_error", "the server could not answer this message");
      continue;
    }
    t.outcome = std::move(*outcome);
    if (user_asks_ && !user_id.empty() && t.outcome.kind == feedback::ReplyKind::kFeedbackRequest) {
      user_asks_->asked(user_id, now);
    }
    if (t.without_learning) t.outcome.next.learn = true;  // it learns again once its address has budget
    Session& s = *t.session;
    const std::uint32_t user_index = s.next_turn;
    Turn user_turn{s.conversation.id, user_index,      Speaker::kUser, t.job->message->text, now,
                   t.satisfaction,    t.outcome.user_turn_phase,       models.version,       std::nullopt};
    Turn bot_turn{s.conversation.id, user_index + 1, Speaker::kBot, t.outcome.bot_text, now, std::nullopt,
                  t.outcome.next.phase, models.version, std::nullopt};
    // A persona sentence said as it stands is no candidate of the pool.
    if (t.outcome.kind == feedback::ReplyKind::kAnswer && t.ranked && t.ranked->candidate_id >= 0) {
      bot_turn.candidate_id = t.ranked->candidate_id;
    }
    if (t.outcome.rating_requested) bot_turn.rating_request = user_index - 1;  // the answer the message replied to
    writes.turns.push_back(std::move(user_turn));
    bot_turn_at[position] = writes.turns.size();
    answered[position] = t.outcome.kind == feedback::ReplyKind::kAnswer;
    writes.turns.push_back(std::move(bot_turn));
    for (Example& e : t.outcome.examples) {
      e.conversation_id = s.conversation.id;
      e.turn_index = user_index;
      e.user_id = s.conversation.user_id;
      e.model_version = models.version;
      e.created_ms = now;
      e.source = kFromServer;
      writes.examples.push_back(e);
    }
    Conversation updated = s.conversation;
    updated.state = t.outcome.next.serialize();
    updated.updated_ms = now;
    writes.conversations.push_back(std::move(updated));
    decided.push_back(&t);
  }
  if (decided.empty()) return;
  // The shadow's replies, beside the answers only: a feedback request or a thanks has none.
  const std::vector<std::optional<ShadowReply>> shadows = shadow_replies(turns, answered, rank_requests, serving);
  for (std::size_t position = 0; position < turns.size(); ++position) {
    if (!shadows[position]) continue;
    Turn& bot_turn = writes.turns[bot_turn_at[position]];
    bot_turn.shadow = shadows[position];
    turns[position].shadow_agrees = shadows[position]->text == bot_turn.text;
  }

  // One durable commit for the batch; nothing is acknowledged before it returns.
  if (auto committed = store_.commit(writes); !committed.ok()) {
    for (PendingTurn* t : decided) send_storage_error(*t->job, committed.status());
    return;
  }

  const auto sent = Clock::now();
  for (PendingTurn* t : decided) {
    Session& s = *t->session;
    const std::uint32_t user_index = s.next_turn;
    s.next_turn += 2;
    s.state = t->outcome.next;
    s.conversation.state = s.state.serialize();
    s.conversation.updated_ms = now;
    const std::optional<bool> thumbs_on_replied_answer = std::exchange(s.unreplied_answer_rated, std::nullopt);

    ReplyFrame reply{t->job->message->id, user_index + 1, user_index, t->outcome.bot_text,
                     feedback::reply_kind_name(t->outcome.kind), t->satisfaction, models.version, {}};
    if (t->outcome.rating_requested) {
      reply.rating_request = user_index - 1;
      metrics_->rating_requests.inc();
    }
    for (const Example& e : t->outcome.examples) {
      reply.harvested.push_back(e.kind);
      metrics_->harvested(e.kind).inc();
      metrics_->harvested_by(models.version, e.kind).inc();
    }
    if (teaching_budget_) {
      teaching_budget_->spend(t->job->connection->client_address(), t->outcome.examples.size(), sent);
    }
    if (t->outcome.kind == feedback::ReplyKind::kFeedbackRequest) metrics_->feedback_requests.inc();
    if (t->outcome.request_held_back) metrics_->feedback_requests_held_back.inc();
    if (t->outcome.kind == feedback::ReplyKind::kAnswer && t->ranked && t->ranked->held_back) {
      metrics_->answers_held_back.inc();
    }
    if (t->shadow_agrees) metrics_->shadow_answer(serving.shadow->version, *t->shadow_agrees).inc();
    if (t->satisfaction) metrics_->satisfaction.observe(*t->satisfaction);
    if (!t->votes.empty()) {
      label_model_->add(t->votes);
      drift_->judged(t->votes, &models == serving.live.get() ? t->satisfaction : std::nullopt);
      if (thumbs_on_replied_answer && t->satisfaction && &models == serving.live.get()) {
        // This reply's rating request, if any, names that same answer.
        drift_->rated(*t->satisfaction, *thumbs_on_replied_answer, t->outcome.rating_requested);
      }
      metrics_->judged(models.version).inc();
    }
    for (std::size_t f = 0; f < t->votes.size(); ++f) {
      if (t->votes[f] != satisfaction::Vote::kAbstain) {
        metrics_->vote(options_.labeling_functions[f], t->votes[f]).inc();
      }
    }
    metrics_->turns.inc();
    if (!t->state().learn) metrics_->turns_not_learning.inc();
    metrics_->reply_latency.observe(std::chrono::duration<double>(sent - t->job->received).count());
    log()->info("conversation {} turn {} phase {} satisfaction {} -> {}", s.conversation.id, user_index,
                phase_name(t->outcome.user_turn_phase),
                t->satisfaction ? std::to_string(*t->satisfaction) : std::string("-"),
                feedback::reply_kind_name(t->outcome.kind));
    t->job->connection->send(reply_frame(reply));
  }
}

}  // namespace selffeed::app
