// What the operator's review queue of disliked replies costs (GET /admin/replies/disliked,
// `selffeed store disliked`): it reads every transcript. Timed against a bare scan of the
// same transcripts, on a store of N conversations of 12 turns written the way the server
// writes them (six answers, one in five rated down, two in three of those with a reason;
// 500 distinct answers, so the queue groups). Prints a Markdown table for BENCHMARKS.md;
// the median of 3 reads per row. The last row is what reading the reports of the last week
// costs after a server's start (ReportedReplies::load).
//
//   review_queue_bench [--conversations N] [--dir DIR]
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "disliked_replies.h"
#include "selffeed/store/store.h"
#include "store_read_timing.h"

using namespace selffeed;
using bench::check;
using bench::median_seconds;

namespace {

void write_store(store::Store& store, std::size_t conversations) {
  constexpr std::uint32_t kTurns = 12;
  store::WriteSet writes;
  std::size_t answers = 0;
  for (std::size_t c = 0; c < conversations; ++c) {
    const std::string id = "conv-" + std::to_string(c);
    writes.conversations.push_back({.id = id, .user_id = "user-" + std::to_string(c / 3), .created_ms = 1,
                                    .updated_ms = 1});
    for (std::uint32_t t = 0; t < kTurns; ++t) {
      Turn turn{.conversation_id = id, .index = t, .speaker = t % 2 == 0 ? Speaker::kUser : Speaker::kBot,
                .time_ms = 1, .model_version = "bench"};
      if (turn.speaker == Speaker::kUser) {
        turn.text = "i have two dogs and a cat , do you have pets ? " + id;
        turn.satisfaction = 0.5;
      } else {
        const std::size_t answer = answers++;
        turn.text = "i walk my dogs every morning before work , reply " + std::to_string(answer % 500);
        turn.candidate_id = static_cast<std::int64_t>(answer % 500);
        if (answer % 5 == 0) {
          turn.thumbs_up = false;
          const std::size_t rated = answer / 5;
          if (rated % 3 != 0) turn.dislike_reason = kAllDislikeReasons[rated % std::size(kAllDislikeReasons)];
        }
      }
      writes.turns.push_back(std::move(turn));
    }
    if (writes.turns.size() >= 6000) {
      check(store.commit(writes).status());
      writes = {};
    }
  }
  if (!writes.turns.empty()) check(store.commit(writes).status());
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t conversations = 20000;
  std::string dir = (std::filesystem::temp_directory_path() / "selffeed-review-queue-bench").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--conversations") conversations = std::stoul(argv[i + 1]);
    else if (flag == "--dir") dir = argv[i + 1];
  }
  std::filesystem::remove_all(dir);
  {
    auto writer = check(store::Store::open({.path = dir, .sync_writes = false}));
    write_store(*writer, conversations);
  }
  auto store = check(store::Store::open({.path = dir, .mode = store::OpenMode::kReadOnly}));
  std::size_t turns = 0;
  const double bare = median_seconds([&] {
    turns = 0;
    check(store->scan_transcripts({}, [&](const Conversation&, const std::vector<Turn>& t) {
      turns += t.size();
      return true;
    }));
  });
  std::printf("| read (%zu conversations, %zu turns) | seconds | conversations/s | time / bare scan | replies "
              "listed |\n",
              conversations, turns);
  std::printf("|---|---:|---:|---:|---:|\n");
  std::printf("| bare scan (`scan_transcripts`) | %.3f | %.0f | 1.00x | - |\n", bare, conversations / bare);
  for (const auto& [name, filter] : {std::pair<const char*, app::DislikedFilter>{"review queue, every reason", {}},
                                     {"review queue, `reason=inappropriate`",
                                      {.reason = DislikeReason::kInappropriate}},
                                     {"review queue, `min_users=10`", {.min_users = 10}}}) {
    std::size_t listed = 0;
    const double seconds = median_seconds([&] { listed = check(app::disliked_replies(*store, filter)).size(); });
    std::printf("| %s | %.3f | %.0f | %.2fx | %zu |\n", name, seconds, conversations / seconds, seconds / bare, listed);
  }
  // What a server reads after its start: the reports of the last week (none here: every
  // conversation is older, so only the conversation records are read).
  app::ReportedReplies reported;
  const double load = median_seconds([&] { check(reported.load(*store)); });
  std::printf("| `ReportedReplies::load`, no conversation of the last week | %.3f | %.0f | %.2fx | %zu |\n",
              load, conversations / load, load / bare, reported.reported_by(1).size());
  std::filesystem::remove_all(dir);
  return 0;
}
