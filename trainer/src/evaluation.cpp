#include <algorithm>
#include <optional>
#include <unordered_set>

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

// The request the server makes for an example's context: the persona's name and
// occupation are the bot's (ChatEngine), the first in a conversation.
dialogue::RankRequest served_request(const RankingExample& e) {
  return {.context = e.context,
          .persona = e.persona,
          .bot_name = first_in(e.persona, self_given_name),
          .bot_occupation = first_in(e.persona, self_stated_occupation)};
}

// The persona sentence `reply` draws on most, if it draws on one.
std::optional<std::string> fact_drawn_on(const dialogue::DialogueModel& model, const std::string& reply,
                                         std::span<const std::string> persona) {
  const std::string* best = nullptr;
  double best_cosine = kDrawsOnPersonaCosine;
  for (const std::string& sentence : persona) {
    const double cosine = model.persona_cosine(reply, std::span(&sentence, 1));
    if (cosine >= best_cosine) {
      best = &sentence;
      best_cosine = cosine;
    }
  }
  return best ? std::optional<std::string>(*best) : std::nullopt;
}

}  // namespace

Result<RankingMetrics> evaluate_ranking(const dialogue::DialogueModel& model, std::span<const RankingExample> data) {
  SELFFEED_RETURN_IF_ERROR(check_examples(data));
  std::vector<std::string> contexts;
  std::vector<std::vector<std::string>> candidates, personas;
  for (const RankingExample& e : data) {
    contexts.push_back(e.context);
    candidates.push_back(e.candidates);
    personas.push_back(e.persona);
  }
  // One call: the model encodes each distinct candidate once across the whole file.
  SELFFEED_ASSIGN_OR_RETURN(auto scores, model.score(contexts, candidates, personas));
  RankingMetrics m;
  for (std::size_t i = 0; i < data.size(); ++i) accumulate(scores[i], gold_index(data[i]), m);
  finish(m, data);
  return m;
}

Result<RepeatRates> evaluate_repeats(const dialogue::DialogueModel& model, std::span<const RankingExample> data,
                                     std::size_t max_examples) {
  constexpr std::size_t kChunk = 256;  // bounds the [contexts x pool] score matrix
  const std::size_t examples = std::min(data.size(), max_examples);
  if (examples == 0) return invalid_argument_error("no examples to look for repeats in");
  RepeatRates r;
  for (std::size_t begin = 0; begin < examples; begin += kChunk) {
    const std::span<const RankingExample> chunk = data.subspan(begin, std::min(kChunk, examples - begin));
    std::vector<dialogue::RankRequest> raw, served;
    for (const RankingExample& e : chunk) {
      raw.push_back({.context = e.context, .persona = e.persona, .block_repeats = false});
      served.push_back(served_request(e));
    }
    SELFFEED_ASSIGN_OR_RETURN(auto raw_top, model.rank(raw, 1));
    SELFFEED_ASSIGN_OR_RETURN(auto served_top, model.rank(served, 1));
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      // Counts one example in `rates`: whether each of the three replies `does` it.
      auto count = [&](ReplyRates& rates, auto&& does) {
        ++rates.examples;
        rates.ranked += does(raw_top[i].front().text);
        rates.served += does(served_top[i].front().text);
        rates.people += does(chunk[i].target);
      };
      const std::string& context = chunk[i].context;
      const std::vector<std::string> utterances = split_context(context);
      count(r.repeats, [&](const std::string& reply) { return model.repeats_context(reply, context); });
      if (!utterances.empty() && !questions_in(utterances.back()).empty()) {
        count(r.asking_back, [&](const std::string& reply) { return model.only_asks_back(reply, context); });
      }
      if (!utterances.empty() && !asks_how_one_is(utterances.back())) {
        count(r.unasked_how_it_is, [](const std::string& reply) { return tells_how_one_is(reply); });
      }
      const std::vector<std::string>& persona = chunk[i].persona;
      if (persona.empty()) continue;
      count(r.drawing_on_persona,
            [&](const std::string& reply) { return model.persona_cosine(reply, persona) >= kDrawsOnPersonaCosine; });
      const SelfFacts self{.name = served[i].bot_name,
                           .occupation = served[i].bot_occupation,
                           .has = stated_possessions(persona),
                           .favorites = stated_favorites(persona)};
      count(r.contradicting_persona, [&](const std::string& reply) { return contradicts(reply, self); });
      const AskedAbout asked = utterances.empty() ? AskedAbout{} : asked_about(utterances.back());
      if (knows_answer(asked, self)) {
        count(r.answering_about_itself, [&](const std::string& reply) { return !leaves_out_answer(reply, asked, self); });
      }
      if (const std::optional<std::string> fact = fact_drawn_on(model, chunk[i].target, persona)) {
        ++r.fact_examples;
        r.same_fact_served += model.persona_cosine(served_top[i].front().text, std::span(&*fact, 1)) >= kDrawsOnPersonaCosine;
      }
    }
  }
  for (ReplyRates* rates : {&r.repeats, &r.asking_back, &r.unasked_how_it_is, &r.drawing_on_persona,
                            &r.contradicting_persona, &r.answering_about_itself}) {
    if (rates->examples == 0) continue;
    const double n = static_cast<double>(rates->examples);
    rates->ranked /= n;
    rates->served /= n;
    rates->people /= n;
  }
  if (r.fact_examples > 0) r.same_fact_served /= static_cast<double>(r.fact_examples);
  return r;
}

Result<RankingMetrics> evaluate_tfidf(std::span<const RankingExample> data) {
  SELFFEED_RETURN_IF_ERROR(check_examples(data));
  std::vector<std::string> distinct;
  std::unordered_set<std::string_view> seen;
  for (const RankingExample& e : data) {
    for (const std::string& c : e.candidates) {
      if (seen.insert(c).second) distinct.push_back(c);
    }
  }
  const dialogue::TfIdf tfidf(distinct);
  RankingMetrics m;
  for (const RankingExample& e : data) {
    const dialogue::TfIdf::Vector context = tfidf.vector(e.context);
    std::vector<float> scores;
    for (const std::string& c : e.candidates) scores.push_back(static_cast<float>(dialogue::TfIdf::cosine(context, tfidf.vector(c))));
    accumulate(scores, gold_index(e), m);
  }
  finish(m, data);
  return m;
}

Result<LexicalWeightFit> fit_lexical_weight(dialogue::DialogueModel& model, std::span<const RankingExample> held_out) {
  SELFFEED_RETURN_IF_ERROR(check_examples(held_out));
  if (model.candidate_pool_size() == 0) {
    return failed_precondition_error("fitting the lexical weight needs the model's candidate pool");
  }
  std::vector<std::string> contexts;
  std::vector<std::vector<std::string>> candidates;
  for (const RankingExample& e : held_out) {
    contexts.push_back(e.context);
    candidates.push_back(e.candidates);
  }
  // Scores are linear in the weight: score(w) = dense + w * lexical, so two passes give all.
  SELFFEED_RETURN_IF_ERROR(model.set_lexical_weight(0));
  SELFFEED_ASSIGN_OR_RETURN(auto dense, model.score(contexts, candidates));
  SELFFEED_RETURN_IF_ERROR(model.set_lexical_weight(1));
  SELFFEED_ASSIGN_OR_RETURN(auto with_lexical, model.score(contexts, candidates));

  LexicalWeightFit fit;
  constexpr int kMaxWeight = 40;
  for (int w = 0; w <= kMaxWeight; ++w) {
    RankingMetrics m;
    for (std::size_t i = 0; i < held_out.size(); ++i) {
      std::vector<float> scores(dense[i].size());
      for (std::size_t j = 0; j < scores.size(); ++j) {
        scores[j] = dense[i][j] + static_cast<float>(w) * (with_lexical[i][j] - dense[i][j]);
      }
      accumulate(scores, gold_index(held_out[i]), m);
    }
    finish(m, held_out);
    if (w == 0) fit.dense = m;
    if (w == 0 || m.mrr > fit.fitted.mrr) {
      fit.weight = w;
      fit.fitted = m;
    }
  }
  SELFFEED_RETURN_IF_ERROR(model.set_lexical_weight(fit.weight));
  return fit;
}

Result<PersonaWeightFit> fit_persona_weight(dialogue::DialogueModel& model, std::span<const RankingExample> held_out) {
  if (model.candidate_pool_size() == 0) {
    return failed_precondition_error("fitting the persona weight needs the model's candidate pool");
  }
  std::vector<const RankingExample*> with_persona;
  for (const RankingExample& e : held_out) {
    if (!e.persona.empty()) with_persona.push_back(&e);
  }
  PersonaWeightFit fit{.examples = with_persona.size()};
  SELFFEED_RETURN_IF_ERROR(model.set_persona_weight(0));
  if (with_persona.size() < kFewestExamplesToFitLexicalWeight) return fit;

  auto draws_on_persona = [&](const std::string& reply, const RankingExample& e) {
    return model.persona_cosine(reply, e.persona) >= kDrawsOnPersonaCosine;
  };
  auto share = [&](std::size_t count) { return static_cast<double>(count) / static_cast<double>(with_persona.size()); };
  fit.people_rate = share(static_cast<std::size_t>(std::count_if(
      with_persona.begin(), with_persona.end(), [&](const RankingExample* e) { return draws_on_persona(e->target, *e); })));
  // The share of top replies, as served, that draw on the persona at `weight`.
  constexpr std::size_t kChunk = 256;  // bounds the [contexts x pool] score matrix
  auto bot_rate = [&](double weight) -> Result<double> {
    SELFFEED_RETURN_IF_ERROR(model.set_persona_weight(weight));
    std::size_t drawing = 0;
    for (std::size_t begin = 0; begin < with_persona.size(); begin += kChunk) {
      const std::size_t end = std::min(with_persona.size(), begin + kChunk);
      std::vector<dialogue::RankRequest> requests;
      for (std::size_t i = begin; i < end; ++i) {
        requests.push_back(served_request(*with_persona[i]));
      }
      SELFFEED_ASSIGN_OR_RETURN(auto top, model.rank(requests, 1));
      for (std::size_t i = begin; i < end; ++i) drawing += draws_on_persona(top[i - begin].front().text, *with_persona[i]);
    }
    return share(drawing);
  };
  constexpr int kMaxWeight = 40;
  for (int w = 0; w <= kMaxWeight; ++w) {
    SELFFEED_ASSIGN_OR_RETURN(const double rate, bot_rate(w));
    if (w == 0) fit.rate_without = rate;
    fit.weight = w;
    fit.rate_fitted = rate;
    if (rate >= fit.people_rate) break;
  }
  return fit;
}

}  // namespace selffeed::trainer
