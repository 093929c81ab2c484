#include <cmath>
#include <unordered_map>

#include "selffeed/satisfaction/satisfaction.h"

namespace selffeed::satisfaction {

struct NaiveBayes::Counts {
  std::unordered_map<std::string, double> words[2];  // per class
  double totals[2] = {0, 0};
  double documents[2] = {0, 0};
  std::size_t vocabulary = 0;
};

namespace {
// Bot and user words are different features: "what?" means something else from each side.
std::vector<std::string> features(const SatisfactionInput& in) {
  std::vector<std::string> out;
  for (std::string& w : words_of(in.bot_reply)) out.push_back("b:" + w);
  for (std::string& w : words_of(in.user_reply)) out.push_back("u:" + w);
  return out;
}
}  // namespace

NaiveBayes NaiveBayes::fit(std::span<const SatisfactionInput> inputs, std::span<const int> labels) {
  auto counts = std::make_shared<Counts>();
  std::unordered_map<std::string, bool> vocabulary;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const int c = labels[i] == 1 ? 1 : 0;
    counts->documents[c] += 1;
    for (const std::string& f : features(inputs[i])) {
      counts->words[c][f] += 1;
      counts->totals[c] += 1;
      vocabulary[f] = true;
    }
  }
  counts->vocabulary = vocabulary.size();
  NaiveBayes nb;
  nb.counts_ = std::move(counts);
  return nb;
}

double NaiveBayes::probability(const SatisfactionInput& in) const {
  const Counts& c = *counts_;
  const double docs = c.documents[0] + c.documents[1];
  double log_p[2];
  for (int k = 0; k < 2; ++k) {
    log_p[k] = std::log((c.documents[k] + 1) / (docs + 2));
    const double denominator = c.totals[k] + static_cast<double>(c.vocabulary) + 1;
    for (const std::string& f : features(in)) {
      auto it = c.words[k].find(f);
      log_p[k] += std::log(((it == c.words[k].end() ? 0.0 : it->second) + 1) / denominator);  // Laplace
    }
  }
  return 1.0 / (1.0 + std::exp(log_p[0] - log_p[1]));
}

}  // namespace selffeed::satisfaction
