#include <cmath>
#include <sstream>

#include "selffeed/common/context.h"
#include "selffeed/dialogue/dialogue.h"

namespace selffeed::dialogue {
namespace {

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in(normalize_text(text));
  for (std::string w; in >> w;) {
    if (w != kPartnerTag && w != kSelfTag && w != kNullContext) out.push_back(w);
  }
  return out;
}

}  // namespace

TfIdf::TfIdf() = default;

TfIdf::TfIdf(std::span<const std::string> documents) : documents_(documents.size()) {
  // Term counts once per document: their keys give the document frequencies, and they are
  // weighed into the postings once the IDF is known.
  std::vector<Vector> counts(documents.size());
  for (std::size_t i = 0; i < documents.size(); ++i) {
    counts[i] = term_counts(documents[i]);
    for (const auto& [w, c] : counts[i]) idf_[w] += 1.0;  // document frequency for now
  }
  const double n = static_cast<double>(documents.size());
  for (auto& [w, df] : idf_) df = std::log((1.0 + n) / (1.0 + df)) + 1.0;
  unseen_idf_ = std::log(1.0 + n) + 1.0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    weigh(counts[i]);
    for (const auto& [w, x] : counts[i]) postings_[w].push_back({static_cast<std::uint32_t>(i), static_cast<float>(x)});
  }
}

TfIdf::Vector TfIdf::term_counts(std::string_view text) {
  Vector v;
  for (const std::string& w : words(text)) v[w] += 1.0;
  return v;
}

void TfIdf::weigh(Vector& counts) const {
  double norm = 0;
  for (auto& [w, x] : counts) {
    auto it = idf_.find(w);
    x *= it == idf_.end() ? unseen_idf_ : it->second;
    norm += x * x;
  }
  norm = std::sqrt(norm);
  if (norm > 0) {
    for (auto& [w, x] : counts) x /= norm;
  }
}

TfIdf::Vector TfIdf::vector(std::string_view text) const {
  Vector v = term_counts(text);
  weigh(v);
  return v;
}

double TfIdf::cosine(const Vector& a, const Vector& b) {
  const Vector& small = a.size() < b.size() ? a : b;
  const Vector& large = a.size() < b.size() ? b : a;
  double s = 0;
  for (const auto& [w, x] : small) {
    if (auto it = large.find(w); it != large.end()) s += x * it->second;
  }
  return s;
}

std::vector<float> TfIdf::cosine_to_documents(std::string_view query) const {
  std::vector<float> scores(documents_, 0.0f);
  for (const auto& [w, x] : vector(query)) {
    auto it = postings_.find(w);
    if (it == postings_.end()) continue;
    for (const Posting& p : it->second) scores[p.document] += static_cast<float>(x) * p.weight;
  }
  return scores;
}

}  // namespace selffeed::dialogue
