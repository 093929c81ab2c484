#include <cstdio>

#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {

Result<std::vector<RankingExample>> feedback_gate_set(const store::Store& store, std::set<std::string> distrusted) {
  SELFFEED_ASSIGN_OR_RETURN(HarvestedExamples harvested,
                            load_harvested(store, HarvestGuard(), {.distrusted = std::move(distrusted)}));
  std::vector<RankingExample> set = std::move(harvested.feedback_holdout);
  if (set.size() < 20) return std::vector<RankingExample>{};
  add_random_candidates(set, 19, /*seed=*/1);
  return set;
}

Result<GateScores> gate_scores(const dialogue::DialogueModel& model, const satisfaction::SatisfactionModel* estimator,
                               const GateData& data) {
  GateScores scores;
  SELFFEED_ASSIGN_OR_RETURN(RankingMetrics personachat, evaluate_ranking(model, data.personachat));
  scores.personachat_hits_at_1 = personachat.hits_at_1;
  if (!data.feedback.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(RankingMetrics feedback, evaluate_ranking(model, data.feedback));
    scores.feedback_hits_at_1 = feedback.hits_at_1;
  }
  if (estimator != nullptr && !data.satisfaction.contexts.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(std::vector<double> p, estimator->score(data.satisfaction.contexts));
    scores.satisfaction_auc =
        satisfaction::evaluate_binary(p, data.satisfaction.labels, estimator->threshold()).auc;
  }
  return scores;
}

GateDecision gate_decision(const GateScores& live, const GateScores& candidate, double epsilon) {
  char reason[320];
  const double drop = live.personachat_hits_at_1 - candidate.personachat_hits_at_1;
  if (drop > epsilon) {
    std::snprintf(reason, sizeof reason, "PersonaChat hits@1 %.4f is %.4f below the live model's %.4f (epsilon %.4f)",
                  candidate.personachat_hits_at_1, drop, live.personachat_hits_at_1, epsilon);
    return {false, reason};
  }
  // Sets only one side was measured on cannot be compared.
  const bool both_fb = live.feedback_hits_at_1 && candidate.feedback_hits_at_1;
  const bool both_st = live.satisfaction_auc && candidate.satisfaction_auc;
  if (both_st && *live.satisfaction_auc - *candidate.satisfaction_auc > epsilon) {
    std::snprintf(reason, sizeof reason, "satisfaction AUC %.4f is %.4f below the live model's %.4f (epsilon %.4f)",
                  *candidate.satisfaction_auc, *live.satisfaction_auc - *candidate.satisfaction_auc,
                  *live.satisfaction_auc, epsilon);
    return {false, reason};
  }
  auto total = [&](const GateScores& s) {
    return s.personachat_hits_at_1 + (both_fb ? *s.feedback_hits_at_1 : 0) + (both_st ? *s.satisfaction_auc : 0);
  };
  const std::string sets = std::string("PersonaChat hits@1") + (both_fb ? " + held-out FB hits@1" : "") +
                           (both_st ? " + ST test AUC" : "");
  if (total(candidate) <= total(live)) {
    std::snprintf(reason, sizeof reason, "not better overall: %.4f vs the live model's %.4f (%s)", total(candidate),
                  total(live), sets.c_str());
    return {false, reason};
  }
  std::snprintf(reason, sizeof reason, "better overall: %.4f vs %.4f (%s), PersonaChat change %+.4f", total(candidate),
                total(live), sets.c_str(), -drop);
  return {true, reason};
}

}  // namespace selffeed::trainer
