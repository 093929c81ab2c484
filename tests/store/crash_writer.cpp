// Child process of store_crash_test: commits examples from several threads as fast as it
// can and reports each acknowledged one on stdout as "<seq> <kind> <target>\n" only
// after commit() returned OK. The parent SIGKILLs it at a random point.
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "selffeed/store/store.h"

using namespace selffeed;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: store_crash_writer DIR WRITERS\n");
    return 2;
  }
  auto store = store::Store::open({.path = argv[1]});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().to_string().c_str());
    return 1;
  }
  std::mutex out_mutex;
  std::vector<std::thread> writers;
  int n_writers = std::stoi(argv[2]);
  for (int w = 0; w < n_writers; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0;; ++i) {
        ExampleKind kind = kAllExampleKinds[i % 4];
        std::string target = "w" + std::to_string(w) + "-i" + std::to_string(i) + "-" + std::string(64 + i % 100, 'x');
        store::WriteSet set;
        set.turns.push_back({.conversation_id = "conv-w" + std::to_string(w), .index = static_cast<std::uint32_t>(i),
                             .text = target});
        set.examples.push_back({.kind = kind, .context = "__null__", .target = target, .user_id = "writer"});
        auto seqs = (*store)->commit(set);
        if (!seqs.ok()) {
          std::fprintf(stderr, "%s\n", seqs.status().to_string().c_str());
          std::_Exit(1);
        }
        std::lock_guard lock(out_mutex);
        std::printf("%llu %d %s\n", static_cast<unsigned long long>(seqs->front()), static_cast<int>(kind),
                    target.c_str());
        std::fflush(stdout);
      }
    });
  }
  for (auto& t : writers) t.join();
}
