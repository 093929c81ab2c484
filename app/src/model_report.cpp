#include "model_report.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <random>
#include <tuple>
#include <unordered_map>

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
  std::uint64_t judged = 0;  // replies with a satisfaction estimate
  double satisfaction = 0;   // their sum
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
                 &Tally::thumbs_down, &Tally::thumbs_up, &Tally::judged}) {
    sum.*f += t.*f;
  }
  sum.satisfaction += t.satisfaction;
}

using Field = std::uint64_t Tally::*;
struct ShareFields {
  Field count, of;
};
constexpr ShareFields kAsks{&Tally::asks, &Tally::bot_turns};
constexpr ShareFields kComplaints{&Tally::complaints, &Tally::replies};
constexpr ShareFields kThumbsDown{&Tally::thumbs_down, &Tally::answers};
constexpr ShareFields kShares[] = {kAsks, kComplaints, kThumbsDown};

double ratio(std::uint64_t count, std::uint64_t of) {
  return of == 0 ? 0.0 : static_cast<double>(count) / static_cast<double>(of);
}

// The three shares of each resample of the conversations, in kShares order.
std::vector<std::array<double, 3>> resampled_shares(const std::vector<Tally>& tallies, const ReportOptions& options,
                                                    std::mt19937_64& rng) {
  std::vector<std::array<double, 3>> out;
  if (tallies.empty()) return out;
  std::uniform_int_distribution<std::size_t> pick(0, tallies.size() - 1);
  for (int r = 0; r < options.resamples; ++r) {
    Tally sum;
    for (std::size_t i = 0; i < tallies.size(); ++i) add(sum, tallies[pick(rng)]);
    std::array<double, 3> shares{};
    for (std::size_t k = 0; k < 3; ++k) shares[k] = ratio(sum.*kShares[k].count, sum.*kShares[k].of);
    out.push_back(shares);
  }
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

}  // namespace

Result<ModelReport> report_models(const store::Store& store, const ReportOptions& options) {
  // The thumbs first (few beside the turns), so that the scan of the transcripts can find
  // the estimate of the reply to each rated answer.
  struct Thumb {
    std::string conversation_id;
    std::string version;
    bool up = false;
    std::optional<double> reply_estimate;
  };
  std::vector<Thumb> thumbs;
  std::map<std::pair<std::string, std::int64_t>, std::vector<std::size_t>> thumbs_on;  // (conversation, turn)
  SELFFEED_RETURN_IF_ERROR(store.scan_examples(ExampleKind::kST, 0, [&](const Example& e) {
    if (e.source != "thumbs" || e.created_ms < options.since_ms) return true;
    thumbs_on[{e.conversation_id, e.turn_index}].push_back(thumbs.size());
    thumbs.push_back({e.conversation_id, e.model_version, e.target == "1", std::nullopt});
    return true;
  }));

  std::map<std::string, VersionData> data;
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
      if (i + 1 == turns.size() || turns[i + 1].speaker != Speaker::kUser) continue;
      const Turn& reply = turns[i + 1];
      ++t.replies;
      if (satisfaction::paper_regex_unsatisfied(reply.text)) ++t.complaints;
      if (reply.satisfaction) {
        ++t.judged;
        t.satisfaction += *reply.satisfaction;
        auto rated = thumbs_on.find({c.id, static_cast<std::int64_t>(bot.index)});
        if (rated != thumbs_on.end()) {
          for (std::size_t k : rated->second) thumbs[k].reply_estimate = reply.satisfaction;
        }
      }
    }
    return true;
  }));
  struct Agreement {
    std::vector<double> estimates;
    std::vector<int> thumbs_up;
  };
  std::map<std::string, Agreement> agreement;
  for (const Thumb& thumb : thumbs) {
    auto version = data.find(thumb.version);
    if (version == data.end()) continue;
    auto conversation = version->second.by_conversation.find(thumb.conversation_id);
    if (conversation == version->second.by_conversation.end()) continue;  // its turns are before since_ms
    Tally& t = version->second.tallies[conversation->second];
    ++(thumb.up ? t.thumbs_up : t.thumbs_down);
    if (thumb.reply_estimate) {
      agreement[thumb.version].estimates.push_back(*thumb.reply_estimate);
      agreement[thumb.version].thumbs_up.push_back(thumb.up ? 1 : 0);
    }
  }
  SELFFEED_ASSIGN_OR_RETURN(auto models, store.list_models());
  std::map<std::string, std::string> status;
  for (const ModelRecord& m : models) status[m.version] = std::string(model_status_name(m.status));

  ModelReport report;
  std::mt19937_64 rng(options.seed);
  std::map<std::string, std::vector<std::array<double, 3>>> resampled;
  for (const auto& [version, d] : data) {
    VersionReport v;
    v.version = version;
    v.status = status.count(version) ? status[version] : "";
    v.conversations = d.tallies.size();
    Tally sum;
    for (const Tally& t : d.tallies) add(sum, t);
    v.answers = sum.answers;
    v.thumbs_up = sum.thumbs_up;
    if (sum.judged > 0) v.mean_satisfaction = sum.satisfaction / static_cast<double>(sum.judged);
    if (auto a = agreement.find(version); a != agreement.end()) {
      const Agreement& pairs = a->second;
      v.thumbs_with_estimate = pairs.estimates.size();
      const auto ups = std::count(pairs.thumbs_up.begin(), pairs.thumbs_up.end(), 1);
      if (ups > 0 && ups < static_cast<std::ptrdiff_t>(pairs.thumbs_up.size())) {
        // evaluate_binary's AUC is that of 1 - P(satisfied) for finding the unsatisfied.
        v.estimator_auc_vs_thumbs = satisfaction::evaluate_binary(pairs.estimates, pairs.thumbs_up, 0.5).auc;
      }
    }
    const auto draws = resampled_shares(d.tallies, options, rng);
    Share* shares[] = {&v.asks, &v.complaints, &v.thumbs_down};
    for (std::size_t k = 0; k < 3; ++k) {
      Share& s = *shares[k];
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
    Comparison c{version, against, {}, {}, {}};
    const VersionReport* a = nullptr;
    const VersionReport* b = nullptr;
    for (const VersionReport& v : report.versions) {
      if (v.version == version) a = &v;
      if (v.version == against) b = &v;
    }
    const auto& draws_a = resampled[version];
    const auto& draws_b = resampled[against];
    Share* differences[] = {&c.asks, &c.complaints, &c.thumbs_down};
    const Share VersionReport::*fields[] = {&VersionReport::asks, &VersionReport::complaints,
                                            &VersionReport::thumbs_down};
    for (std::size_t k = 0; k < 3; ++k) {
      differences[k]->value = (a->*fields[k]).value - (b->*fields[k]).value;
      std::vector<double> values;  // the two groups' draws are independent: pair them by index
      for (std::size_t r = 0; r < std::min(draws_a.size(), draws_b.size()); ++r) {
        values.push_back(draws_a[r][k] - draws_b[r][k]);
      }
      std::tie(differences[k]->low, differences[k]->high) = interval(std::move(values));
    }
    report.comparison = std::move(c);
  }
  return report;
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
                        {"mean_satisfaction", v.mean_satisfaction ? json(*v.mean_satisfaction) : json(nullptr)},
                        {"thumbs_with_estimate", v.thumbs_with_estimate},
                        {"estimator_auc_vs_thumbs",
                         v.estimator_auc_vs_thumbs ? json(*v.estimator_auc_vs_thumbs) : json(nullptr)}});
  }
  json out = {{"versions", versions}, {"comparison", nullptr}};
  if (const auto& c = report.comparison) {
    out["comparison"] = {{"version", c->version},
                         {"against", c->against},
                         {"asks", difference_json(c->asks)},
                         {"complaints", difference_json(c->complaints)},
                         {"thumbs_down_per_answer", difference_json(c->thumbs_down)}};
  }
  return out;
}

std::string to_markdown(const ModelReport& report) {
  std::string out =
      "| version | status | conversations | answers | asks for feedback | complaints (paper regexes) | "
      "thumbs down per answer | thumbs up | mean P(satisfied) | estimate vs thumbs: AUC (rated replies) |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const VersionReport& v : report.versions) {
    out += "| " + v.version + " | " + (v.status.empty() ? "-" : v.status) + " | " + std::to_string(v.conversations) +
           " | " + std::to_string(v.answers) + " | " + format_share(v.asks) + " | " + format_share(v.complaints) +
           " | " + format_share(v.thumbs_down) + " | " + std::to_string(v.thumbs_up) + " | " +
           format_optional(v.mean_satisfaction) + " | " + format_optional(v.estimator_auc_vs_thumbs) + " (" +
           std::to_string(v.thumbs_with_estimate) + ") |\n";
  }
  if (const auto& c = report.comparison) {
    out += "\n" + c->version + " minus " + c->against + " (95% interval): asks " + format_difference(c->asks) +
           ", complaints " + format_difference(c->complaints) + ", thumbs down per answer " +
           format_difference(c->thumbs_down) + "\n";
  }
  return out;
}

}  // namespace selffeed::app
