// How each model version did with the people it talked to, read from the store: the online
// half of "promote only what is measurably better" (the gate is the offline half). Shares
// come with a 95% interval from a bootstrap over conversations, since the turns of one
// conversation are not independent of each other.
//
// Only a trial (ModelManager::trial) compares two versions fairly: same weeks, users
// drawn at random. Two versions served one after the other also differ in who came when.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selffeed/common/status.h"
#include "selffeed/satisfaction/satisfaction.h"
#include "selffeed/store/store.h"

namespace selffeed::app {

struct Share {
  double value = 0;  // 0 when `of` is 0
  double low = 0;    // 95% interval
  double high = 0;
  std::uint64_t count = 0;
  std::uint64_t of = 0;
};

struct VersionReport {
  std::string version;
  std::string status;  // in the registry; empty when not registered
  std::uint64_t conversations = 0;
  // The bot's turns that answer the user (not its feedback requests, thanks or rating
  // requests): what thumbs and complaints are about.
  std::uint64_t answers = 0;
  Share asks;         // of all the bot's turns: those that ask what it should have said
  Share complaints;   // replies to its answers the paper's regexes call unsatisfied
  Share thumbs_down;  // per answer
  std::uint64_t thumbs_up = 0;
  // Answers users said the bot could have said otherwise (suggest; the turn's latest),
  // per answer: like thumbs, the answers users chose to correct.
  Share suggested;
  // Of the answers rated down (the rating that stands), how many for each reason users gave
  // (rate's "reason"; the others gave none), by reason name.
  std::map<std::string, std::uint64_t> dislike_reasons;
  // The mean P(satisfied) of replies to its answers, by the estimator each reply was
  // judged by (the version's own): comparable across versions only when they share one.
  std::optional<double> mean_satisfaction;
  // How well those estimates agree with the users' own thumbs, where a rated answer has a
  // judged reply: ROC-AUC of P(satisfied) for telling thumbs up from down (0.5: no better
  // than chance), absent until both kinds are there. A falling AUC says the estimator no
  // longer reads these users, whatever its offline numbers were.
  std::uint64_t thumbs_with_estimate = 0;
  std::optional<double> estimator_auc_vs_thumbs;
  // The same on the ratings the bot asked for (Turn::rating_request): a random sample of
  // the judged answers, where the thumbs users give of their own accord are the answers
  // that struck them. Its thumbs-down share reads how many answers users dislike, and the
  // AUC how well the estimator reads them, with no choice of the users' in between. A
  // rating the user gave before the request counts too: it is the drawn answer's rating
  // (leaving it out would leave out the answers that struck users most).
  Share requested_thumbs_down;  // of the requested ratings
  std::uint64_t requested_thumbs_with_estimate = 0;
  std::optional<double> estimator_auc_vs_requested_thumbs;
  // How far the estimates of those replies are from the share the users rated up, in five
  // bins of P(satisfied) (peers.md feature 9: the thumbs as the estimator's dev set); the
  // server's threshold reads the values, which AUC does not. Absent without such ratings.
  std::optional<satisfaction::Calibration> calibration_vs_requested_thumbs;
  // The gate of the self-feeding loop in the wild, on the same ratings: of those whose reply
  // the bot asked feedback on, the share rated down (precision of its feedback requests),
  // and of those rated down, the share it asked on (recall); the ConvAI2 table's precision
  // and recall of the unsatisfied class (EVALUATION.md), read from its decisions.
  Share feedback_request_precision;
  Share feedback_request_recall;
};

// `version` minus `against`: each share's difference, with its 95% interval.
struct Comparison {
  std::string version;
  std::string against;
  // value, low, high are differences; count and of unused
  Share asks, complaints, thumbs_down, suggested, requested_thumbs_down, feedback_request_precision,
      feedback_request_recall;
};

// How a version in shadow (ChatEngine::start_shadow) would have answered, beside the answers
// the users got on the same turns: paired, so no luck of who came when. The users reacted
// only to what they were shown, so it is read where they said what they wanted (their
// corrections) or how they liked the answer they got (their replies and thumbs).
struct ShadowReport {
  std::string version;
  std::string beside;  // the live version it answered beside (the latest, if several)
  std::uint64_t conversations = 0;
  std::uint64_t answers = 0;  // live answers it gave a reply beside
  Share same;                 // of those: its reply is the live answer
  // Answers the users corrected: they complained, were asked what the bot should have
  // said, and said it, or suggested another answer (the FB example; the latest of a turn's
  // suggestions). Mean token F1 of each reply with the correction.
  std::uint64_t corrected = 0;
  double live_f1 = 0;
  double shadow_f1 = 0;
  Share f1_gain;  // shadow minus live, with its 95% interval; count and of unused
  // Of the answers whose reply the estimator judged satisfied (an HB example was kept),
  // those up-rated and those down-rated: the share it would also have given.
  Share same_when_liked, same_when_thumbs_up, same_when_thumbs_down;
};

struct ModelReport {
  std::vector<VersionReport> versions;  // by first turn
  std::optional<Comparison> comparison;
  std::vector<ShadowReport> shadows;  // by first turn
};

struct ReportOptions {
  std::int64_t since_ms = 0;  // only turns and thumbs from this time on
  // Compared: `version` against `against`; empty: the version on trial against the live one.
  std::string version;
  std::string against;
  int resamples = 2000;
  std::uint64_t seed = 1;
  // The shadows' tables read every HB and FB example since `since_ms`: a scan of the
  // harvest that the trial judge, which reads only the versions, does without.
  bool shadows = true;
};

Result<ModelReport> report_models(const store::Store& store, const ReportOptions& options);

// The shares the comparison's version is worse in than the one it is compared against,
// with 95% confidence (the interval of the difference above 0), e.g. "thumbs down per
// answer +0.050 [+0.020, +0.080]"; empty when it is worse in none.
std::string worse_with_users(const Comparison& comparison);

// A bundle directory in the form the registry keeps it (ModelRecord::path): absolute and
// lexically normal, so that two spellings of one directory compare equal.
std::string registry_path(const std::string& bundle_dir);

// What the trust rule saw when the bundle at `bundle_dir` was trained: the trust.json that
// retraining on a store writes in the run directory, beside the bundle. kNotFound for a
// bundle trained without a store; kDataLoss when it is not a trust report (every teacher an
// object with a string "teacher" and a boolean "trusted").
Result<nlohmann::json> read_trust_report(const std::string& bundle_dir);
// The same for a registered version, with "version" added and the users deleted since left
// out (kNotFound also for an unknown version).
Result<nlohmann::json> trust_report(const store::Store& store, const std::string& version);

// The harvested snapshot a bundle pinned (lineage "harvested": "example_seqs",
// "snapshot_sha256"). `lineage_json` is a bundle's or registry record's lineage.
struct PinnedSnapshot {
  std::set<std::uint64_t> seqs;
  std::string sha256;  // empty for bundles trained before snapshots were pinned
};
// kNotFound when the lineage has no harvested examples (trained without a store);
// kInvalidArgument when it is not the JSON the trainer writes.
Result<PinnedSnapshot> pinned_snapshot(const std::string& lineage_json);

// The registered versions trained on any of the examples `seqs` (ascending): those whose
// lineage lists one among the harvested examples it used, and every version fine-tuned
// from one of them, however many steps removed (its lineage's `fine_tuned_from` is the
// parent's bundle directory). In registry order.
std::vector<std::string> versions_trained_on(const std::vector<ModelRecord>& models,
                                             const std::vector<std::uint64_t>& seqs);

// The versions of `models` (the registry, and any bundle not registered yet as if it
// were) that learned from a deleted user's examples: versions_trained_on the store's
// deleted_examples. What the store forgot lives on in their weights, and in their
// candidate pools as the users' own words.
Result<std::set<std::string>> learned_from_deleted_users(const store::Store& store,
                                                        const std::vector<ModelRecord>& models);

// The registered version of `bundle_dir`, or else the first up its fine-tuning chain
// (lineage `fine_tuned_from`, step by step) that is not among `tainted`: what retraining
// starts from once the live model learned from deleted users. kNotFound when the chain
// leaves the registry or ends before one.
Result<ModelRecord> newest_clean_ancestor(const std::vector<ModelRecord>& models, const std::string& bundle_dir,
                                          const std::set<std::string>& tainted);

nlohmann::json to_json(const ModelReport& report);
// Markdown tables.
std::string to_markdown(const ModelReport& report);

}  // namespace selffeed::app
