// How long the label model takes to fit (Dawid-Skene EM, satisfaction::LabelModel) on the
// labeling functions' votes over real human replies: the unrated ConvAI2 pool, in windows
// of the sizes the live label model of `selffeed serve` refits (--label-model-window), so
// that the cost of a refit on its thread is known. Median of --repeats fits per size.
// Then what the drift alerts (app::DriftMonitor) cost the inference worker: per judged
// reply, over the same votes, and per thumbs once its window holds 1,000.
// Prints Markdown tables for BENCHMARKS.md.
//
//   label_model_bench --labelled data_volunteers.json [--labelled ...] --pool export_*.json ...
//                     [--windows 2000,10000] [--repeats 5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "drift_monitor.h"
#include "selffeed/satisfaction/satisfaction.h"
#include "selffeed/trainer/trainer.h"

using namespace selffeed;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::vector<std::string> labelled, pool;
  std::string windows = "2000,10000";
  int repeats = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--labelled" && i + 1 < argc) labelled.push_back(argv[++i]);
    else if (flag == "--windows" && i + 1 < argc) windows = argv[++i];
    else if (flag == "--repeats" && i + 1 < argc) repeats = std::stoi(argv[++i]);
    else if (flag == "--pool") {
      while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) pool.push_back(argv[++i]);
    }
  }
  if (labelled.empty()) {
    std::fprintf(stderr, "usage: label_model_bench --labelled FILE... --pool FILE... [--windows 2000,10000] [--repeats 5]\n");
    return 2;
  }
  auto data = trainer::load_satisfaction_data(labelled, pool);
  if (!data.ok()) return std::fprintf(stderr, "%s\n", data.status().to_string().c_str()), 1;
  std::vector<std::vector<satisfaction::Vote>> votes;
  for (const auto& e : data->unlabelled) votes.push_back(satisfaction::apply_labeling_functions(e.input));

  std::printf("| replies | labeling functions | EM iterations | fit ms (median of %d) | prior |\n", repeats);
  std::printf("|---:|---:|---:|---:|---:|\n");
  std::stringstream sizes(windows);
  for (std::string item; std::getline(sizes, item, ',');) {
    const std::size_t n = std::min<std::size_t>(std::stoul(item), votes.size());
    const std::vector<std::vector<satisfaction::Vote>> window(votes.end() - static_cast<std::ptrdiff_t>(n), votes.end());
    std::vector<double> ms;
    int iterations = 0;
    double prior = 0;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = Clock::now();
      auto model = satisfaction::LabelModel::fit(window);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!model.ok()) return std::fprintf(stderr, "%s\n", model.status().to_string().c_str()), 1;
      iterations = model->iterations();
      prior = model->prior();
    }
    std::sort(ms.begin(), ms.end());
    std::printf("| %zu | %zu | %d | %.1f | %.3f |\n", n, window.front().size(), iterations, ms[ms.size() / 2], prior);
  }

  // The drift monitor on the worker's path: every reply in blocks of 2,000, and thumbs
  // (each one recomputes the AUC of the window). Median of --repeats passes.
  std::vector<double> per_reply_us, per_thumb_us;
  for (int r = 0; r < repeats; ++r) {
    metrics::Registry registry;
    app::DriftMonitor drift({.block = 2000, .thumbs_window = 1000}, registry);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < votes.size(); ++i) drift.judged(votes[i], static_cast<double>(i % 100) / 100);
    per_reply_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() /
                           static_cast<double>(votes.size()));
    for (int i = 0; i < 1000; ++i) drift.rated(static_cast<double>(i % 97) / 97, i % 3 != 0, i % 10 == 0);  // fill the window
    t0 = Clock::now();
    constexpr int kThumbs = 1000;
    for (int i = 0; i < kThumbs; ++i) drift.rated(static_cast<double>(i % 89) / 89, i % 2 == 0, i % 10 == 0);
    per_thumb_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kThumbs);
  }
  std::sort(per_reply_us.begin(), per_reply_us.end());
  std::sort(per_thumb_us.begin(), per_thumb_us.end());
  std::printf("\n| drift monitor | replies | µs per judged reply (median of %d) | µs per thumbs, 1,000 in the window |\n",
              repeats);
  std::printf("|---|---:|---:|---:|\n");
  std::printf("| blocks of 2,000 | %zu | %.2f | %.1f |\n", votes.size(), per_reply_us[per_reply_us.size() / 2],
              per_thumb_us[per_thumb_us.size() / 2]);
  return 0;
}
