#include <cstdio>

#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {

Result<std::vector<RankingExample>> feedback_gate_set(const store::Store& store) {
  SELFFEED_ASSIGN_OR_RETURN(HarvestedExamples harvested, load_harvested(store));
  std::vector<RankingExample> set = std::move(harvested.feedback_holdout);
  if (set.size() < 20) return std::vector<RankingExample>{};
  add_random_candidates(set, 19, /*seed=*/1);
  return set;
}

Result<GateScores> gate_scores(const dialogue::DialogueModel& model, const GateData& data) {
  GateScores scores;
  SELFFEED_ASSIGN_OR_RETURN(RankingMetrics personachat, evaluate_ranking(model, data.personachat));
  scores.personachat_hits_at_1 = personachat.hits_at_1;
  if (!data.feedback.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(RankingMetrics feedback, evaluate_ranking(model, data.feedback));
    scores.feedback_hits_at_1 = feedback.hits_at_1;
  }
  return scores;
}

GateDecision gate_decision(const GateScores& live, const GateScores& candidate, double epsilon) {
  char reason[256];
  const double drop = live.personachat_hits_at_1 - candidate.personachat_hits_at_1;
  if (drop > epsilon) {
    std::snprintf(reason, sizeof reason, "PersonaChat hits@1 %.4f is %.4f below the live model's %.4f (epsilon %.4f)",
                  candidate.personachat_hits_at_1, drop, live.personachat_hits_at_1, epsilon);
    return {false, reason};
  }
  // Sets only one side was measured on cannot be compared.
  const bool both_fb = live.feedback_hits_at_1 && candidate.feedback_hits_at_1;
  const double live_total = live.personachat_hits_at_1 + (both_fb ? *live.feedback_hits_at_1 : 0);
  const double candidate_total = candidate.personachat_hits_at_1 + (both_fb ? *candidate.feedback_hits_at_1 : 0);
  if (candidate_total <= live_total) {
    std::snprintf(reason, sizeof reason, "not better overall: %.4f vs the live model's %.4f (sum of hits@1%s)",
                  candidate_total, live_total, both_fb ? " on PersonaChat and held-out FB" : " on PersonaChat");
    return {false, reason};
  }
  std::snprintf(reason, sizeof reason, "better overall: %.4f vs %.4f (sum of hits@1%s), PersonaChat change %+.4f",
                candidate_total, live_total, both_fb ? " on PersonaChat and held-out FB" : " on PersonaChat", -drop);
  return {true, reason};
}

}  // namespace selffeed::trainer
