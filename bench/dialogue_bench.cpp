// Dialogue model speed: training examples/s at a batch size, single-context reply latency
// (encode + score the whole candidate pool + top-k) over N contexts, and batched ranking
// of 32 contexts at once. Prints a Markdown table for BENCHMARKS.md.
//
//   dialogue_bench --bundle DIR --contexts FILE [--n 1000] [--train-steps 20] [--batch 128]
// FILE is ParlAI text (e.g. PersonaChat valid); its contexts and replies are the inputs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

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

  // Single-context latency over the whole pool.
  std::vector<double> single;
  for (int i = 0; i < n; ++i) {
    const auto& e = (*data)[static_cast<std::size_t>(i) % data->size()];
    std::vector<dialogue::RankRequest> req = {{.context = e.context}};
    auto t0 = Clock::now();
    auto r = m.rank(req, 5);
    single.push_back(ms_since(t0));
    if (!r.ok()) return 1;
  }
  // Batched: 32 contexts in one call.
  std::vector<double> batched;
  for (int i = 0; i + 32 <= n; i += 32) {
    std::vector<dialogue::RankRequest> req;
    for (int j = i; j < i + 32; ++j) req.push_back({.context = (*data)[static_cast<std::size_t>(j) % data->size()].context});
    auto t0 = Clock::now();
    auto r = m.rank(req, 5);
    batched.push_back(ms_since(t0));
    if (!r.ok()) return 1;
  }
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
  const double batched_mean = [&] {
    double s = 0;
    for (double x : batched) s += x;
    return s / static_cast<double>(batched.size());
  }();
  std::printf("| measurement | pool | p50 (ms) | p99 (ms) | throughput |\n|---|---:|---:|---:|---:|\n");
  std::printf("| reply latency, 1 context (encode + score pool + top-5), n=%zu | %zu | %.2f | %.2f | %.0f contexts/s |\n",
              single.size(), pool, percentile(single, 0.5), percentile(single, 0.99), 1000.0 / percentile(single, 0.5));
  std::printf("| ranking 32 contexts in one call, n=%zu calls | %zu | %.2f | %.2f | %.0f contexts/s (%.1fx single) |\n",
              batched.size(), pool, percentile(batched, 0.5), percentile(batched, 0.99), 32000.0 / batched_mean,
              (32000.0 / batched_mean) / (1000.0 / percentile(single, 0.5)));
  std::printf("| training step, batch %d (fwd + bwd + Adamax), %d steps | - | %.0f (mean) | - | %.1f examples/s |\n",
              batch_size, train_steps - 1, train_ms / (train_steps - 1),
              batch_size * (train_steps - 1) / (train_ms / 1000.0));
  return 0;
}
