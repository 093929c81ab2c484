#include "disliked_replies.h"

#include <algorithm>
#include <unordered_map>

#include "selffeed/common/digest.h"

namespace selffeed::app {
namespace {

using nlohmann::json;

// The store setting of withdrawn replies: a JSON array of SHA-256 hex digests.
constexpr const char* kWithdrawnSetting = "withdrawn_replies";

struct Tally {
  DislikedReply reply;
  std::set<std::string> conversations, users;
};

// A bot answer whose rating that stands is down.
bool rated_down(const Turn& t) {
  return t.speaker == Speaker::kBot && t.phase == Phase::kNormal && t.thumbs_up && !*t.thumbs_up;
}

}  // namespace

std::string reporter_of(const Conversation& c) {
  return c.user_id.empty() ? "conversation:" + c.id : "user:" + c.user_id;
}

Result<std::set<std::string>> withdrawn_reply_digests(const store::Store& store) {
  SELFFEED_ASSIGN_OR_RETURN(const std::string value, store.get_setting(kWithdrawnSetting));
  std::set<std::string> digests;
  if (value.empty()) return digests;
  const json list = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array()) return data_loss_error(std::string("setting '") + kWithdrawnSetting + "' is not a JSON array");
  for (const json& digest : list) {
    if (!digest.is_string()) {
      return data_loss_error(std::string("setting '") + kWithdrawnSetting + "' holds a non-string");
    }
    digests.insert(digest.get<std::string>());
  }
  return digests;
}

Result<bool> set_reply_withdrawn(store::Store& store, const std::string& text, bool withdrawn) {
  SELFFEED_ASSIGN_OR_RETURN(std::set<std::string> digests, withdrawn_reply_digests(store));
  const std::string digest = sha256_hex(text);
  const bool changed = withdrawn ? digests.insert(digest).second : digests.erase(digest) > 0;
  if (!changed) return false;
  SELFFEED_RETURN_IF_ERROR(store.set_setting(kWithdrawnSetting, json(digests).dump()));
  return true;
}

Result<std::vector<DislikedReply>> disliked_replies(const store::Store& store, const DislikedFilter& filter) {
  std::unordered_map<std::string, Tally> by_text;
  store::TranscriptFilter transcripts;
  if (filter.since_ms > 0) transcripts.updated_after_ms = filter.since_ms - 1;
  auto count_dislikes = [&](const Conversation& c, const std::vector<Turn>& turns) {
    for (const Turn& t : turns) {
      if (!rated_down(t)) continue;
      if (t.time_ms < filter.since_ms || (filter.reason && t.dislike_reason != filter.reason)) continue;
      Tally& tally = by_text[t.text];
      DislikedReply& r = tally.reply;
      ++r.thumbs_down;
      if (t.dislike_reason) ++r.reasons[std::string(dislike_reason_name(*t.dislike_reason))];
      tally.conversations.insert(c.id);
      tally.users.insert(reporter_of(c));
      r.versions.insert(t.model_version);
      r.from_pool |= t.candidate_id.has_value();
      r.last_ms = std::max(r.last_ms, t.time_ms);
    }
    return true;
  };
  SELFFEED_RETURN_IF_ERROR(store.scan_transcripts(transcripts, count_dislikes));
  SELFFEED_ASSIGN_OR_RETURN(const std::set<std::string> withdrawn, withdrawn_reply_digests(store));
  std::vector<DislikedReply> out;
  for (auto& [text, tally] : by_text) {
    if (tally.users.size() < filter.min_users) continue;
    tally.reply.text = text;
    tally.reply.conversations = tally.conversations.size();
    tally.reply.users = tally.users.size();
    tally.reply.withdrawn = withdrawn.contains(sha256_hex(text));
    out.push_back(std::move(tally.reply));
  }
  std::sort(out.begin(), out.end(), [](const DislikedReply& a, const DislikedReply& b) {
    if (a.users != b.users) return a.users > b.users;
    if (a.thumbs_down != b.thumbs_down) return a.thumbs_down > b.thumbs_down;
    return a.text < b.text;
  });
  return out;
}

Status ReportedReplies::load(const store::Store& store) {
  const std::int64_t since = unix_millis() - kLoadWindowMs;
  std::map<std::string, std::map<Report, std::string>> reports;
  SELFFEED_RETURN_IF_ERROR(store.scan_transcripts(
      {.updated_after_ms = since}, [&](const Conversation& c, const std::vector<Turn>& turns) {
        for (const Turn& t : turns) {
          if (rated_down(t) && t.dislike_reason == DislikeReason::kInappropriate && t.time_ms >= since) {
            reports[t.text][{c.id, t.index}] = reporter_of(c);
          }
        }
        return true;
      }));
  std::lock_guard lock(mutex_);
  reports_ = std::move(reports);
  return ok_status();
}

void ReportedReplies::rated(const Conversation& c, const Turn& turn, bool inappropriate) {
  std::lock_guard lock(mutex_);
  if (inappropriate) {
    reports_[turn.text][{c.id, turn.index}] = reporter_of(c);
  } else if (auto it = reports_.find(turn.text); it != reports_.end() && it->second.erase({c.id, turn.index}) > 0 &&
                                                 it->second.empty()) {
    reports_.erase(it);
  }
}

std::vector<std::pair<std::string, std::size_t>> ReportedReplies::reported_by(std::size_t min_users) const {
  std::vector<std::pair<std::string, std::size_t>> out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [text, reports] : reports_) {
      std::set<std::string> reporters;
      for (const auto& [report, reporter] : reports) reporters.insert(reporter);
      if (reporters.size() >= min_users) out.emplace_back(text, reporters.size());
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

json to_json(const std::vector<DislikedReply>& replies) {
  json list = json::array();
  for (const DislikedReply& r : replies) {
    list.push_back({{"text", r.text},
                    {"thumbs_down", r.thumbs_down},
                    {"reasons", r.reasons},
                    {"conversations", r.conversations},
                    {"users", r.users},
                    {"versions", r.versions},
                    {"from_pool", r.from_pool},
                    {"last_ms", r.last_ms},
                    {"withdrawn", r.withdrawn}});
  }
  return {{"replies", list}};
}

}  // namespace selffeed::app
