#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "selffeed/common/context.h"
#include "selffeed/common/hash.h"
#include "selffeed/satisfaction/satisfaction.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {
namespace {

std::uint64_t text_key(std::string_view context, std::string_view target) {
  return fnv1a64(target, fnv1a64(std::string_view("\n", 1), fnv1a64(context)));
}

// Every tenth conversation, drawn by a hash of its id, is held out whole: its FB examples
// are the gate's, and none of its HB or FB examples is trained on, so the gate is not
// scored on a conversation the model learned other turns of. An FB example without a
// conversation (an import) is drawn by its text; such an HB example is always trained on.
bool held_out_for_the_gate(const Example& e) {
  if (e.conversation_id.empty()) {
    return e.kind == ExampleKind::kFB && text_key(e.context, e.target) % kFeedbackHoldoutEvery == 0;
  }
  return fnv1a64(e.conversation_id) % kFeedbackHoldoutEvery == 0;
}

// A user who rated an answer before replying to it left an ST example without the reply
// ("__p2__ <answer> __p1__ "), where the estimator always reads one beside the answer
// (satisfaction_context). The reply they gave afterwards, in the transcript, completes it;
// nullopt: nothing to complete (the example has its reply, or there is none yet).
Result<std::optional<std::string>> completed_thumbs_context(const store::Store& store, const Example& e) {
  if (e.source != kFromThumbs || e.conversation_id.empty() || e.turn_index < 0) return std::optional<std::string>();
  if (const std::vector<std::string> said = split_context(e.context); said.size() != 2 || !said.back().empty()) {
    return std::optional<std::string>();
  }
  SELFFEED_ASSIGN_OR_RETURN(const auto turns,
                            store.get_turns(e.conversation_id, static_cast<std::uint32_t>(e.turn_index)));
  if (turns.size() < 2 || turns[0].speaker != Speaker::kBot || turns[1].speaker != Speaker::kUser) {
    return std::optional<std::string>();
  }
  std::string completed = satisfaction::satisfaction_context({.bot_reply = turns[0].text, .user_reply = turns[1].text});
  if (completed == e.context) return std::optional<std::string>();
  return std::optional<std::string>(std::move(completed));
}

// An example kept for training, in the order it is returned: by a hash of its text, so
// that a retraining depends on what the store holds and not on the order in which
// concurrent conversations happened to commit it (which decides the seqs).
struct Kept {
  std::uint64_t key;
  std::string context;
  std::string target;
  std::uint64_t seq;

  explicit Kept(const Example& e)
      : key(text_key(e.context, e.target)), context(e.context), target(e.target), seq(e.seq) {}
  friend bool operator<(const Kept& a, const Kept& b) {
    return std::tie(a.key, a.context, a.target, a.seq) < std::tie(b.key, b.context, b.target, b.seq);
  }
};

// An HB or FB example that may be trained on, and who taught it: the user, or for an
// example without a user id its conversation. Sorted by teacher, then text, so that a
// teacher over the cap keeps the same examples whatever order they were committed in.
struct Trainable {
  std::string teacher;
  ExampleKind kind;
  Kept example;
  friend bool operator<(const Trainable& a, const Trainable& b) {
    const Kept& x = a.example;
    const Kept& y = b.example;
    return std::tie(a.teacher, x.key, x.context, x.target, a.kind, x.seq) <
           std::tie(b.teacher, y.key, y.context, y.target, b.kind, y.seq);
  }
};

// What the trust rule reads of one teacher: their HB and FB replies, the guard's
// refusals included, and how relevant the model finds their FB examples.
class Record {
 public:
  // `judged_later`: the FB examples are kept for judge_relevance.
  void add(const Example& e, bool blocked_word, bool judged_later) {
    ++replies_;
    if (blocked_word) ++blocked_;
    // A reply of punctuation only (")", "?!") has no words: it is compared as written, or
    // every such reply would repeat the first.
    std::string words;
    for (const std::string& w : lower_words(e.target)) words += w + ' ';
    if (!said_.insert(words.empty() ? e.target : std::move(words)).second) ++repeated_;
    if (e.kind != ExampleKind::kFB) return;
    ++feedback_count_;
    if (judged_later) feedback_.push_back({e.context, e.target});
  }
  const std::vector<dialogue::TextPair>& feedback() const { return feedback_; }
  void set_feedback_rank(double mean) { feedback_rank_ = mean; }
  bool taught_irrelevant_feedback(const TrustRule& rule) const {
    return feedback_rank_ && *feedback_rank_ >= rule.max_feedback_rank;
  }
  bool trusted(const TrustRule& rule) const {
    if (taught_irrelevant_feedback(rule)) return false;
    if (replies_ < rule.min_examples) return true;
    return share(blocked_, replies_) < rule.max_blocked_share && share(repeated_, replies_) < rule.max_repeated_share;
  }
  TeacherTrust summary(const std::string& teacher, const TrustRule& rule) const {
    return {.teacher = teacher,
            .replies = replies_,
            .blocked = blocked_,
            .repeated = repeated_,
            .feedback = feedback_count_,
            .feedback_rank = feedback_rank_,
            .trusted = trusted(rule)};
  }

 private:
  std::size_t replies_ = 0;
  std::size_t blocked_ = 0;
  std::size_t repeated_ = 0;  // the same words as a reply of theirs before
  std::unordered_set<std::string> said_;
  std::size_t feedback_count_ = 0;
  std::vector<dialogue::TextPair> feedback_;  // when judged later
  std::optional<double> feedback_rank_;  // the mean relevance of feedback_, when judged

  static double share(std::size_t n, std::size_t of) { return static_cast<double>(n) / static_cast<double>(of); }
};

// Has `relevance` judge the FB examples of every teacher with enough of them for the rule:
// at most kMostJudged of each, drawn by their text (the mean of 50 is within about 0.03 of
// all of them), so that a heavy user costs no more than a light one.
Status judge_relevance(std::unordered_map<std::string, Record>& records, const TrustRule& rule,
                       const HarvestOptions::Relevance& relevance) {
  constexpr std::size_t kMostJudged = 50;
  std::vector<dialogue::TextPair> pairs;
  std::vector<std::pair<Record*, std::size_t>> judged;  // and how many of theirs
  for (auto& [teacher, record] : records) {
    if (record.feedback().size() < rule.min_feedback) continue;
    std::vector<dialogue::TextPair> theirs = record.feedback();
    if (theirs.size() > kMostJudged) {
      std::ranges::sort(theirs, std::less<>(), [](const dialogue::TextPair& p) {
        return std::tuple(text_key(p.context, p.target), std::string_view(p.context), std::string_view(p.target));
      });
      theirs.resize(kMostJudged);
    }
    judged.emplace_back(&record, theirs.size());
    std::ranges::move(theirs, std::back_inserter(pairs));
  }
  if (pairs.empty()) return ok_status();
  SELFFEED_ASSIGN_OR_RETURN(const std::vector<double> ranks, relevance(pairs));
  if (ranks.size() != pairs.size()) {
    return internal_error("the relevance judge gave " + std::to_string(ranks.size()) + " ranks for " +
                          std::to_string(pairs.size()) + " examples");
  }
  std::size_t next = 0;
  for (auto [record, n] : judged) {
    const auto first = ranks.begin() + static_cast<std::ptrdiff_t>(next);
    record->set_feedback_rank(std::accumulate(first, first + static_cast<std::ptrdiff_t>(n), 0.0) /
                              static_cast<double>(n));
    next += n;
  }
  return ok_status();
}

// An HB, FB or ST example that passed the guard, and who taught it.
struct Eligible {
  std::string teacher;
  Example example;
};

// Leaves out the HB examples `rejudge` scores below `threshold`; returns how many.
Result<std::size_t> leave_out_rejudged(std::vector<Trainable>& trainable, const HarvestOptions::Judge& rejudge,
                                       double threshold) {
  std::vector<std::string> contexts;
  for (const Trainable& t : trainable) {
    if (t.kind != ExampleKind::kHB) continue;
    const std::vector<std::string> said = split_context(t.example.context);  // ends with the bot's answer
    contexts.push_back(satisfaction::satisfaction_context(
        {.bot_reply = said.empty() ? std::string() : said.back(), .user_reply = t.example.target}));
  }
  SELFFEED_ASSIGN_OR_RETURN(const std::vector<double> scores, rejudge(contexts));
  if (scores.size() != contexts.size()) {
    return internal_error("re-judging gave " + std::to_string(scores.size()) + " scores for " +
                          std::to_string(contexts.size()) + " examples");
  }
  std::vector<Trainable> kept;
  std::size_t next = 0;
  for (Trainable& t : trainable) {
    if (t.kind != ExampleKind::kHB || scores[next++] >= threshold) kept.push_back(std::move(t));
  }
  const std::size_t left_out = trainable.size() - kept.size();
  trainable = std::move(kept);
  return left_out;
}

void put_in_text_order(std::vector<Kept>& kept, std::vector<RankingExample>& examples,
                       std::vector<std::uint64_t>* seqs) {
  std::sort(kept.begin(), kept.end());
  for (Kept& k : kept) {
    examples.push_back({std::move(k.context), std::move(k.target), {}, {}});
    if (seqs) seqs->push_back(k.seq);
  }
}

}  // namespace

Result<HarvestedExamples> load_harvested(const store::Store& store, const HarvestGuard& guard,
                                         const HarvestOptions& options) {
  HarvestedExamples out;
  out.watermark = options.after_seq;
  std::unordered_map<std::string, bool> deleted;  // user id -> tombstoned
  std::unordered_map<std::string, Record> records;
  const bool judge_feedback = options.relevance && options.trust.max_feedback_rank <= 1;
  std::vector<Eligible> eligible;
  auto admit = [&](const Example& e) {
    std::string teacher = e.user_id.empty() ? "conversation " + e.conversation_id : e.user_id;
    if (e.kind == ExampleKind::kST) {
      char* end = nullptr;
      const double target = std::strtod(e.target.c_str(), &end);
      if (end == e.target.c_str() || *end != '\0' || !(target >= 0 && target <= 1)) return;  // not a label
      eligible.push_back({std::move(teacher), e});
      return;
    }
    const auto refusal = guard.refusal(e.target);
    if (!options.trust.off()) records[teacher].add(e, refusal == HarvestGuard::kBlockedWord, judge_feedback);
    if (refusal) {
      ++out.refused[std::string(*refusal)];
      return;
    }
    eligible.push_back({std::move(teacher), e});
  };
  // A user may rate an answer again, or say again what it could have been instead (a
  // changed mind): per answer, the later one stands.
  std::map<std::tuple<ExampleKind, std::string, std::int64_t>, Example> latest_per_answer;
  Status failure;
  Status scanned = store.scan_all_examples(options.after_seq, [&](const Example& e) {
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
    const bool of_an_answer = ((e.kind == ExampleKind::kST && e.source == kFromThumbs) ||
                               (e.kind == ExampleKind::kFB && e.source == kFromSuggestion)) &&
                              !e.conversation_id.empty() && e.turn_index >= 0;
    if (!of_an_answer) {
      admit(e);
      return true;
    }
    auto [latest, added] = latest_per_answer.try_emplace({e.kind, e.conversation_id, e.turn_index}, e);
    if (!added) {
      latest->second = e;
      ++(e.kind == ExampleKind::kST ? out.thumbs_superseded : out.suggestions_superseded);
    }
    return true;
  });
  SELFFEED_RETURN_IF_ERROR(scanned);
  SELFFEED_RETURN_IF_ERROR(failure);
  for (const auto& [answer, e] : latest_per_answer) admit(e);

  if (judge_feedback) SELFFEED_RETURN_IF_ERROR(judge_relevance(records, options.trust, options.relevance));
  for (const auto& [teacher, record] : records) {
    TeacherTrust trust = record.summary(teacher, options.trust);
    if (!trust.trusted) out.untrusted.push_back(teacher);
    if (record.taught_irrelevant_feedback(options.trust)) ++out.untrusted_for_irrelevant_feedback;
    out.teachers.push_back(std::move(trust));
  }
  out.untrusted.insert(out.untrusted.end(), options.distrusted.begin(), options.distrusted.end());
  std::sort(out.untrusted.begin(), out.untrusted.end());
  out.untrusted.erase(std::unique(out.untrusted.begin(), out.untrusted.end()), out.untrusted.end());
  std::ranges::sort(out.teachers, std::less<>(), &TeacherTrust::teacher);
  std::vector<Trainable> trainable;
  std::vector<Kept> holdout, thumbs;
  for (Eligible& candidate : eligible) {
    const Example& e = candidate.example;
    if (std::binary_search(out.untrusted.begin(), out.untrusted.end(), candidate.teacher)) {
      ++out.examples_of_the_untrusted;
    } else if (e.kind == ExampleKind::kST) {
      SELFFEED_ASSIGN_OR_RETURN(std::optional<std::string> completed, completed_thumbs_context(store, e));
      if (completed) {
        candidate.example.context = std::move(*completed);
        ++out.thumbs_completed;
      }
      thumbs.emplace_back(candidate.example);
    } else if (!held_out_for_the_gate(e)) {
      trainable.push_back({std::move(candidate.teacher), e.kind, Kept(e)});
    } else if (e.kind == ExampleKind::kFB) {
      holdout.emplace_back(e);
    } else {
      ++out.dialogue_held_out;
    }
  }

  if (options.rejudge) {
    SELFFEED_ASSIGN_OR_RETURN(out.rejudged_unsatisfied,
                              leave_out_rejudged(trainable, options.rejudge, options.rejudge_threshold));
  }
  std::vector<Kept> dialogue, feedback;
  std::sort(trainable.begin(), trainable.end());
  // The same example twice from the same teacher (a suggestion repeating the answer the
  // bot's own feedback request got, an opening said alike in two conversations) is trained
  // on once, the first: the second adds weight to one user, not information.
  const auto repeated = std::unique(trainable.begin(), trainable.end(), [](const Trainable& a, const Trainable& b) {
    return a.teacher == b.teacher && a.kind == b.kind && a.example.context == b.example.context &&
           a.example.target == b.example.target;
  });
  out.repeated_by_their_teacher = static_cast<std::size_t>(trainable.end() - repeated);
  trainable.erase(repeated, trainable.end());
  std::size_t from_them = 0;  // what the current teacher has taught so far
  for (std::size_t i = 0; i < trainable.size(); ++i) {
    Trainable& t = trainable[i];
    from_them = i > 0 && trainable[i - 1].teacher == t.teacher ? from_them + 1 : 1;
    if (options.max_per_user > 0 && from_them > options.max_per_user) {
      ++out.over_the_user_cap;
      continue;
    }
    (t.kind == ExampleKind::kHB ? dialogue : feedback).push_back(std::move(t.example));
  }
  put_in_text_order(dialogue, out.dialogue, &out.dialogue_seqs);
  put_in_text_order(feedback, out.feedback, &out.feedback_seqs);
  put_in_text_order(holdout, out.feedback_holdout, nullptr);
  std::sort(thumbs.begin(), thumbs.end());
  for (Kept& k : thumbs) {
    out.thumbs.contexts.push_back(std::move(k.context));
    out.thumbs.targets.push_back(std::strtod(k.target.c_str(), nullptr));
    out.satisfaction_seqs.push_back(k.seq);
  }
  return out;
}

HarvestOptions::Relevance feedback_relevance(std::shared_ptr<const dialogue::DialogueModel> model) {
  return [model = std::move(model)](std::span<const dialogue::TextPair> feedback) {
    return model->rank_in_pool(feedback);
  };
}

}  // namespace selffeed::trainer
