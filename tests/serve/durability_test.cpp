// SIGKILL the server in the middle of a load run: every turn a client got a reply for, and
// every example the reply said was harvested, must be in the store after the restart.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include "selffeed/store/store.h"
#include "server_process.h"

namespace selffeed {
namespace {

using nlohmann::json;
using testing::TempDir;
using namespace std::chrono_literals;

struct Ack {
  std::string conversation_id;
  std::uint32_t user_turn = 0;
  std::string user_text;
  std::string bot_text;
  std::vector<std::string> harvested;
};

class AckLog {
 public:
  void add(Ack ack) {
    std::lock_guard lock(mutex_);
    acks_.push_back(std::move(ack));
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return acks_.size();
  }
  std::vector<Ack> all() const {
    std::lock_guard lock(mutex_);
    return acks_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Ack> acks_;
};

// One user chatting as fast as the server answers until the connection dies. Every third
// message complains, so feedback requests and FB examples happen too.
void chat_until_killed(const std::string& url, int user, AckLog& log) {
  auto client = clients::WsClient::connect(url);
  if (!client.ok()) return;
  json welcome = testing::request(**client, {{"type", "hello"}, {"user_id", "user" + std::to_string(user)}});
  if (welcome["type"] != "welcome") return;
  const std::string conversation = welcome["conversation_id"];
  for (int i = 0; i < 100000; ++i) {
    const std::string text = i % 3 == 2 ? "what ? that is not making sense " + std::to_string(i)
                                        : "user " + std::to_string(user) + " says where is your car ? " + std::to_string(i);
    json reply = testing::request(**client, {{"type", "message"}, {"text", text}});
    if (reply["type"] != "reply") return;  // the server is gone
    Ack ack{conversation, reply["user_turn"], text, reply["text"], {}};
    for (const auto& kind : reply["harvested"]) ack.harvested.push_back(kind);
    log.add(std::move(ack));
  }
}

void run_and_kill(const TempDir& dir, const std::string& store, AckLog& log, std::size_t acks_before_kill) {
  auto server = testing::start_server(dir.str(), store, {"--rate", "1000", "--burst", "1000"});
  ASSERT_TRUE(server);
  ASSERT_NE(server->port(), 0);
  std::vector<std::thread> users;
  for (int u = 0; u < 8; ++u) users.emplace_back(chat_until_killed, server->ws_url(), u, std::ref(log));
  for (int i = 0; i < 600 && log.size() < acks_before_kill; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_GE(log.size(), acks_before_kill) << "the load run was too slow";
  const int status = server->stop(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (auto& t : users) t.join();
}

TEST(DurabilityTest, EveryAcknowledgedTurnSurvivesSigkill) {
  TempDir dir;
  const std::string store_dir = dir.str("store");
  AckLog log;
  run_and_kill(dir, store_dir, log, 150);
  run_and_kill(dir, store_dir, log, 300);  // the restarted server takes new load on the same store

  auto opened = store::Store::open({.path = store_dir});
  ASSERT_OK(opened);
  store::Store& store = **opened;
  std::set<std::tuple<std::string, std::int64_t, std::string>> examples;  // (conversation, turn, kind)
  ASSERT_OK(store.scan_all_examples(0, [&](const Example& e) {
    examples.emplace(e.conversation_id, e.turn_index, std::string(example_kind_name(e.kind)));
    return true;
  }));

  const std::vector<Ack> acks = log.all();
  int missing = 0;
  for (const Ack& ack : acks) {
    auto turns = store.get_turns(ack.conversation_id, ack.user_turn);
    ASSERT_OK(turns);
    const bool ok = turns->size() >= 2 && (*turns)[0].index == ack.user_turn && (*turns)[0].text == ack.user_text &&
                    (*turns)[1].text == ack.bot_text;
    if (!ok && ++missing <= 5) ADD_FAILURE() << "lost turn " << ack.user_turn << " of " << ack.conversation_id;
    for (const std::string& kind : ack.harvested) {
      if (!examples.count({ack.conversation_id, ack.user_turn, kind}) && ++missing <= 5) {
        ADD_FAILURE() << "lost " << kind << " example of turn " << ack.user_turn << " of " << ack.conversation_id;
      }
    }
  }
  EXPECT_EQ(missing, 0) << "of " << acks.size() << " acknowledged turns";
  std::cout << acks.size() << " acknowledged turns checked, " << examples.size() << " examples in the store\n";
}

}  // namespace
}  // namespace selffeed
