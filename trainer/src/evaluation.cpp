#include <cmath>
#include <sstream>
#include <unordered_map>

#include "selffeed/common/context.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {
namespace {

// Position of the gold among `candidates` (first exact match), or -1.
long gold_index(const RankingExample& e) {
  for (std::size_t i = 0; i < e.candidates.size(); ++i) {
    if (e.candidates[i] == e.target) return static_cast<long>(i);
  }
  return -1;
}

Status check_examples(std::span<const RankingExample> data) {
  if (data.empty()) return invalid_argument_error("no evaluation examples");
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (gold_index(data[i]) < 0) {
      return invalid_argument_error("evaluation example " + std::to_string(i) + " has no candidates or its gold reply is not among them");
    }
  }
  return ok_status();
}

// Ties are broken by candidate order (the gold's position in the file is random), so a
// scorer that gives everything the same score gets chance-level results, not perfect ones.
void accumulate(const std::vector<float>& scores, long gold, RankingMetrics& m) {
  std::size_t rank = 0;
  for (std::size_t j = 0; j < scores.size(); ++j) {
    if (static_cast<long>(j) == gold) continue;
    if (scores[j] > scores[gold] || (scores[j] == scores[gold] && static_cast<long>(j) < gold)) ++rank;
  }
  m.hits_at_1 += rank == 0;
  m.hits_at_5 += rank < 5;
  m.mrr += 1.0 / static_cast<double>(rank + 1);
}

void finish(RankingMetrics& m, std::span<const RankingExample> data) {
  m.examples = data.size();
  m.candidates = data.front().candidates.size();
  m.hits_at_1 /= static_cast<double>(m.examples);
  m.hits_at_5 /= static_cast<double>(m.examples);
  m.mrr /= static_cast<double>(m.examples);
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in(dialogue::normalize_text(text));
  for (std::string w; in >> w;) {
    if (w != kPartnerTag && w != kSelfTag && w != kNullContext) out.push_back(w);
  }
  return out;
}

using SparseVector = std::unordered_map<std::string, double>;

SparseVector tfidf(std::string_view text, const std::unordered_map<std::string, double>& idf, double default_idf) {
  SparseVector v;
  for (const std::string& w : words(text)) v[w] += 1.0;
  double norm = 0;
  for (auto& [w, x] : v) {
    auto it = idf.find(w);
    x *= it == idf.end() ? default_idf : it->second;
    norm += x * x;
  }
  norm = std::sqrt(norm);
  if (norm > 0) {
    for (auto& [w, x] : v) x /= norm;
  }
  return v;
}

double dot(const SparseVector& a, const SparseVector& b) {
  const SparseVector& small = a.size() < b.size() ? a : b;
  const SparseVector& large = a.size() < b.size() ? b : a;
  double s = 0;
  for (const auto& [w, x] : small) {
    if (auto it = large.find(w); it != large.end()) s += x * it->second;
  }
  return s;
}

}  // namespace

Result<RankingMetrics> evaluate_ranking(const dialogue::DialogueModel& model, std::span<const RankingExample> data) {
  SELFFEED_RETURN_IF_ERROR(check_examples(data));
  std::vector<std::string> contexts;
  std::vector<std::vector<std::string>> candidates;
  for (const RankingExample& e : data) {
    contexts.push_back(e.context);
    candidates.push_back(e.candidates);
  }
  // One call: the model encodes each distinct candidate once across the whole file.
  SELFFEED_ASSIGN_OR_RETURN(auto scores, model.score(contexts, candidates));
  RankingMetrics m;
  for (std::size_t i = 0; i < data.size(); ++i) accumulate(scores[i], gold_index(data[i]), m);
  finish(m, data);
  return m;
}

Result<RankingMetrics> evaluate_tfidf(std::span<const RankingExample> data) {
  SELFFEED_RETURN_IF_ERROR(check_examples(data));
  // Document frequencies over the distinct candidates.
  std::unordered_map<std::string, double> df;
  std::unordered_map<std::string, bool> seen;
  for (const RankingExample& e : data) {
    for (const std::string& c : e.candidates) {
      if (!seen.emplace(c, true).second) continue;
      std::vector<std::string> ws = words(c);
      std::sort(ws.begin(), ws.end());
      ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
      for (const std::string& w : ws) df[w] += 1.0;
    }
  }
  const double documents = static_cast<double>(seen.size());
  std::unordered_map<std::string, double> idf;
  for (const auto& [w, n] : df) idf[w] = std::log((1.0 + documents) / (1.0 + n)) + 1.0;
  const double default_idf = std::log(1.0 + documents) + 1.0;

  RankingMetrics m;
  for (const RankingExample& e : data) {
    SparseVector ctx = tfidf(e.context, idf, default_idf);
    std::vector<float> scores;
    for (const std::string& c : e.candidates) scores.push_back(static_cast<float>(dot(ctx, tfidf(c, idf, default_idf))));
    accumulate(scores, gold_index(e), m);
  }
  finish(m, data);
  return m;
}

}  // namespace selffeed::trainer
