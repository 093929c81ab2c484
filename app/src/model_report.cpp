#include "model_report.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>

#include "selffeed/common/context.h"
#include "selffeed/feedback/policy.h"
#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::app {
namespace {

using nlohmann::json;

// What one conversation did with one version: the unit the bootstrap draws.
struct Tally {
  std::uint64_t bot_turns = 0;
  std::uint64_t answers = 0;  // bot turns that answer (not feedback requests, thanks or rating requests)
  std::uint64_t asks = 0;
  std::uint64_t replies = 0;
  std::uint64_t complaints = 0;
  std::uint64_t thumbs_down = 0;
  std::uint64_t thumbs_up = 0;
  std::uint64_t suggested = 0;  // answers users said the bot could have bettered (suggest)
  std::uint64_t requested_ratings = 0;  // thumbs on answers the bot asked the user to rate
  std::uint64_t requested_thumbs_down = 0;
  std::uint64_t requested_asked = 0;       // of those, the ones whose reply the bot asked feedback on
  std::uint64_t requested_down_asked = 0;  // and rated down
  std::uint64_t judged = 0;  // replies with a satisfaction estimate
  double satisfaction = 0;   // their sum
  std::map<DislikeReason, std::uint64_t> dislike_reasons;  // of the answers whose rating that stands is down
};

struct VersionData {
  std::int64_t first_ms = 0;
  std::vector<Tally> tallies;
  std::unordered_map<std::string, std::size_t> by_conversation;

  Tally& of(const std::string& conversation_id, std::int64_t time_ms) {
    if (tallies.empty() || time_ms < first_ms) first_ms = time_ms;
    auto [it, added] = by_conversation.try_emplace(conversation_id, tallies.size());
    if (added) tallies.emplace_back();
    return tallies[it->second];
  }
};

void add(Tally& sum, const Tally& t) {
  for (auto f : {&Tally::bot_turns, &Tally::answers, &Tally::asks, &Tally::replies, &Tally::complaints,
                 &Tally::thumbs_down, &Tally::thumbs_up, &Tally::suggested, &Tally::requested_ratings,
                 &Tally::requested_thumbs_down,
                 &Tally::requested_asked, &Tally::requested_down_asked, &Tally::judged}) {
    sum.*f += t.*f;
  }
  sum.satisfaction += t.satisfaction;
  for (const auto& [reason, count] : t.dislike_reasons) sum.dislike_reasons[reason] += count;
}

using Field = std::uint64_t Tally::*;
struct ShareFields {
  Field count, of;
};
constexpr ShareFields kAsks{&Tally::asks, &Tally::bot_turns};
constexpr ShareFields kComplaints{&Tally::complaints, &Tally::replies};
constexpr ShareFields kThumbsDown{&Tally::thumbs_down, &Tally::answers};
constexpr ShareFields kSuggested{&Tally::suggested, &Tally::answers};
constexpr ShareFields kRequestedThumbsDown{&Tally::requested_thumbs_down, &Tally::requested_ratings};
constexpr ShareFields kFeedbackRequestPrecision{&Tally::requested_down_asked, &Tally::requested_asked};
constexpr ShareFields kFeedbackRequestRecall{&Tally::requested_down_asked, &Tally::requested_thumbs_down};
constexpr ShareFields kShares[] = {kAsks,           kComplaints, kThumbsDown, kSuggested, kRequestedThumbsDown,
                                   kFeedbackRequestPrecision, kFeedbackRequestRecall};
constexpr std::size_t kShareCount = std::size(kShares);
using Shares = std::array<double, kShareCount>;
// Each share's place in VersionReport and Comparison, in kShares order.
constexpr Share VersionReport::*kVersionShares[] = {&VersionReport::asks, &VersionReport::complaints,
                                                    &VersionReport::thumbs_down, &VersionReport::suggested,
                                                    &VersionReport::requested_thumbs_down,
                                                    &VersionReport::feedback_request_precision,
                                                    &VersionReport::feedback_request_recall};
constexpr Share Comparison::*kComparisonShares[] = {&Comparison::asks, &Comparison::complaints,
                                                    &Comparison::thumbs_down, &Comparison::suggested,
                                                    &Comparison::requested_thumbs_down,
                                                    &Comparison::feedback_request_precision,
                                                    &Comparison::feedback_request_recall};

double ratio(std::uint64_t count, std::uint64_t of) {
  return of == 0 ? 0.0 : static_cast<double>(count) / static_cast<double>(of);
}

// The shares of each resample of the conversations, in kShares order.
std::vector<Shares> resampled_shares(const std::vector<Tally>& tallies, const ReportOptions& options,
                                     std::mt19937_64& rng) {
  std::vector<Shares> out;
  if (tallies.empty()) return out;
  std::uniform_int_distribution<std::size_t> pick(0, tallies.size() - 1);
  for (int r = 0; r < options.resamples; ++r) {
    Tally sum;
    for (std::size_t i = 0; i < tallies.size(); ++i) add(sum, tallies[pick(rng)]);
    Shares shares{};
    for (std::size_t k = 0; k < kShareCount; ++k) shares[k] = ratio(sum.*kShares[k].count, sum.*kShares[k].of);
    out.push_back(shares);
  }
  return out;
}

// The tallies in conversation-id order, so that the bootstrap draws the same resamples
// from the same conversations whatever order they were stored in.
template <class Tally, class Index>
std::vector<Tally> in_id_order(const std::vector<Tally>& tallies, const Index& by_conversation) {
  std::vector<std::pair<std::string, std::size_t>> ids(by_conversation.begin(), by_conversation.end());
  std::sort(ids.begin(), ids.end());
  std::vector<Tally> out;
  out.reserve(ids.size());
  for (const auto& [id, i] : ids) out.push_back(tallies[i]);
  return out;
}

// The 2.5th and 97.5th percentiles.
std::pair<double, double> interval(std::vector<double> values) {
  if (values.empty()) return {0, 0};
  std::sort(values.begin(), values.end());
  auto at = [&](double q) { return values[static_cast<std::size_t>(q * static_cast<double>(values.size() - 1))]; };
  return {at(0.025), at(0.975)};
}

std::string format_share(const Share& s) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%.3f [%.3f, %.3f] (%llu/%llu)", s.value, s.low, s.high,
                static_cast<unsigned long long>(s.count), static_cast<unsigned long long>(s.of));
  return buffer;
}

std::string format_difference(const Share& s) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%+.3f [%+.3f, %+.3f]", s.value, s.low, s.high);
  return buffer;
}

// Three decimals, or "-" when absent.
std::string format_optional(std::optional<double> value) {
  if (!value) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", *value);
  return buffer;
}

json share_json(const Share& s) {
  return {{"value", s.value}, {"low", s.low}, {"high", s.high}, {"count", s.count}, {"of", s.of}};
}

json difference_json(const Share& s) { return {{"value", s.value}, {"low", s.low}, {"high", s.high}}; }

json calibration_json(const std::optional<satisfaction::Calibration>& c) {
  if (!c) return nullptr;
  json bins = json::array();
  for (const satisfaction::CalibrationBin& b : c->bins) {
    bins.push_back({{"low", b.low}, {"high", b.high}, {"ratings", b.examples}, {"mean_estimate", b.mean_score},
                    {"up_share", b.satisfied_share}});
  }
  return {{"expected_error", c->expected_error}, {"bins", bins}};
}

struct Thumb {
  std::string conversation_id;
  std::string version;
  bool up = false;
  bool requested = false;       // the bot asked for it (Turn::rating_request)
  bool feedback_asked = false;  // the bot asked what it should have said, after the reply to the answer
  std::optional<double> reply_estimate;
};
using TurnKey = std::pair<std::string, std::int64_t>;  // (conversation, turn)

// A live answer with the shadow's reply beside it.
struct ShadowedAnswer {
  TurnKey turn;
  std::string live_version;
  std::string live_text;
  ShadowReply shadow;
  std::int64_t time_ms = 0;
};

// What one conversation's shadowed answers did: the unit the bootstrap draws.
struct ShadowTally {
  std::uint64_t answers = 0, same = 0;
  std::uint64_t corrected = 0;
  double live_f1 = 0, shadow_f1 = 0;  // sums over the corrected
  std::uint64_t liked = 0, same_liked = 0, up = 0, same_up = 0, down = 0, same_down = 0;

  void add(const ShadowTally& t) {
    for (auto f : {&ShadowTally::answers, &ShadowTally::same, &ShadowTally::corrected, &ShadowTally::liked,
                   &ShadowTally::same_liked, &ShadowTally::up, &ShadowTally::same_up, &ShadowTally::down,
                   &ShadowTally::same_down}) {
      this->*f += t.*f;
    }
    live_f1 += t.live_f1;
    shadow_f1 += t.shadow_f1;
  }
  // same, f1 gain, same when liked, same when thumbs up, same when thumbs down
  std::array<double, 5> values() const {
    const double gain = corrected == 0 ? 0.0 : (shadow_f1 - live_f1) / static_cast<double>(corrected);
    return {ratio(same, answers), gain, ratio(same_liked, liked), ratio(same_up, up), ratio(same_down, down)};
  }
};

// The shadows' reports from their answers, with the users' corrections (FB examples) and
// liked replies (HB examples) read from the store.
Result<std::vector<ShadowReport>> shadow_reports(const store::Store& store, const ReportOptions& options,
                                                 const std::vector<ShadowedAnswer>& answers,
                                                 const std::vector<Thumb>& thumbs,
                                                 const std::map<TurnKey, std::size_t>& thumbs_on) {
  std::vector<ShadowReport> out;
  if (answers.empty()) return out;
  // An HB example is kept at the user's reply to the answer; corrections (FB examples) are
  // kept by the answer they correct, the latest.
  std::set<TurnKey> liked;
  std::map<TurnKey, std::string> corrections;
  for (ExampleKind kind : {ExampleKind::kHB, ExampleKind::kFB}) {
    SELFFEED_RETURN_IF_ERROR(store.scan_examples(kind, 0, [&](const Example& e) {
      if (e.created_ms < options.since_ms || e.conversation_id.empty()) return true;
      if (kind == ExampleKind::kHB) liked.insert({e.conversation_id, e.turn_index});
      if (kind == ExampleKind::kFB) {
        corrections[{e.conversation_id, feedback::corrected_answer_turn(e)}] = e.target;
      }
      return true;
    }));
  }
  struct Data {
    std::int64_t first_ms = 0;
    std::string beside;
    std::int64_t beside_ms = 0;
    std::vector<ShadowTally> tallies;
    std::map<std::string, std::size_t> by_conversation;
  };
  std::map<std::string, Data> data;
  for (const ShadowedAnswer& a : answers) {
    Data& d = data[a.shadow.version];
    if (d.tallies.empty() || a.time_ms < d.first_ms) d.first_ms = a.time_ms;
    if (a.time_ms >= d.beside_ms) {
      d.beside = a.live_version;
      d.beside_ms = a.time_ms;
    }
    auto [it, added] = d.by_conversation.try_emplace(a.turn.first, d.tallies.size());
    if (added) d.tallies.emplace_back();
    ShadowTally& t = d.tallies[it->second];
    const std::uint64_t same = a.shadow.text == a.live_text ? 1 : 0;
    ++t.answers;
    t.same += same;
    if (liked.count({a.turn.first, a.turn.second + 1})) {
      ++t.liked;
      t.same_liked += same;
    }
    if (auto rated = thumbs_on.find(a.turn); rated != thumbs_on.end()) {
      const bool up = thumbs[rated->second].up;
      ++(up ? t.up : t.down);
      (up ? t.same_up : t.same_down) += same;
    }
    if (auto correction = corrections.find(a.turn); correction != corrections.end()) {
      ++t.corrected;
      t.live_f1 += token_f1(a.live_text, correction->second);
      t.shadow_f1 += token_f1(a.shadow.text, correction->second);
    }
  }
  std::mt19937_64 rng(options.seed);
  for (auto& [version, d] : data) {
    ShadowTally sum;
    for (const ShadowTally& t : d.tallies) sum.add(t);
    std::vector<std::array<double, 5>> draws;
    const std::vector<ShadowTally> tallies = in_id_order(d.tallies, d.by_conversation);
    std::uniform_int_distribution<std::size_t> pick(0, tallies.size() - 1);
    for (int r = 0; r < options.resamples; ++r) {
      ShadowTally resampled;
      for (std::size_t i = 0; i < tallies.size(); ++i) resampled.add(tallies[pick(rng)]);
      draws.push_back(resampled.values());
    }
    ShadowReport report;
    report.version = version;
    report.beside = d.beside;
    report.conversations = d.tallies.size();
    report.answers = sum.answers;
    report.corrected = sum.corrected;
    if (sum.corrected > 0) {
      report.live_f1 = sum.live_f1 / static_cast<double>(sum.corrected);
      report.shadow_f1 = sum.shadow_f1 / static_cast<double>(sum.corrected);
    }
    const std::array<double, 5> values = sum.values();
    const std::pair<std::uint64_t, std::uint64_t> counts[] = {
        {sum.same, sum.answers}, {0, 0}, {sum.same_liked, sum.liked}, {sum.same_up, sum.up}, {sum.same_down, sum.down}};
    Share* shares[] = {&report.same, &report.f1_gain, &report.same_when_liked, &report.same_when_thumbs_up,
                       &report.same_when_thumbs_down};
    for (std::size_t k = 0; k < 5; ++k) {
      shares[k]->value = values[k];
      std::tie(shares[k]->count, shares[k]->of) = counts[k];
      std::vector<double> at_k;
      for (const auto& draw : draws) at_k.push_back(draw[k]);
      std::tie(shares[k]->low, shares[k]->high) = interval(std::move(at_k));
    }
    out.push_back(std::move(report));
  }
  std::stable_sort(out.begin(), out.end(), [&](const ShadowReport& a, const ShadowReport& b) {
    return data[a.version].first_ms < data[b.version].first_ms;
  });
  return out;
}

}  // namespace

Result<ModelReport> report_models(const store::Store& store, const ReportOptions& options) {
  // The thumbs first (few beside the turns), so that the scan of the transcripts can find
  // the estimate of the reply to each rated answer.
  // A user who changed their mind rated a turn twice: the later rating (seq order) stands.
  std::vector<Thumb> thumbs;
  std::map<TurnKey, std::size_t> thumbs_on;
  SELFFEED_RETURN_IF_ERROR(store.scan_examples(ExampleKind::kST, 0, [&](const Example& e) {
    if (e.source != kFromThumbs || e.created_ms < options.since_ms) return true;
    Thumb thumb{.conversation_id = e.conversation_id, .version = e.model_version, .up = e.target == "1"};
    auto [on, added] = thumbs_on.try_emplace({e.conversation_id, e.turn_index}, thumbs.size());
    if (added) {
      thumbs.push_back(std::move(thumb));
    } else {
      thumbs[on->second] = std::move(thumb);
    }
    return true;
  }));

  std::map<std::string, VersionData> data;
  std::vector<ShadowedAnswer> shadowed;
  store::TranscriptFilter filter;
  if (options.since_ms > 0) filter.updated_after_ms = options.since_ms - 1;
  SELFFEED_RETURN_IF_ERROR(store.scan_transcripts(filter, [&](const Conversation& c, const std::vector<Turn>& turns) {
    for (std::size_t i = 0; i < turns.size(); ++i) {
      const Turn& bot = turns[i];
      if (bot.speaker != Speaker::kBot || bot.time_ms < options.since_ms) continue;
      Tally& t = data[bot.model_version].of(c.id, bot.time_ms);
      ++t.bot_turns;
      if (bot.phase == Phase::kFeedbackRequested) ++t.asks;
      // Thumbs and complaints are about answers: counted against the bot's other turns, a
      // version that makes people complain more (so asks and thanks more) would look better.
      if (bot.phase != Phase::kNormal) continue;
      ++t.answers;
      if (bot.suggestion) ++t.suggested;
      if (bot.thumbs_up && !*bot.thumbs_up && bot.dislike_reason) ++t.dislike_reasons[*bot.dislike_reason];
      if (bot.shadow) shadowed.push_back({{c.id, bot.index}, bot.model_version, bot.text, *bot.shadow, bot.time_ms});
      if (i + 1 == turns.size() || turns[i + 1].speaker != Speaker::kUser) continue;
      const Turn& reply = turns[i + 1];
      ++t.replies;
      if (satisfaction::paper_regex_unsatisfied(reply.text)) ++t.complaints;
      if (reply.satisfaction) {
        ++t.judged;
        t.satisfaction += *reply.satisfaction;
        auto rated = thumbs_on.find({c.id, static_cast<std::int64_t>(bot.index)});
        if (rated != thumbs_on.end()) {
          const bool requested = i + 2 < turns.size() && turns[i + 2].rating_request == bot.index;
          const bool asked = i + 2 < turns.size() && turns[i + 2].phase == Phase::kFeedbackRequested;
          Thumb& thumb = thumbs[rated->second];
          thumb.feedback_asked = asked;
          thumb.reply_estimate = reply.satisfaction;
          thumb.requested = requested;
        }
      }
    }
    return true;
  }));
  struct Agreement {
    std::vector<double> estimates;
    std::vector<int> thumbs_up;
    void add(double estimate, bool up) {
      estimates.push_back(estimate);
      thumbs_up.push_back(up ? 1 : 0);
    }
    // ROC-AUC of P(satisfied) for telling thumbs up from down, once both are there.
    std::optional<double> auc() const {
      const auto ups = std::count(thumbs_up.begin(), thumbs_up.end(), 1);
      if (ups == 0 || ups == static_cast<std::ptrdiff_t>(thumbs_up.size())) return std::nullopt;
      // evaluate_binary's AUC is that of 1 - P(satisfied) for finding the unsatisfied.
      return satisfaction::evaluate_binary(estimates, thumbs_up, 0.5).auc;
    }
  };
  std::map<std::string, Agreement> agreement, requested_agreement;
  for (const Thumb& thumb : thumbs) {
    auto version = data.find(thumb.version);
    if (version == data.end()) continue;
    auto conversation = version->second.by_conversation.find(thumb.conversation_id);
    if (conversation == version->second.by_conversation.end()) continue;  // its turns are before since_ms
    Tally& t = version->second.tallies[conversation->second];
    ++(thumb.up ? t.thumbs_up : t.thumbs_down);
    if (thumb.requested) {
      ++t.requested_ratings;
      if (!thumb.up) ++t.requested_thumbs_down;
      if (thumb.feedback_asked) ++t.requested_asked;
      if (thumb.feedback_asked && !thumb.up) ++t.requested_down_asked;
    }
    if (thumb.reply_estimate) {
      agreement[thumb.version].add(*thumb.reply_estimate, thumb.up);
      if (thumb.requested) requested_agreement[thumb.version].add(*thumb.reply_estimate, thumb.up);
    }
  }
  SELFFEED_ASSIGN_OR_RETURN(auto models, store.list_models());
  std::map<std::string, std::string> status;
  for (const ModelRecord& m : models) status[m.version] = std::string(model_status_name(m.status));

  ModelReport report;
  std::mt19937_64 rng(options.seed);
  std::map<std::string, std::vector<Shares>> resampled;
  for (const auto& [version, d] : data) {
    VersionReport v;
    v.version = version;
    v.status = status.count(version) ? status[version] : "";
    v.conversations = d.tallies.size();
    Tally sum;
    for (const Tally& t : d.tallies) add(sum, t);
    v.answers = sum.answers;
    v.thumbs_up = sum.thumbs_up;
    for (const auto& [reason, count] : sum.dislike_reasons) {
      v.dislike_reasons[std::string(dislike_reason_name(reason))] = count;
    }
    if (sum.judged > 0) v.mean_satisfaction = sum.satisfaction / static_cast<double>(sum.judged);
    if (auto a = agreement.find(version); a != agreement.end()) {
      v.thumbs_with_estimate = a->second.estimates.size();
      v.estimator_auc_vs_thumbs = a->second.auc();
    }
    if (auto a = requested_agreement.find(version); a != requested_agreement.end()) {
      v.requested_thumbs_with_estimate = a->second.estimates.size();
      v.estimator_auc_vs_requested_thumbs = a->second.auc();
      v.calibration_vs_requested_thumbs = satisfaction::calibration(a->second.estimates, a->second.thumbs_up);
    }
    const auto draws = resampled_shares(in_id_order(d.tallies, d.by_conversation), options, rng);
    for (std::size_t k = 0; k < kShareCount; ++k) {
      Share& s = v.*kVersionShares[k];
      s.count = sum.*kShares[k].count;
      s.of = sum.*kShares[k].of;
      s.value = ratio(s.count, s.of);
      std::vector<double> values;
      for (const auto& draw : draws) values.push_back(draw[k]);
      std::tie(s.low, s.high) = interval(std::move(values));
    }
    resampled[version] = draws;
    report.versions.push_back(std::move(v));
  }
  std::stable_sort(report.versions.begin(), report.versions.end(), [&](const VersionReport& a, const VersionReport& b) {
    return data[a.version].first_ms < data[b.version].first_ms;
  });

  auto with_status = [&](std::string_view wanted) {
    for (const VersionReport& v : report.versions) {
      if (v.status == wanted) return v.version;
    }
    return std::string();
  };
  const std::string version = options.version.empty() ? with_status("trial") : options.version;
  const std::string against = options.against.empty() ? with_status("live") : options.against;
  if (!options.version.empty() && !data.count(version)) {
    return not_found_error("no turns of version '" + version + "' in the store");
  }
  if (!options.against.empty() && !data.count(against)) {
    return not_found_error("no turns of version '" + against + "' in the store");
  }
  if (!version.empty() && !against.empty() && version != against) {
    Comparison c{version, against};
    const VersionReport* a = nullptr;
    const VersionReport* b = nullptr;
    for (const VersionReport& v : report.versions) {
      if (v.version == version) a = &v;
      if (v.version == against) b = &v;
    }
    const auto& draws_a = resampled[version];
    const auto& draws_b = resampled[against];
    for (std::size_t k = 0; k < kShareCount; ++k) {
      Share& difference = c.*kComparisonShares[k];
      difference.value = (a->*kVersionShares[k]).value - (b->*kVersionShares[k]).value;
      std::vector<double> values;  // the two groups' draws are independent: pair them by index
      for (std::size_t r = 0; r < std::min(draws_a.size(), draws_b.size()); ++r) {
        values.push_back(draws_a[r][k] - draws_b[r][k]);
      }
      std::tie(difference.low, difference.high) = interval(std::move(values));
    }
    report.comparison = std::move(c);
  }
  if (options.shadows) {
    SELFFEED_ASSIGN_OR_RETURN(report.shadows, shadow_reports(store, options, shadowed, thumbs, thumbs_on));
  }
  return report;
}

std::string registry_path(const std::string& bundle_dir) {
  std::error_code ec;
  return std::filesystem::absolute(bundle_dir, ec).lexically_normal().string();
}

Result<json> read_trust_report(const std::string& bundle_dir) {
  std::filesystem::path bundle(bundle_dir);
  if (!bundle.has_filename()) bundle = bundle.parent_path();  // "run/bundle/"
  const std::filesystem::path file = bundle.parent_path() / "trust.json";
  std::ifstream in(file);
  if (!in) {
    return not_found_error("no trust.json beside the bundle (" + file.string() +
                           "): it was not trained on a store's harvest");
  }
  json report = json::parse(in, nullptr, /*allow_exceptions=*/false);
  const auto is_teacher = [](const json& t) {
    return t.is_object() && t.contains("teacher") && t["teacher"].is_string() && t.contains("trusted") &&
           t["trusted"].is_boolean();
  };
  if (!report.is_object() || !report.contains("teachers") || !report["teachers"].is_array() ||
      !std::ranges::all_of(report["teachers"], is_teacher)) {
    return data_loss_error(file.string() + " is not a trust report");
  }
  return report;
}

Result<json> trust_report(const store::Store& store, const std::string& version) {
  SELFFEED_ASSIGN_OR_RETURN(const ModelRecord record, store.get_model(version));
  auto read = read_trust_report(record.path);
  if (!read.ok()) return read.status().with_context("version " + version);
  json report = std::move(*read);
  // A user deleted since the run is not named again.
  json teachers = json::array();
  for (json& t : report["teachers"]) {
    SELFFEED_ASSIGN_OR_RETURN(const bool deleted, store.is_user_deleted(t["teacher"].get<std::string>()));
    if (!deleted) teachers.push_back(std::move(t));
  }
  report["teachers"] = std::move(teachers);
  report["version"] = version;
  return report;
}

namespace {

// pinned_snapshot of a lineage already parsed (an object).
Result<PinnedSnapshot> pinned_snapshot_of(const json& lineage) {
  const auto harvested = lineage.find("harvested");
  if (harvested == lineage.end()) return not_found_error("the lineage names no harvested examples");
  const auto seqs = harvested->find("example_seqs");
  if (!harvested->is_object() || seqs == harvested->end() || !seqs->is_array()) {
    return invalid_argument_error("the lineage's \"harvested\" has no \"example_seqs\" list");
  }
  PinnedSnapshot pinned;
  for (const json& seq : *seqs) {
    if (!seq.is_number_unsigned()) return invalid_argument_error("an example seq in the lineage is not a number");
    pinned.seqs.insert(seq.get<std::uint64_t>());
  }
  if (auto sha = harvested->find("snapshot_sha256"); sha != harvested->end() && sha->is_string()) {
    pinned.sha256 = sha->get<std::string>();
  }
  return pinned;
}

// The bundle a lineage was fine-tuned from, as a registry path; empty when none.
std::string parent_path_of(const json& lineage) {
  if (!lineage.is_object()) return "";
  auto from = lineage.find("fine_tuned_from");
  return from != lineage.end() && from->is_string() ? registry_path(from->get<std::string>()) : "";
}

}  // namespace

Result<PinnedSnapshot> pinned_snapshot(const std::string& lineage_json) {
  const json lineage = json::parse(lineage_json, nullptr, /*allow_exceptions=*/false);
  if (!lineage.is_object()) return invalid_argument_error("the lineage is not a JSON object");
  return pinned_snapshot_of(lineage);
}

std::vector<std::string> versions_trained_on(const std::vector<ModelRecord>& models,
                                             const std::vector<std::uint64_t>& seqs) {
  std::vector<bool> trained(models.size(), false);
  std::vector<std::string> parent(models.size());  // fine_tuned_from, normalised
  std::map<std::string, std::size_t> by_path;
  for (std::size_t i = 0; i < models.size(); ++i) {
    by_path[registry_path(models[i].path)] = i;
    const json lineage = json::parse(models[i].lineage_json, nullptr, false);
    if (!lineage.is_object()) continue;
    parent[i] = parent_path_of(lineage);
    const Result<PinnedSnapshot> used = pinned_snapshot_of(lineage);
    if (!used.ok()) continue;
    trained[i] = std::any_of(seqs.begin(), seqs.end(), [&](std::uint64_t seq) { return used->seqs.contains(seq); });
  }
  // Down the fine-tuning chains: one pass per generation at most.
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < models.size(); ++i) {
      auto from = parent[i].empty() ? by_path.end() : by_path.find(parent[i]);
      if (!trained[i] && from != by_path.end() && trained[from->second]) trained[i] = changed = true;
    }
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < models.size(); ++i) {
    if (trained[i]) out.push_back(models[i].version);
  }
  return out;
}

Result<std::set<std::string>> learned_from_deleted_users(const store::Store& store,
                                                        const std::vector<ModelRecord>& models) {
  SELFFEED_ASSIGN_OR_RETURN(const store::DeletedExamples deleted, store.deleted_examples());
  if (deleted.seqs.empty()) return std::set<std::string>();
  const std::vector<std::string> trained = versions_trained_on(models, deleted.seqs);
  return std::set<std::string>(trained.begin(), trained.end());
}

Result<ModelRecord> newest_clean_ancestor(const std::vector<ModelRecord>& models, const std::string& bundle_dir,
                                          const std::set<std::string>& tainted) {
  std::string path = registry_path(bundle_dir);
  // One step a registered version at most: a lineage that loops ends there.
  for (std::size_t step = 0; step <= models.size(); ++step) {
    auto record = std::find_if(models.begin(), models.end(),
                               [&](const ModelRecord& m) { return registry_path(m.path) == path; });
    if (record == models.end()) break;
    if (!tainted.contains(record->version)) return *record;
    path = parent_path_of(json::parse(record->lineage_json, nullptr, false));
    if (path.empty()) break;
  }
  return not_found_error("no version that " + bundle_dir +
                         " was fine-tuned from, step by step through the registry, is free of deleted users' examples");
}

std::string worse_with_users(const Comparison& c) {
  std::string out;
  for (const auto& [name, share] : {std::pair<const char*, const Share*>{"asks", &c.asks},
                                    {"complaints", &c.complaints},
                                    {"thumbs down per answer", &c.thumbs_down}}) {
    if (share->low <= 0) continue;
    out += (out.empty() ? "" : ", ") + std::string(name) + " " + format_difference(*share);
  }
  return out;
}

json to_json(const ModelReport& report) {
  json versions = json::array();
  for (const VersionReport& v : report.versions) {
    versions.push_back({{"version", v.version},
                        {"status", v.status},
                        {"conversations", v.conversations},
                        {"answers", v.answers},
                        {"asks", share_json(v.asks)},
                        {"complaints", share_json(v.complaints)},
                        {"thumbs_down_per_answer", share_json(v.thumbs_down)},
                        {"thumbs_up", v.thumbs_up},
                        {"suggested_per_answer", share_json(v.suggested)},
                        {"dislike_reasons", v.dislike_reasons},
                        {"mean_satisfaction", v.mean_satisfaction ? json(*v.mean_satisfaction) : json(nullptr)},
                        {"thumbs_with_estimate", v.thumbs_with_estimate},
                        {"estimator_auc_vs_thumbs",
                         v.estimator_auc_vs_thumbs ? json(*v.estimator_auc_vs_thumbs) : json(nullptr)},
                        {"requested_thumbs_down", share_json(v.requested_thumbs_down)},
                        {"requested_thumbs_with_estimate", v.requested_thumbs_with_estimate},
                        {"estimator_auc_vs_requested_thumbs", v.estimator_auc_vs_requested_thumbs
                                                                  ? json(*v.estimator_auc_vs_requested_thumbs)
                                                                  : json(nullptr)},
                        {"calibration_vs_requested_thumbs", calibration_json(v.calibration_vs_requested_thumbs)},
                        {"feedback_request_precision", share_json(v.feedback_request_precision)},
                        {"feedback_request_recall", share_json(v.feedback_request_recall)}});
  }
  json out = {{"versions", versions}, {"comparison", nullptr}};
  if (const auto& c = report.comparison) {
    out["comparison"] = {{"version", c->version},
                         {"against", c->against},
                         {"asks", difference_json(c->asks)},
                         {"complaints", difference_json(c->complaints)},
                         {"thumbs_down_per_answer", difference_json(c->thumbs_down)},
                         {"suggested_per_answer", difference_json(c->suggested)},
                         {"requested_thumbs_down", difference_json(c->requested_thumbs_down)},
                         {"feedback_request_precision", difference_json(c->feedback_request_precision)},
                         {"feedback_request_recall", difference_json(c->feedback_request_recall)}};
  }
  out["shadows"] = json::array();
  for (const ShadowReport& r : report.shadows) {
    out["shadows"].push_back({{"version", r.version},
                              {"beside", r.beside},
                              {"conversations", r.conversations},
                              {"answers", r.answers},
                              {"same", share_json(r.same)},
                              {"corrected", r.corrected},
                              {"live_f1_with_correction", r.live_f1},
                              {"shadow_f1_with_correction", r.shadow_f1},
                              {"f1_gain", difference_json(r.f1_gain)},
                              {"same_when_liked", share_json(r.same_when_liked)},
                              {"same_when_thumbs_up", share_json(r.same_when_thumbs_up)},
                              {"same_when_thumbs_down", share_json(r.same_when_thumbs_down)}});
  }
  return out;
}

std::string to_markdown(const ModelReport& report) {
  std::string out =
      "| version | status | conversations | answers | asks for feedback | complaints (paper regexes) | "
      "thumbs down per answer | thumbs up | answers suggested instead | mean P(satisfied) | estimate vs thumbs: "
      "AUC (rated replies) | thumbs down of requested ratings | estimate vs requested thumbs: AUC (rated replies) |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const VersionReport& v : report.versions) {
    out += "| " + v.version + " | " + (v.status.empty() ? "-" : v.status) + " | " + std::to_string(v.conversations) +
           " | " + std::to_string(v.answers) + " | " + format_share(v.asks) + " | " + format_share(v.complaints) +
           " | " + format_share(v.thumbs_down) + " | " + std::to_string(v.thumbs_up) + " | " +
           format_share(v.suggested) + " | " + format_optional(v.mean_satisfaction) + " | " + format_optional(v.estimator_auc_vs_thumbs) + " (" +
           std::to_string(v.thumbs_with_estimate) + ") | " + format_share(v.requested_thumbs_down) + " | " +
           format_optional(v.estimator_auc_vs_requested_thumbs) + " (" +
           std::to_string(v.requested_thumbs_with_estimate) + ") |\n";
  }
  if (const auto& c = report.comparison) {
    out += "\n" + c->version + " minus " + c->against + " (95% interval): asks " + format_difference(c->asks) +
           ", complaints " + format_difference(c->complaints) + ", thumbs down per answer " +
           format_difference(c->thumbs_down) + ", answers suggested instead " + format_difference(c->suggested) +
           ", thumbs down of requested ratings " +
           format_difference(c->requested_thumbs_down) + ", feedback requests' precision " +
           format_difference(c->feedback_request_precision) + " and recall " +
           format_difference(c->feedback_request_recall) + " against them\n";
  }
  for (const VersionReport& v : report.versions) {
    if (v.dislike_reasons.empty()) continue;
    std::string reasons;
    for (const auto& [reason, count] : v.dislike_reasons) {
      reasons += (reasons.empty() ? "" : ", ") + reason + " " + std::to_string(count);
    }
    out += "\nWhy users rated answers of " + v.version + " down, where they said: " + reasons + " (of " +
           std::to_string(v.thumbs_down.count) + " thumbs down)\n";
  }
  for (const VersionReport& v : report.versions) {
    if (!v.calibration_vs_requested_thumbs) continue;
    char error[32];
    std::snprintf(error, sizeof error, "%.3f", v.calibration_vs_requested_thumbs->expected_error);
    out += "\nFeedback requests of " + v.version + " against the requested thumbs: precision " +
           format_share(v.feedback_request_precision) + ", recall " + format_share(v.feedback_request_recall) + "\n";
    out += "\nEstimates of " + v.version + " against the requested thumbs (expected calibration error " + error +
           "):\n\n| P(satisfied) | rated replies | mean estimate | thumbs up |\n|---|---:|---:|---:|\n";
    for (const satisfaction::CalibrationBin& b : v.calibration_vs_requested_thumbs->bins) {
      char row[128];
      std::snprintf(row, sizeof row, "| %.1f-%.1f | %zu | %.3f | %.3f |\n", b.low, b.high, b.examples, b.mean_score,
                    b.satisfied_share);
      out += row;
    }
  }
  if (report.shadows.empty()) return out;
  out +=
      "\n| in shadow | beside | conversations | answers | same answer | corrected | token F1 with the correction: "
      "live / shadow | shadow minus live | same when liked | same when thumbs up | same when thumbs down |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const ShadowReport& r : report.shadows) {
    out += "| " + r.version + " | " + r.beside + " | " + std::to_string(r.conversations) + " | " +
           std::to_string(r.answers) + " | " + format_share(r.same) + " | " + std::to_string(r.corrected) + " | " +
           format_optional(r.live_f1) + " / " + format_optional(r.shadow_f1) + " | " + format_difference(r.f1_gain) +
           " | " + format_share(r.same_when_liked) + " | " + format_share(r.same_when_thumbs_up) + " | " +
           format_share(r.same_when_thumbs_down) + " |\n";
  }
  return out;
}

}  // namespace selffeed::app
