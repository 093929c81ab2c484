#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <random>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "selffeed/common/context.h"
#include "selffeed/common/log.h"
#include "selffeed/trainer/trainer.h"

namespace selffeed::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr double kProgressEverySeconds = 10;

struct RunState {
  double best = -1;
  std::int64_t best_step = 0;
  int bad_validations = 0;
};

RunState read_state(const fs::path& path) {
  RunState s;
  std::ifstream in(path);
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    s.best = j.value("best_valid_hits_at_1", -1.0);
    s.best_step = j.value("best_step", std::int64_t{0});
    s.bad_validations = j.value("bad_validations", 0);
  }
  return s;
}

// Replaces `path` atomically (write a sibling, then rename over it).
Status write_file_atomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out) return resource_exhausted_error("cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return internal_error("cannot replace '" + path.string() + "': " + ec.message());
  return ok_status();
}

Status write_state(const fs::path& path, const RunState& s, std::int64_t step) {
  return write_file_atomically(path, json{{"best_valid_hits_at_1", s.best},
                                          {"best_step", s.best_step},
                                          {"bad_validations", s.bad_validations},
                                          {"step", step}}
                                             .dump(2) +
                                         "\n");
}

// Checkpoints and the best model live in step-numbered directories named by a small
// pointer file ("checkpoint" -> checkpoint-000500). The pointer is replaced atomically
// after the new directory is complete and the old one is removed only after that, so a
// kill at any moment leaves a complete model to resume from.
fs::path current_dir(const fs::path& run, const std::string& name) {
  std::ifstream in(run / (name + ".json"));
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("dir") && j["dir"].is_string()) return run / j["dir"].get<std::string>();
  return run / name;  // runs written before the pointer files
}

Status save_versioned(const dialogue::DialogueModel& model, const fs::path& run, const std::string& name,
                      const dialogue::BundleInfo& info, bool with_optimizer) {
  const fs::path previous = current_dir(run, name);
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%07lld", static_cast<long long>(model.steps()));
  const fs::path next = run / (name + suffix);
  SELFFEED_RETURN_IF_ERROR(model.save(next.string(), info, {.with_optimizer = with_optimizer, .overwrite = true}));
  SELFFEED_RETURN_IF_ERROR(
      write_file_atomically(run / (name + ".json"), json{{"dir", next.filename().string()}}.dump() + "\n"));
  std::error_code ec;
  if (previous != next) fs::remove_all(previous, ec);
  return ok_status();
}

// Batches come from windows of examples with similar context lengths, so little of a
// batch is padding (on 2 cores this is ~1.4x faster than uniform batches). The batch for
// `step` depends only on (seed, step), so a resumed run sees exactly the batches an
// uninterrupted one would have.
constexpr std::size_t kWindowBatches = 16;

struct Sampler {
  const DialogueTrainOptions& options;
  std::discrete_distribution<std::size_t> pick_source;
  std::vector<std::vector<std::size_t>> by_length;  // per source: indices sorted by context length

  explicit Sampler(const DialogueTrainOptions& o) : options(o) {
    std::vector<double> weights;
    for (const DataSource& s : o.sources) {
      weights.push_back(s.weight);
      std::vector<std::size_t> order(s.examples.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return s.examples[a].context.size() < s.examples[b].context.size();
      });
      by_length.push_back(std::move(order));
    }
    pick_source = std::discrete_distribution<std::size_t>(weights.begin(), weights.end());
  }

  std::vector<dialogue::TextPair> batch(std::int64_t step) const {
    std::mt19937_64 rng(options.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(step));
    auto pick = pick_source;
    const std::size_t source = pick(rng);
    const std::vector<RankingExample>& examples = options.sources[source].examples;
    const std::vector<std::size_t>& order = by_length[source];
    const std::size_t size = std::min<std::size_t>(static_cast<std::size_t>(options.batch_size), order.size());
    const std::size_t window = std::min(order.size(), size * kWindowBatches);
    const std::size_t start = std::uniform_int_distribution<std::size_t>(0, order.size() - window)(rng);
    std::uniform_int_distribution<std::size_t> within(start, start + window - 1);
    std::unordered_set<std::size_t> chosen;
    std::vector<dialogue::TextPair> out;
    while (out.size() < size) {
      std::size_t i = order[within(rng)];
      if (!chosen.insert(i).second) continue;
      out.push_back({.context = examples[i].context, .target = examples[i].target});
    }
    return out;
  }
};

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

Status validate_options(const DialogueTrainOptions& o) {
  if (o.run_dir.empty()) return invalid_argument_error("run directory is empty");
  if (o.sources.empty()) return invalid_argument_error("no training data");
  for (const DataSource& s : o.sources) {
    if (s.examples.size() < 2) return invalid_argument_error("training source '" + s.name + "' has fewer than 2 examples");
    if (!(s.weight > 0)) return invalid_argument_error("training source '" + s.name + "' needs a positive weight");
  }
  if (o.batch_size < 2) return invalid_argument_error("batch size must be at least 2");
  if (o.valid.empty()) return invalid_argument_error("no validation examples");
  if (o.validate_every <= 0 || o.patience <= 0) return invalid_argument_error("validate_every and patience must be positive");
  return ok_status();
}

}  // namespace

Result<TrainReport> train_dialogue(const DialogueTrainOptions& o) {
  SELFFEED_RETURN_IF_ERROR(validate_options(o));
  auto log = SELFFEED_LOGGER("trainer");
  const fs::path run(o.run_dir);
  std::error_code ec;
  fs::create_directories(run, ec);
  if (ec) return internal_error("cannot create run directory '" + o.run_dir + "': " + ec.message());

  // Tokenizer: trained once per run on the training replies (or the initial bundle's),
  // then reused on resume.
  const fs::path tokenizer_path = run / "tokenizer.model";
  std::shared_ptr<const dialogue::Tokenizer> tokenizer;
  std::unique_ptr<dialogue::DialogueModel> initial;
  if (!o.init_bundle.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(initial, dialogue::DialogueModel::load(o.init_bundle));
    tokenizer = initial->shared_tokenizer();
  } else if (fs::exists(tokenizer_path, ec)) {
    SELFFEED_ASSIGN_OR_RETURN(tokenizer, dialogue::Tokenizer::load(tokenizer_path.string()));
  } else {
    std::vector<std::string> texts;
    for (const DataSource& s : o.sources) {
      for (const RankingExample& e : s.examples) texts.push_back(e.target);
    }
    log->info("training a {}-piece SentencePiece tokenizer on {} replies", o.tokenizer.vocab_size, texts.size());
    SELFFEED_ASSIGN_OR_RETURN(tokenizer, dialogue::Tokenizer::train(texts, o.tokenizer));
    std::ofstream out(tokenizer_path, std::ios::binary);
    out << tokenizer->serialized();
    if (!out) return resource_exhausted_error("cannot write '" + tokenizer_path.string() + "'");
  }

  const fs::path state_path = run / "state.json";
  std::unique_ptr<dialogue::DialogueModel> model;
  RunState state;
  if (const fs::path checkpoint = current_dir(run, "checkpoint"); fs::exists(checkpoint / "bundle.json", ec)) {
    SELFFEED_ASSIGN_OR_RETURN(model, dialogue::DialogueModel::load(checkpoint.string()));
    state = read_state(state_path);
    log->info("resuming '{}' at step {} (best valid hits@1 {:.4f} at step {})", o.run_dir, model->steps(), state.best,
              state.best_step);
  } else if (initial) {
    log->info("fine-tuning from '{}' (version {})", o.init_bundle, initial->info().version);
    model = std::move(initial);
  } else {
    SELFFEED_ASSIGN_OR_RETURN(model, dialogue::DialogueModel::create(o.model, tokenizer, o.seed));
  }
  SELFFEED_RETURN_IF_ERROR(model->set_lexical_weight(0));
  SELFFEED_RETURN_IF_ERROR(model->set_persona_weight(0));

  const Sampler sampler(o);

  const auto start = Clock::now();
  const std::int64_t first_step = model->steps();
  auto last_progress = start;
  double loss_avg = std::nan("");
  double last_valid = state.best;
  std::int64_t examples = 0;
  bool early_stopped = state.bad_validations >= o.patience;
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  auto out_of_time = [&] { return o.max_minutes > 0 && elapsed() >= o.max_minutes * 60; };

  auto validate_and_checkpoint = [&]() -> Status {
    SELFFEED_ASSIGN_OR_RETURN(RankingMetrics m, evaluate_ranking(*model, o.valid));
    last_valid = m.hits_at_1;
    dialogue::BundleInfo info{.version = o.bundle_version};
    if (m.hits_at_1 > state.best) {
      state.best = m.hits_at_1;
      state.best_step = model->steps();
      state.bad_validations = 0;
      SELFFEED_RETURN_IF_ERROR(save_versioned(*model, run, "best", info, /*with_optimizer=*/false));
    } else {
      ++state.bad_validations;
    }
    SELFFEED_RETURN_IF_ERROR(save_versioned(*model, run, "checkpoint", info, /*with_optimizer=*/true));
    return write_state(state_path, state, model->steps());
  };

  while (!early_stopped && model->steps() < o.max_steps && !out_of_time()) {
    std::vector<dialogue::TextPair> batch = sampler.batch(model->steps());
    SELFFEED_ASSIGN_OR_RETURN(float loss, model->train_step(batch, o.optimizer));
    examples += static_cast<std::int64_t>(batch.size());
    loss_avg = std::isnan(loss_avg) ? loss : 0.98 * loss_avg + 0.02 * loss;
    const std::int64_t step = model->steps();
    const bool validate = step % o.validate_every == 0;
    if (validate) {
      SELFFEED_RETURN_IF_ERROR(validate_and_checkpoint());
      early_stopped = state.bad_validations >= o.patience;
    }
    if (validate || std::chrono::duration<double>(Clock::now() - last_progress).count() >= kProgressEverySeconds) {
      last_progress = Clock::now();
      const double rate = static_cast<double>(step - first_step) / std::max(elapsed(), 1e-9);
      double eta = static_cast<double>(o.max_steps - step) / std::max(rate, 1e-9);
      if (o.max_minutes > 0) eta = std::min(eta, o.max_minutes * 60 - elapsed());
      char valid[96] = "not yet";
      if (state.best >= 0) {
        std::snprintf(valid, sizeof valid, "%.4f (best %.4f @%lld)", last_valid, state.best,
                      static_cast<long long>(state.best_step));
      }
      char line[256];
      std::snprintf(line, sizeof line, "step %lld/%lld | %.1f ex/s | loss %.3f | valid hits@1 %s | ETA %s",
                    static_cast<long long>(step), static_cast<long long>(o.max_steps),
                    static_cast<double>(examples) / std::max(elapsed(), 1e-9), loss_avg, valid,
                    format_duration(eta).c_str());
      if (o.on_progress) o.on_progress(line);
    }
  }
  // Make sure the last stretch is validated and checkpointed too; and a run of no steps
  // (a bundle given a new candidate pool and refitted weights) once.
  if (state.best < 0 || (model->steps() % o.validate_every != 0 && model->steps() > first_step)) {
    SELFFEED_RETURN_IF_ERROR(validate_and_checkpoint());
  }

  TrainReport report;
  report.steps = model->steps();
  report.seconds = elapsed();
  report.examples_per_second = static_cast<double>(examples) / std::max(report.seconds, 1e-9);
  report.best_valid_hits_at_1 = state.best;
  report.best_step = state.best_step;
  report.early_stopped = early_stopped;

  // The final bundle: the best weights plus the deduplicated candidate pool.
  SELFFEED_ASSIGN_OR_RETURN(auto best, dialogue::DialogueModel::load(current_dir(run, "best").string()));
  std::vector<std::string> pool;
  std::unordered_set<std::string> seen;
  for (const std::string& c : o.candidate_pool) {
    if (!c.empty() && seen.insert(c).second) pool.push_back(c);
  }
  if (o.max_candidates > 0 && pool.size() > o.max_candidates) {
    report.candidates_left_out = pool.size() - o.max_candidates;
    pool.resize(o.max_candidates);
    log->info("candidate pool: the first {} of {} replies kept (max_candidates)", pool.size(),
              pool.size() + report.candidates_left_out);
  }
  SELFFEED_RETURN_IF_ERROR(best->set_candidate_pool(std::move(pool)));
  json metrics = {{"valid_hits@1", state.best}, {"best_step", state.best_step}};
  if (o.lexical_weight) {
    SELFFEED_RETURN_IF_ERROR(best->set_lexical_weight(*o.lexical_weight));
  } else if (o.valid.size() < kFewestExamplesToFitLexicalWeight) {
    log->info("lexical weight 0: {} validation examples are too few to fit it on", o.valid.size());
    SELFFEED_RETURN_IF_ERROR(best->set_lexical_weight(0));
  } else {
    SELFFEED_ASSIGN_OR_RETURN(LexicalWeightFit fit, fit_lexical_weight(*best, o.valid));
    log->info("lexical weight {} fitted on valid: MRR {:.4f} -> {:.4f}, hits@1 {:.4f} -> {:.4f}", fit.weight, fit.dense.mrr,
              fit.fitted.mrr, fit.dense.hits_at_1, fit.fitted.hits_at_1);
  }
  if (o.persona_weight) {
    SELFFEED_RETURN_IF_ERROR(best->set_persona_weight(*o.persona_weight));
  } else {
    SELFFEED_ASSIGN_OR_RETURN(PersonaWeightFit fit, fit_persona_weight(*best, o.valid));
    log->info("persona weight {} fitted on the {} validation examples with a persona: top replies from the pool that "
              "draw on it {:.3f} -> {:.3f}, people's replies {:.3f}",
              fit.weight, fit.examples, fit.rate_without, fit.rate_fitted, fit.people_rate);
    metrics["persona_fit"] = {{"examples", fit.examples}, {"people_rate", fit.people_rate},
                              {"rate_without", fit.rate_without}, {"rate", fit.rate_fitted}};
  }
  report.valid_hits_at_1_with_lexical = state.best;
  if (!o.valid.empty()) {
    SELFFEED_ASSIGN_OR_RETURN(RankingMetrics m, evaluate_ranking(*best, o.valid));
    report.valid_hits_at_1_with_lexical = m.hits_at_1;
  }
  report.lexical_weight = best->config().lexical_weight;
  report.persona_weight = best->config().persona_weight;
  metrics["lexical_weight"] = report.lexical_weight;
  metrics["persona_weight"] = report.persona_weight;
  metrics["valid_hits@1_with_lexical"] = report.valid_hits_at_1_with_lexical;
  json lineage = json::parse(o.lineage_json, nullptr, /*allow_exceptions=*/false);
  if (!lineage.is_object()) lineage = json::object();
  json sources = json::array();
  for (const DataSource& s : o.sources) sources.push_back({{"name", s.name}, {"examples", s.examples.size()}, {"weight", s.weight}});
  lineage["sources"] = sources;
  lineage["seed"] = o.seed;
  lineage["steps"] = state.best_step;
  lineage["batch_size"] = o.batch_size;
  lineage["valid_examples"] = o.valid.size();
  if (report.candidates_left_out > 0) lineage["candidates_left_out"] = report.candidates_left_out;
  if (!o.init_bundle.empty()) lineage["fine_tuned_from"] = o.init_bundle;
  report.bundle_dir = (run / "bundle").string();
  SELFFEED_RETURN_IF_ERROR(best->save(report.bundle_dir,
                                      {.version = o.bundle_version, .metrics_json = metrics.dump(), .lineage_json = lineage.dump()},
                                      {.overwrite = true}));
  // Fine-tuning trains the dialogue model only: the initial bundle's satisfaction estimator
  // stays with it.
  if (!o.init_bundle.empty()) {
    SELFFEED_RETURN_IF_ERROR(satisfaction::SatisfactionModel::copy_files(o.init_bundle, report.bundle_dir));
  }
  log->info("training done: {} steps, best valid hits@1 {:.4f} at step {}, bundle '{}' ({} candidates)", report.steps,
            state.best, state.best_step, report.bundle_dir, best->candidate_pool_size());
  return report;
}

}  // namespace selffeed::trainer
