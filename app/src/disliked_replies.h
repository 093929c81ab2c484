// The operator's review of what users disliked: the bot's answers rated down, grouped by
// their text with the reasons users gave (a rude pool reply shows up as "inappropriate"),
// and the replies the operator withdrew from every version's candidate pool for good.
//
//   auto queue = disliked_replies(store, {.reason = DislikeReason::kInappropriate});
//   set_reply_withdrawn(store, (*queue)[0].text, true);  // then ModelManager applies it
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "selffeed/common/records.h"
#include "selffeed/common/status.h"
#include "selffeed/store/store.h"

namespace selffeed::app {

struct DislikedReply {
  std::string text;
  std::uint64_t thumbs_down = 0;  // answers with this text whose rating that stands is down
  std::map<std::string, std::uint64_t> reasons;  // of those, by the reason given (none: not counted)
  // Who disliked it: distinct conversations, and distinct users (anonymous conversations
  // count one each), so that one user's many thumbs read as one voice.
  std::uint64_t conversations = 0;
  std::uint64_t users = 0;
  std::set<std::string> versions;  // the model versions that answered with it
  bool from_pool = false;          // a candidate-pool reply (else a persona sentence), withdrawable
  std::int64_t last_ms = 0;        // the latest such answer
  bool withdrawn = false;          // by the operator (set_reply_withdrawn)
};

struct DislikedFilter {
  std::int64_t since_ms = 0;            // only answers from this time on
  std::optional<DislikeReason> reason;  // only thumbs down given for this reason
  std::uint64_t min_users = 1;
};

// Who rated an answer in conversation `c`: its user, or the conversation when anonymous.
std::string reporter_of(const Conversation& c);

// Most users first, then most thumbs down. Reads every transcript updated since `since_ms`.
Result<std::vector<DislikedReply>> disliked_replies(const store::Store& store, const DislikedFilter& filter);
nlohmann::json to_json(const std::vector<DislikedReply>& replies);

// The SHA-256 digests of the replies the operator withdrew, kept in the store across
// restarts; the text itself is not kept (a pool reply may be a user's words).
Result<std::set<std::string>> withdrawn_reply_digests(const store::Store& store);
// Withdraws `text` (true) or gives it back (false). Returns whether that changed anything.
Result<bool> set_reply_withdrawn(store::Store& store, const std::string& text, bool withdrawn);

// The answers users reported as inappropriate (rate's reason; the rating that stands), by
// who reported them: what /admin/alerts reads without a scan of the transcripts. load()
// reads the reports of the last week from the store (ChatService, after the start and after
// a deletion: a deleted user's reports go); ChatEngine::rate keeps it up to date.
// Thread-safe.
class ReportedReplies {
 public:
  static constexpr std::int64_t kLoadWindowMs = 7LL * 24 * 60 * 60 * 1000;
  Status load(const store::Store& store);
  // The answer `turn` of conversation `c` was rated (again): down as inappropriate or not.
  void rated(const Conversation& c, const Turn& turn, bool inappropriate);
  // The answers at least `min_users` reported, with how many did, most first.
  std::vector<std::pair<std::string, std::size_t>> reported_by(std::size_t min_users) const;

 private:
  using Report = std::pair<std::string, std::uint32_t>;  // conversation id, turn
  mutable std::mutex mutex_;
  // By answer text, each report and who made it (reporter_of).
  std::map<std::string, std::map<Report, std::string>> reports_;
};

}  // namespace selffeed::app
