// The inference worker of `selffeed serve`: one thread that owns the live models, takes
// the requests of every session from one queue and answers them in micro-batches (one
// satisfaction pass and one ranking pass per batch, one durable commit per batch). I/O
// threads only parse and enqueue; they never run a model or touch RocksDB.
//
// Per connection, requests are answered in order and one at a time: a batch holds at most
// one request of each connection. A turn is acknowledged only after the user's turn, the
// bot's turn, the harvested examples and the policy state are committed together.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "chat_protocol.h"
#include "disliked_replies.h"
#include "drift_monitor.h"
#include "live_label_model.h"
#include "live_models.h"
#include "selffeed/common/metrics.h"
#include "selffeed/feedback/policy.h"
#include "selffeed/store/store.h"
#include "selffeed/websocket/server.h"

namespace selffeed::app {

struct ChatEngineOptions {
  feedback::PolicyOptions policy;
  // Overrides the scorer's own threshold when set.
  std::optional<double> satisfaction_threshold;
  // Requests answered together; 1 turns micro-batching off.
  std::size_t max_batch = 32;
  // Requests waiting beyond this are refused with "overloaded".
  std::size_t max_queue = 4096;
  // Turns sent back in the welcome of a resumed conversation.
  std::size_t resume_turns = 50;
  // The bot's persona where a conversation's hello gives none, one fact per sentence:
  // replies about these facts rank higher (dialogue::ModelConfig::persona_weight), and a
  // name it gives ("my name is sam") is the bot's name from the first message on.
  // Empty: none.
  std::vector<std::string> persona;
  // Examples (HB, FB and thumbs) one client address may give per hour, so that one client,
  // however many conversations or user ids it opens, cannot flood what the bot learns: a
  // token bucket per address that holds an hour's worth. Past it, that address's messages
  // are answered without being judged (no feedback request, nothing harvested; the answer to
  // a request already made is still kept) and its ratings are refused. 0: no limit.
  std::size_t max_examples_per_address_per_hour = 0;
  // Feedback requests one user (by user id) may get in any 24 hours, across conversations
  // (UserAskLimit), beside policy.max_feedback_requests per conversation. Past it, their
  // unsatisfied replies are answered and harvested as nothing. 0: no limit.
  std::uint32_t max_feedback_requests_per_user = 0;
  // The share of judged replies (answers and feedback requests) on which the bot also asks
  // the user to rate the answer they replied to, up to policy.max_rating_requests a conversation: drawn from the
  // conversation id and turn, so a replay asks on the same turns. 0: never.
  double rating_request_share = 0;
  // The judged replies the live label model is fitted on (LiveLabelModel); 0: none.
  std::size_t label_model_window = 10000;
  // Alerts on the judged replies and the thumbs drifting away (DriftMonitor; its function
  // names are those of labeling_functions).
  DriftMonitor::Options drift;
  // What votes on every judged reply (the live label model, the drift alerts, /metrics):
  // the built-ins, and those of serve --labeling-functions after them.
  std::vector<satisfaction::LabelingFunction> labeling_functions = satisfaction::labeling_functions();
};

class TeachingBudget;
class UserAskLimit;

class ChatEngine {
 public:
  using Clock = std::chrono::steady_clock;

  ChatEngine(ChatEngineOptions options, store::Store& store, std::shared_ptr<LiveModels> models,
             metrics::Registry& metrics);
  ~ChatEngine();  // stop()

  // From any thread. False when the queue is full.
  bool submit(const websocket::ConnectionPtr& connection, ClientMessage message, Clock::time_point received);
  // Forgets the connection's session once its queued requests are answered.
  void connection_closed(const websocket::ConnectionPtr& connection);
  // Later batches use `models`; the batch in progress finishes with the old ones. When
  // `models` is the version on trial, the trial ends: everyone gets it; when it is the
  // version in shadow, the shadow ends.
  void swap_models(std::shared_ptr<LiveModels> models);
  std::string model_version() const;
  // Later batches answered by `version` (live, on trial or in shadow) never offer the pool
  // replies `candidate_ids` (a deleted user's words, or replies the operator withdrew;
  // RankRequest::withdrawn); replaces the last call's for that version. Set before the
  // version serves, it holds from its first batch.
  void withdraw_replies(const std::string& version, std::vector<std::int64_t> candidate_ids);
  // An A/B trial: later batches answer about `share` (0 < share < 1) of the users with
  // `models` and the rest with the live ones. Who is in it is drawn by a hash of the user
  // id (of the conversation id for anonymous users) and the trial's version, so a user
  // keeps their model across messages, reconnects and resumed conversations. Replaces a
  // trial in progress.
  void start_trial(std::shared_ptr<LiveModels> models, double share);
  // Everyone back on the live model (nothing when no trial is running).
  void end_trial();
  // Shadow evaluation: in about `share` (0 < share <= 1) of the conversations the live
  // model answers (drawn by a hash of the conversation id and the shadow's version),
  // later batches also ask `models` what they would answer, and keep that beside the
  // answer (Turn::shadow), never shown: `models` meets the live users' turns without
  // anyone meeting it. One more ranking pass per batch that has such turns; a failure of
  // it costs the shadow's reply, never the user's. Replaces a shadow in progress.
  void start_shadow(std::shared_ptr<LiveModels> models, double share);
  void end_shadow();  // nothing when no shadow is running
  struct Beside {
    std::string version;  // empty: none
    double share = 0;
  };
  Beside trial() const;
  Beside shadow() const;
  // The live models, and those on trial and in shadow when there are.
  std::vector<std::shared_ptr<LiveModels>> serving_models() const;
  std::size_t queue_depth() const;
  // Examples of `kind` harvested since this engine started.
  std::uint64_t harvested(ExampleKind kind) const;
  // Called on the worker thread after a user deleted a conversation (the store no longer
  // has it), to check what the models learned from it, off that thread. Set before the
  // first message.
  void on_conversation_deleted(std::function<void(const store::DeleteConversationReport&)> listener) {
    conversation_deleted_ = std::move(listener);
  }
  // The labeling functions on live traffic (thread-safe).
  LiveLabelModel& label_model() { return *label_model_; }
  // Drift of the judged replies and of the estimator against the thumbs (thread-safe).
  DriftMonitor& drift() { return *drift_; }
  // The answers users reported as inappropriate, kept by rate once loaded (thread-safe).
  ReportedReplies& reported_replies() { return reported_; }
  // Answers everything already queued, ends the worker thread and lets go of every
  // connection.
  void stop();

 private:
  struct Job {
    websocket::ConnectionPtr connection;
    std::optional<ClientMessage> message;  // nullopt: the connection closed
    Clock::time_point received;
  };
  struct Session;
  struct Metrics;
  // Per model version, the candidate ids of its pool it must not offer.
  using WithdrawnReplies = std::map<std::string, std::shared_ptr<const std::vector<std::int64_t>>>;
  struct PendingTurn;
  // What one batch answers with.
  struct Serving {
    std::shared_ptr<LiveModels> live;
    std::shared_ptr<LiveModels> trial;  // null: no trial
    double trial_share = 0;
    std::shared_ptr<LiveModels> shadow;  // null: no shadow
    double shadow_share = 0;
    WithdrawnReplies withdrawn;
    // The pool replies `models` must not offer (withdraw_replies), or null.
    std::shared_ptr<const std::vector<std::int64_t>> withdrawn_from(const LiveModels& models) const {
      const auto it = withdrawn.find(models.version);
      return it == withdrawn.end() ? nullptr : it->second;
    }
    const LiveModels& models_for(const Conversation& conversation) const;
    // The shadow that also answers the conversation's turns, or null.
    const LiveModels* shadow_for(const Conversation& conversation) const;
  };

  void run();
  std::vector<Job> take_batch(std::deque<Job>& pending) const;
  void process(std::vector<Job>& batch);
  void hello(const Job& job, const Serving& serving);
  void rate(const Job& job);
  // What the user says the bot could have said instead of an answer: an FB example.
  void suggest(const Job& job);
  // For rate and suggest: the turns from `from` on, once the message's turn is a bot turn
  // of the session's conversation (`answers_only`: an answer, not a request) and the
  // conversation and the user's address may teach; nullopt once the error is answered.
  std::optional<std::vector<Turn>> turns_to_teach_about(const Job& job, const Session& session, std::uint32_t from,
                                                        bool answers_only);
  void delete_conversation(const Job& job);
  // Reads from the store when `user_id` was asked for feedback in the last day, the first
  // time this server sees them (with a per-user limit).
  void remember_requests_of(const std::string& user_id);
  void reset(const Job& job);
  void answer_messages(std::vector<const Job*>& jobs, const LiveModels& models, const Serving& serving);
  // What the shadow would answer to each `answered` turn it sees (Serving::shadow_for), by
  // position in `turns` (`requests`: the live ranking's, one per turn with a reply context);
  // empty when it failed.
  std::vector<std::optional<ShadowReply>> shadow_replies(const std::vector<PendingTurn>& turns,
                                                         const std::vector<bool>& answered,
                                                         const std::vector<dialogue::RankRequest>& requests,
                                                         const Serving& serving);
  Session* session_for(const Job& job);
  // The conversation's persona, or the server's when it has none.
  const std::vector<std::string>& persona_of(const feedback::State& state) const;
  void send_error(const Job& job, std::string_view code, std::string_view message);
  void send_storage_error(const Job& job, const Status& status);

  const ChatEngineOptions options_;
  store::Store& store_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<LiveLabelModel> label_model_;
  std::unique_ptr<DriftMonitor> drift_;
  ReportedReplies reported_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::shared_ptr<LiveModels> models_;
  std::shared_ptr<LiveModels> trial_;  // null: no trial
  double trial_share_ = 0;
  std::shared_ptr<LiveModels> shadow_;  // null: no shadow
  double shadow_share_ = 0;
  WithdrawnReplies withdrawn_;  // withdraw_replies

  // Worker-thread state.
  std::unique_ptr<TeachingBudget> teaching_budget_;  // null: no limit
  std::unique_ptr<UserAskLimit> user_asks_;          // null: no limit
  std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;     // by connection id
  std::unordered_map<std::string, std::uint64_t> conversation_owner_;         // conversation id -> connection id
  std::function<void(const store::DeleteConversationReport&)> conversation_deleted_;
  std::thread worker_;
};

}  // namespace selffeed::app
