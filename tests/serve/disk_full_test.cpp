// A full disk under a running server: the store lives on a small tmpfs that a filler file
// fills up. The user whose turn cannot be saved gets `storage_full` (no reply, so nothing
// is acknowledged), the server keeps answering pings and /healthz, and once space is freed
// the same conversation is saved again. After a restart every acknowledged turn is there.
// Mounting a tmpfs needs root (CAP_SYS_ADMIN); without it the test is skipped, loudly.
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "selffeed/store/store.h"
#include "server_process.h"

namespace selffeed {
namespace {

using nlohmann::json;
using testing::TempDir;
using namespace std::chrono_literals;

// A tmpfs of `megabytes` at `path`, unmounted (lazily) when it goes out of scope.
class SmallDisk {
 public:
  SmallDisk(const std::string& path, int megabytes) : path_(path) {
    std::filesystem::create_directories(path);
    const std::string options = "size=" + std::to_string(megabytes) + "m";
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // Writes a filler file until the disk refuses more; returns the bytes written.
  std::size_t fill() {
    std::FILE* f = std::fopen((path_ + "/filler").c_str(), "wb");
    if (f == nullptr) return 0;
    std::setvbuf(f, nullptr, _IONBF, 0);
    const std::string chunk(4096, 'x');
    std::size_t written = 0;
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) written += chunk.size();
    std::fclose(f);
    return written;
  }
  void free_space() { std::filesystem::remove(path_ + "/filler"); }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

struct Ack {
  std::uint32_t user_turn = 0;
  std::string user_text;
  std::string bot_text;
};

TEST(DiskFullTest, StorageFullIsReportedNothingAcknowledgedIsLostAndSavingResumes) {
  TempDir dir;
  SmallDisk disk(dir.str("disk"), 16);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.error() << "); needs root";
  const std::string store_dir = dir.str("disk/store");
  std::vector<Ack> acks;
  std::string conversation;
  {
    auto server = testing::start_server(dir.str(), store_dir,
                                        {"--rate", "1000", "--burst", "1000", "--min-free-disk-mb", "4"});
    ASSERT_TRUE(server);
    auto client = clients::WsClient::connect(server->ws_url());
    ASSERT_OK(client);
    const json welcome = testing::request(**client, {{"type", "hello"}, {"user_id", "dora"}});
    ASSERT_EQ(welcome["type"], "welcome") << welcome.dump();
    conversation = welcome["conversation_id"];

    int sent = 0;
    auto say = [&]() -> json {
      const std::string text = "where is your car ? " + std::to_string(sent++);
      json frame = testing::request(**client, {{"type", "message"}, {"text", text}});
      if (frame["type"] == "reply") acks.push_back({frame["user_turn"], text, frame["text"]});
      return frame;
    };
    ASSERT_EQ(say()["type"], "reply");

    ASSERT_GT(disk.fill(), 0u);
    // The next few turns need the disk; the first that cannot be written is refused.
    json refused;
    for (int i = 0; i < 200 && refused.is_null(); ++i) {
      json frame = say();
      if (frame["type"] == "error") refused = frame;
      else ASSERT_EQ(frame["type"], "reply") << frame.dump() << testing::read_file(server->log_path());
    }
    ASSERT_FALSE(refused.is_null()) << "200 turns fitted on a full disk";
    EXPECT_EQ(refused["code"], "storage_full") << refused.dump();
    EXPECT_NE(refused["message"].get<std::string>().find("nothing was saved"), std::string::npos);

    // Still serving: pings, health, metrics.
    EXPECT_EQ(testing::request(**client, {{"type", "ping"}, {"id", "p"}})["type"], "pong");
    auto health = clients::http_request("GET", server->http_url("/healthz"), "", "", 10s);
    ASSERT_OK(health);
    EXPECT_EQ(health->status, 200);
    auto metrics = clients::http_request("GET", server->http_url("/metrics"), "", "", 10s);
    ASSERT_OK(metrics);
    EXPECT_NE(metrics->body.find("selffeed_errors_total{code=\"storage_full\"}"), std::string::npos);

    // Space comes back: the conversation goes on and is saved again (bounded retries).
    disk.free_space();
    json resumed;
    for (int i = 0; i < 50; ++i) {
      resumed = say();
      if (resumed["type"] == "reply") break;
      std::this_thread::sleep_for(200ms);
    }
    EXPECT_EQ(resumed["type"], "reply") << "saving did not resume after space was freed: " << resumed.dump();
    ASSERT_EQ(say()["type"], "reply");
    EXPECT_EQ(server->stop(SIGTERM), 0);
  }

  auto store = store::Store::open({.path = store_dir});
  ASSERT_OK(store);
  for (const Ack& ack : acks) {
    auto turns = (*store)->get_turns(conversation, ack.user_turn);
    ASSERT_OK(turns);
    ASSERT_GE(turns->size(), 2u) << "lost turn " << ack.user_turn;
    EXPECT_EQ((*turns)[0].text, ack.user_text);
    EXPECT_EQ((*turns)[1].text, ack.bot_text);
  }
  std::cout << acks.size() << " acknowledged turns checked\n";
}

}  // namespace
}  // namespace selffeed
