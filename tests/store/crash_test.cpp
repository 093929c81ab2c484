// Durability under SIGKILL: every record the child acknowledged must be intact after
// reopening. Repeated 20 times with random kill points.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "selffeed/store/store.h"
#include "testing.h"

namespace selffeed::store {
namespace {

struct Ack {
  std::uint64_t seq;
  int kind;
  std::string target;
};

// Runs the writer until it has acknowledged `kill_after` records, then SIGKILLs it.
std::vector<Ack> run_and_kill(const std::string& dir, int writers, int kill_after) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::string n = std::to_string(writers);
    execl(SELFFEED_CRASH_WRITER, SELFFEED_CRASH_WRITER, dir.c_str(), n.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  std::vector<Ack> acks;
  char line[512];
  while (static_cast<int>(acks.size()) < kill_after && std::fgets(line, sizeof line, in) != nullptr) {
    std::istringstream fields(line);
    Ack a;
    fields >> a.seq >> a.kind >> a.target;
    acks.push_back(a);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  // Acks already in the pipe were acknowledged before the kill, so they count too.
  while (std::fgets(line, sizeof line, in) != nullptr) {
    std::istringstream fields(line);
    Ack a;
    if (fields >> a.seq >> a.kind >> a.target) acks.push_back(a);
  }
  std::fclose(in);
  return acks;
}

TEST(StoreCrashTest, EveryAcknowledgedRecordSurvivesSigkill) {
  selffeed::testing::TempDir dir;
  std::mt19937 rng(20190101);
  std::size_t total_acked = 0;
  std::vector<Ack> all;
  for (int round = 0; round < 20; ++round) {
    int writers = round % 2 == 0 ? 1 : 4;
    int kill_after = std::uniform_int_distribution<int>(1, 150)(rng);
    std::vector<Ack> acks = run_and_kill(dir.str("db"), writers, kill_after);
    ASSERT_GE(static_cast<int>(acks.size()), kill_after) << "writer died early in round " << round;
    all.insert(all.end(), acks.begin(), acks.end());
    total_acked += acks.size();

    auto store = Store::open({.path = dir.str("db")});
    ASSERT_OK(store);
    for (const Ack& a : all) {
      auto e = (*store)->get_example(static_cast<ExampleKind>(a.kind), a.seq);
      ASSERT_OK(e) << " (round " << round << ", seq " << a.seq << ")";
      EXPECT_EQ(e->target, a.target) << "seq " << a.seq;
      EXPECT_EQ(e->context, "__null__");
    }
    // The reopened store must hand out sequence numbers above everything acknowledged.
    auto next = (*store)->add_example({.kind = ExampleKind::kHH, .context = "__null__", .target = "probe"});
    ASSERT_OK(next);
    for (const Ack& a : all) ASSERT_GT(*next, a.seq);
  }
  EXPECT_GE(total_acked, 20u);
}

}  // namespace
}  // namespace selffeed::store
