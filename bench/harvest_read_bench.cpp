// How long retraining takes to read what the server harvested: trainer::load_harvested
// (deleted users skipped, the guard's refusals, the gate's conversations held out, the
// per-user cap, everything put in text order) against a bare scan of the same examples,
// on a store of N examples written the way the server writes them (a conversation's HB,
// FB and ST examples; one user in a hundred a heavy one). Prints a Markdown table for
// BENCHMARKS.md; the median of 3 reads per row. The last row is what retraining adds to pin
// its snapshot: the SHA-256 of the export of the HB and FB examples it uses. A second table
// times the read of a light and of the heavy user's conversations that the per-user cap on
// feedback requests makes at a user's first hello; a third a user deleting one conversation
// (Store::delete_conversation) in the same store: a light user's, the heavy user's, and an
// anonymous one's (all through the store's index by conversation). With --judge-bundle,
// the first table gains a row with the trust rule's relevance judge: that bundle's model
// ranks every FB example of the users with ten or more in its pool (it is slow: use
// --examples 20000).
//
//   harvest_read_bench [--examples N] [--dir DIR] [--judge-bundle DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "selffeed/common/digest.h"
#include "selffeed/store/store.h"
#include "store_read_timing.h"
#include "selffeed/trainer/trainer.h"

using namespace selffeed;
using bench::check;
using bench::median_seconds;
using Clock = std::chrono::steady_clock;

namespace {

// Conversations of kTurns turns: per turn an FB example, and every fourth turn an HB and
// an ST one (the learned estimator asks on most turns: the deployment runs harvest ~90% FB).
void write_store(store::Store& store, std::size_t examples) {
  constexpr int kTurns = 8;
  store::WriteSet writes;
  std::size_t written = 0;
  for (std::size_t c = 0; written < examples; ++c) {
    const std::string conversation = "conv-" + std::to_string(c);
    const std::string user = c % 100 == 0 ? "heavy-user" : "user-" + std::to_string(c / 5);
    writes.conversations.push_back({.id = conversation, .user_id = user});
    for (int t = 0; t < kTurns && written < examples; ++t) {
      const std::string context = "__p2__ i have two dogs and a cat , do you have pets ? turn " + std::to_string(t) +
                                  " __p1__ no but i would love a dog some day , " + conversation;
      const std::string reply = "i walk my dogs every morning before work , " + conversation + " turn " + std::to_string(t);
      auto add = [&](ExampleKind kind, std::string target) {
        writes.examples.push_back({.kind = kind, .context = context, .target = std::move(target), .conversation_id = conversation,
                                   .turn_index = t, .user_id = user, .model_version = "bench", .source = "server"});
        ++written;
      };
      add(ExampleKind::kFB, reply);
      if (t % 4 == 0) {
        add(ExampleKind::kHB, "yes , " + reply);
        add(ExampleKind::kST, "1");
      }
    }
    if (writes.examples.size() >= 2000) {
      check(store.commit(writes));
      writes = {};
    }
  }
  if (!writes.examples.empty()) check(store.commit(writes));
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t examples = 200000;
  std::string dir = (std::filesystem::temp_directory_path() / "selffeed-harvest-bench").string();
  std::string judge_bundle;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--examples") examples = std::stoul(argv[i + 1]);
    else if (flag == "--dir") dir = argv[i + 1];
    else if (flag == "--judge-bundle") judge_bundle = argv[i + 1];
  }
  std::filesystem::remove_all(dir);
  {
    auto writer = check(store::Store::open({.path = dir, .sync_writes = false}));
    write_store(*writer, examples);
  }
  auto store = check(store::Store::open({.path = dir, .mode = store::OpenMode::kReadOnly}));
  const trainer::HarvestGuard guard;

  std::size_t scanned = 0;
  const double scan = median_seconds([&] {
    scanned = 0;
    check(store->scan_all_examples(0, [&](const Example&) {
      ++scanned;
      return true;
    }));
  });
  std::printf("| read (%zu examples) | seconds | examples/s | time / bare scan | HB / FB / gate FB / thumbs returned | over the cap | untrusted users |\n",
              scanned);
  std::printf("|---|---:|---:|---:|---|---:|---:|\n");
  std::printf("| bare scan (`scan_all_examples`) | %.3f | %.0f | 1.00x | - | - | - |\n", scan, scanned / scan);
  const trainer::TrustRule no_trust_rule{.max_blocked_share = 2, .max_repeated_share = 2};
  struct Setting {
    const char* name;
    trainer::HarvestOptions options;
  };
  trainer::HarvestedExamples harvested;
  for (const Setting& setting : {Setting{"no cap, no trust rule", {.trust = no_trust_rule}},
                                 Setting{"no cap, the trust rule", {}},
                                 Setting{"cap 1,000 a user, the trust rule", {.max_per_user = 1000}}}) {
    const double seconds = median_seconds([&] { harvested = check(trainer::load_harvested(*store, guard, setting.options)); });
    std::printf("| `load_harvested`, %s | %.3f | %.0f | %.2fx | %zu / %zu / %zu / %zu | %zu | %zu |\n", setting.name,
                seconds, scanned / seconds, seconds / scan, harvested.dialogue.size(), harvested.feedback.size(),
                harvested.feedback_holdout.size(), harvested.thumbs.targets.size(), harvested.over_the_user_cap,
                harvested.untrusted.size());
    std::fflush(stdout);
  }
  std::set<std::uint64_t> used(harvested.dialogue_seqs.begin(), harvested.dialogue_seqs.end());
  used.insert(harvested.feedback_seqs.begin(), harvested.feedback_seqs.end());
  std::string sha256;
  const double pin = median_seconds([&] {
    Sha256Stream hash;
    check(store->export_examples(hash, {.seqs = used}));
    sha256 = hash.hex_digest();
  });
  std::printf("| snapshot pin: SHA-256 of the export of the %zu used | %.3f | %.0f | %.2fx | %.12s... | - | - |\n",
              used.size(), pin, scanned / pin, pin / scan, sha256.c_str());
  if (!judge_bundle.empty()) {
    std::shared_ptr<const dialogue::DialogueModel> model = check(dialogue::DialogueModel::load(judge_bundle));
    const trainer::HarvestOptions judged{.relevance = trainer::feedback_relevance(model)};
    trainer::HarvestedExamples read;
    const double seconds = median_seconds([&] { read = check(trainer::load_harvested(*store, guard, judged)); });
    std::printf("| `load_harvested`, no cap, the trust rule judging relevance (%zu-reply pool) | %.3f | %.0f | %.2fx | "
                "%zu / %zu / %zu / %zu | %zu | %zu |\n",
                model->candidate_pool_size(), seconds, scanned / seconds, seconds / scan, read.dialogue.size(),
                read.feedback.size(), read.feedback_holdout.size(), read.thumbs.targets.size(), read.over_the_user_cap,
                read.untrusted.size());
  }

  // serve --max-feedback-requests-per-user reads a user's requests of the last day at their
  // first hello, on the inference worker: every conversation of theirs, and the turns of
  // those updated since (none here: the bench's conversations have no turns).
  std::printf("\n| a user's feedback requests of the last day (first hello) | ms | conversations read | "
              "per conversation |\n|---|---:|---:|---:|\n");
  for (const auto& [name, user] : {std::pair{"a light user's (5 conversations)", "user-1"},
                                   std::pair{"the heavy user's (1 in 100 conversations)", "heavy-user"}}) {
    std::size_t conversations = 0;
    check(store->scan_transcripts({.user_id = user, .updated_after_ms = -1},
                                  [&](const Conversation&, const std::vector<Turn>&) {
      ++conversations;
      return true;
    }));
    const double seconds = median_seconds([&] {
      check(store->scan_transcripts({.user_id = user, .updated_after_ms = unix_millis() - 24 * 3600 * 1000},
                                    [](const Conversation&, const std::vector<Turn>&) { return true; }));
    });
    std::printf("| %s | %.3f | %zu | %.1f µs |\n", name, 1e3 * seconds, conversations,
                1e6 * seconds / static_cast<double>(conversations));
  }
  store.reset();

  auto writable = check(store::Store::open({.path = dir}));
  store::WriteSet anonymous;
  anonymous.conversations.push_back({.id = "anonymous"});
  for (int t = 0; t < 5; ++t) {
    anonymous.examples.push_back({.kind = ExampleKind::kHB,
                                  .context = "__p1__ hi",
                                  .target = "hello " + std::to_string(t),
                                  .conversation_id = "anonymous",
                                  .turn_index = t,
                                  .source = "server"});
  }
  check(writable->commit(anonymous));
  std::printf("\n| delete_conversation, in the store above | seconds | examples deleted |\n|---|---:|---:|\n");
  for (const auto& [name, conversation] : {std::pair{"a light user's (user-1: 5 conversations)", "conv-5"},
                                           std::pair{"the heavy user's (1 in 100 conversations)", "conv-100"},
                                           std::pair{"an anonymous one", "anonymous"}}) {
    const auto start = Clock::now();
    const store::DeleteConversationReport report = check(writable->delete_conversation(conversation));
    std::printf("| %s | %.4f | %llu |\n", name, std::chrono::duration<double>(Clock::now() - start).count(),
                static_cast<unsigned long long>(report.examples));
  }
  writable.reset();
  std::filesystem::remove_all(dir);
}
