// Dialogue model speed: training examples/s at a batch size, single-context reply latency
// (encode + score the whole candidate pool + top-k) over N contexts, and batched ranking
// of 32 contexts at once (with and without the lexical term when the bundle has one, with
// and without the repeat filters, with a long conversation behind every context, and with
// the file's personas when the bundle weighs them, and with 1% of the pool withdrawn as a
// deleted user's), and what finding a deleted user's replies in the pool costs.
// Prints a Markdown table for BENCHMARKS.md.
//
//   dialogue_bench --bundle DIR --contexts FILE [--n 1000] [--train-steps 20] [--batch 128]
// FILE is ParlAI text (e.g. PersonaChat valid); its contexts and replies are the inputs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "selffeed/common/context.h"
#include "selffeed/common/digest.h"
#include "selffeed/dialogue/dialogue.h"
#include "selffeed/trainer/trainer.h"

using namespace selffeed;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

int main(int argc, char** argv) {
  std::string bundle, file;
  int n = 1000, train_steps = 20, batch_size = 128, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--bundle") bundle = argv[i + 1];
    else if (flag == "--contexts") file = argv[i + 1];
    else if (flag == "--n") n = std::stoi(argv[i + 1]);
    else if (flag == "--train-steps") train_steps = std::stoi(argv[i + 1]);
    else if (flag == "--batch") batch_size = std::stoi(argv[i + 1]);
    else if (flag == "--threads") threads = std::stoi(argv[i + 1]);
  }
  if (bundle.empty() || file.empty()) {
    std::fprintf(stderr, "usage: dialogue_bench --bundle DIR --contexts FILE [--n 1000] [--train-steps 20] [--batch 128]\n");
    return 2;
  }
  dialogue::configure_threads({.intra_op = threads});
  auto data = trainer::load_parlai_text(file);
  auto model = dialogue::DialogueModel::load(bundle);
  if (!data.ok() || !model.ok()) {
    std::fprintf(stderr, "%s\n", (!data.ok() ? data.status() : model.status()).to_string().c_str());
    return 1;
  }
  dialogue::DialogueModel& m = **model;
  const std::size_t pool = m.candidate_pool_size();
  std::printf("bundle %s: d_model %d, %d layers, FFN %d, pool %zu candidates; BLAS %s; %d torch thread(s)\n\n",
              bundle.c_str(), m.config().d_model, m.config().n_layers, m.config().ffn_size, pool,
              dialogue::loaded_blas_library().c_str(), threads);

  // Single-context latency over the whole pool, and 32 contexts in one call: the bundle
  // as served, as served deep into a conversation (the policy's caps: 32 earlier
  // utterances, 32 questions the bot asked; here the file's 32 replies before the context,
  // every second one the bot's own answer, and their questions; a name the bot gave itself,
  // no greeting allowed), the same without blocking repeats, when it has a persona term
  // with the file's personas, and, when it has a lexical term, without that term; call by
  // call in turn so that all see the same load on a shared machine.
  struct Latencies {
    std::string score;  // which score was ranked
    double lexical_weight = 0;
    bool block_repeats = true;
    bool long_conversation = false;
    bool persona = false;
    bool withdrawn = false;  // every 100th reply of the pool withdrawn (a deleted user's)
    std::vector<double> single, batched;
  };
  const double lexical_weight = m.config().lexical_weight;
  const std::string served = lexical_weight > 0 ? "dense + lexical" : "dense";
  std::vector<Latencies> runs = {{.score = served + ", as served", .lexical_weight = lexical_weight},
                                 {.score = served + ", repeats not blocked", .lexical_weight = lexical_weight,
                                  .block_repeats = false},
                                 {.score = served +
                                           ", as served, 32 utterances and 32 questions before, a name, no greeting",
                                  .lexical_weight = lexical_weight, .long_conversation = true}};
  if (m.config().persona_weight > 0) {
    runs.push_back({.score = served + " + persona, as served, the file's persona", .lexical_weight = lexical_weight,
                    .persona = true});
  }
  runs.push_back({.score = served + ", as served, 1% of the pool withdrawn", .lexical_weight = lexical_weight,
                  .withdrawn = true});
  if (lexical_weight > 0) runs.push_back({.score = "dense only", .lexical_weight = 0});
  auto withdrawn_ids = std::make_shared<std::vector<std::int64_t>>();
  for (std::size_t id = 0; id < pool; id += 100) withdrawn_ids->push_back(static_cast<std::int64_t>(id));
  auto run_where = [&](auto&& is) -> const Latencies* {
    auto it = std::find_if(runs.begin(), runs.end(), is);
    return it == runs.end() ? nullptr : &*it;
  };
  constexpr std::size_t kConversation = 32;
  auto add_conversation = [&](dialogue::RankRequest& r, std::size_t at) {
    for (std::size_t back = kConversation; back > 0; --back) {
      const std::string& earlier = (*data)[(at + data->size() * kConversation - back) % data->size()].target;
      r.earlier_utterances.push_back(earlier);
      if (back % 2 == 1) r.own_answers.push_back(earlier);  // every second one, ending with the last
      for (std::string_view q : questions_in(earlier)) r.asked_questions.emplace_back(q);
    }
    if (r.asked_questions.size() > kConversation) {
      r.asked_questions.erase(r.asked_questions.begin(), r.asked_questions.end() - kConversation);
    }
    // Past its first answer the bot may not greet, and it has given itself a name.
    r.bot_name = "sam";
    r.may_greet = false;
  };
  auto timed_rank = [&](Latencies& l, std::vector<dialogue::RankRequest> req, std::size_t first) {
    if (!m.set_lexical_weight(l.lexical_weight).ok()) return false;
    for (std::size_t j = 0; j < req.size(); ++j) {
      req[j].block_repeats = l.block_repeats;
      if (l.long_conversation) add_conversation(req[j], first + j);
      if (l.persona) req[j].persona = (*data)[(first + j) % data->size()].persona;
      if (l.withdrawn) req[j].withdrawn = withdrawn_ids;
    }
    std::vector<double>& into = req.size() == 1 ? l.single : l.batched;
    auto t0 = Clock::now();
    auto r = m.rank(req, 5);
    into.push_back(ms_since(t0));
    return r.ok();
  };
  for (int i = 0; i < n; ++i) {
    std::vector<dialogue::RankRequest> req = {{.context = (*data)[static_cast<std::size_t>(i) % data->size()].context}};
    for (Latencies& l : runs) {
      if (!timed_rank(l, req, static_cast<std::size_t>(i))) return 1;
    }
  }
  for (int i = 0; i + 32 <= n; i += 32) {
    std::vector<dialogue::RankRequest> req;
    for (int j = i; j < i + 32; ++j) req.push_back({.context = (*data)[static_cast<std::size_t>(j) % data->size()].context});
    for (Latencies& l : runs) {
      if (!timed_rank(l, req, static_cast<std::size_t>(i))) return 1;
    }
  }
  if (!m.set_lexical_weight(lexical_weight).ok()) return 1;
  // Training throughput on the file's (context, reply) pairs.
  std::vector<dialogue::TextPair> pairs;
  for (const auto& e : *data) pairs.push_back({e.context, e.target});
  double train_ms = 0;
  for (int s = 0; s < train_steps; ++s) {
    std::vector<dialogue::TextPair> batch;
    for (int j = 0; j < batch_size; ++j) {
      batch.push_back(pairs[(static_cast<std::size_t>(s) * batch_size + j) % pairs.size()]);
    }
    auto t0 = Clock::now();
    auto loss = m.train_step(batch, {});
    if (s > 0) train_ms += ms_since(t0);  // the first step allocates optimizer state
    if (!loss.ok()) return 1;
  }
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return sum / static_cast<double>(v.size());
  };
  std::printf("| measurement | pool | p50 (ms) | p99 (ms) | throughput |\n|---|---:|---:|---:|---:|\n");
  for (const Latencies& l : runs) {
    std::printf("| reply latency, 1 context (encode + score pool + top-5), %s, n=%zu | %zu | %.2f | %.2f | %.0f contexts/s |\n",
                l.score.c_str(), l.single.size(), pool, percentile(l.single, 0.5), percentile(l.single, 0.99),
                1000.0 / percentile(l.single, 0.5));
    std::printf("| ranking 32 contexts in one call, %s, n=%zu calls | %zu | %.2f | %.2f | %.0f contexts/s (%.1fx single) |\n",
                l.score.c_str(), l.batched.size(), pool, percentile(l.batched, 0.5), percentile(l.batched, 0.99),
                32000.0 / mean(l.batched), (32000.0 / mean(l.batched)) / (1000.0 / percentile(l.single, 0.5)));
  }
  std::printf("| blocking repeats' cost: single p50 ratio (as served / not blocked) | %zu | %.2fx | - | - |\n", pool,
              percentile(runs[0].single, 0.5) / percentile(runs[1].single, 0.5));
  std::printf("| a long conversation's cost: single p50 ratio (32 + 32 before / as served) | %zu | %.2fx | - | - |\n", pool,
              percentile(runs[2].single, 0.5) / percentile(runs[0].single, 0.5));
  if (const Latencies* with_persona = run_where([](const Latencies& l) { return l.persona; })) {
    std::printf("| persona term's cost: single p50 ratio (with the persona / as served) | %zu | %.2fx | - | - |\n", pool,
                percentile(with_persona->single, 0.5) / percentile(runs[0].single, 0.5));
  }
  if (const Latencies* dense = run_where([](const Latencies& l) { return l.lexical_weight == 0; }); dense && lexical_weight > 0) {
    std::printf("| lexical term's cost: single p50 ratio (not blocked / dense only) | %zu | %.2fx | - | - |\n", pool,
                percentile(runs[1].single, 0.5) / percentile(dense->single, 0.5));
  }
  if (const Latencies* withdrawn = run_where([](const Latencies& l) { return l.withdrawn; })) {
    std::printf("| withdrawn replies' cost: single p50 ratio (1%% withdrawn / as served) | %zu | %.2fx | - | - |\n", pool,
                percentile(withdrawn->single, 0.5) / percentile(runs[0].single, 0.5));
  }
  // What a swap or a deletion adds to find a deleted user's replies in the pool: the
  // SHA-256 of every candidate (ModelManager), once.
  std::size_t digest_bytes = 0;
  const auto digests_from = Clock::now();
  for (const std::string& text : m.candidate_pool()) digest_bytes += sha256_hex(text).size();
  const double digest_ms = ms_since(digests_from);
  std::printf("| SHA-256 of every pool reply (finding deleted users' replies, per swap or deletion) | %zu | %.1f (once) | - "
              "| %.2f us/reply |\n",
              pool, digest_ms, 1000.0 * digest_ms / static_cast<double>(std::max<std::size_t>(1, pool)));
  if (digest_bytes != 64 * pool) return 1;
  std::printf("| training step, batch %d (fwd + bwd + Adamax), %d steps | - | %.0f (mean) | - | %.1f examples/s |\n",
              batch_size, train_steps - 1, train_ms / (train_steps - 1),
              batch_size * (train_steps - 1) / (train_ms / 1000.0));
  return 0;
}
