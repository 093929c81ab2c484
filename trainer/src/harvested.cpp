#include <cstdlib>
#include <unordered_map>

#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {

Result<HarvestedExamples> load_harvested(const store::Store& store, const HarvestGuard& guard,
                                         std::uint64_t after_seq, std::size_t max_per_user) {
  HarvestedExamples out;
  out.watermark = after_seq;
  std::unordered_map<std::string, bool> deleted;  // user id -> tombstoned
  std::unordered_map<std::string, std::size_t> learned;  // user (or conversation) -> HB and FB returned
  Status failure;
  Status scanned = store.scan_all_examples(after_seq, [&](const Example& e) {
    out.watermark = std::max(out.watermark, e.seq);
    if (e.kind != ExampleKind::kHB && e.kind != ExampleKind::kFB && e.kind != ExampleKind::kST) return true;
    if (!e.user_id.empty()) {
      auto it = deleted.find(e.user_id);
      if (it == deleted.end()) {
        auto is_deleted = store.is_user_deleted(e.user_id);
        if (!is_deleted.ok()) {
          failure = is_deleted.status();
          return false;
        }
        it = deleted.emplace(e.user_id, *is_deleted).first;
      }
      if (it->second) {
        ++out.skipped_deleted_users;
        return true;
      }
    }
    if (e.kind == ExampleKind::kST) {
      char* end = nullptr;
      const double target = std::strtod(e.target.c_str(), &end);
      if (end == e.target.c_str() || *end != '\0' || !(target >= 0 && target <= 1)) return true;  // not a label
      out.thumbs.contexts.push_back(e.context);
      out.thumbs.targets.push_back(target);
      out.satisfaction_seqs.push_back(e.seq);
      return true;
    }
    if (const auto refusal = guard.refusal(e.target)) {
      ++out.refused[std::string(*refusal)];
      return true;
    }
    if (e.kind == ExampleKind::kFB && e.seq % kFeedbackHoldoutEvery == 0) {
      out.feedback_holdout.push_back({e.context, e.target, {}});
      return true;
    }
    if (max_per_user > 0) {
      std::size_t& from_them = learned[e.user_id.empty() ? "conversation " + e.conversation_id : e.user_id];
      if (from_them == max_per_user) {
        ++out.over_the_user_cap;
        return true;
      }
      ++from_them;
    }
    const bool hb = e.kind == ExampleKind::kHB;
    (hb ? out.dialogue : out.feedback).push_back({e.context, e.target, {}});
    (hb ? out.dialogue_seqs : out.feedback_seqs).push_back(e.seq);
    return true;
  });
  SELFFEED_RETURN_IF_ERROR(scanned);
  SELFFEED_RETURN_IF_ERROR(failure);
  return out;
}

}  // namespace selffeed::trainer
