// Misbehaving clients against a real server: each gets its documented error frame or close
// code (docs/protocol.md), while a well-behaved client chatting at the same time keeps
// getting every reply.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "server_process.h"

namespace selffeed {
namespace {

using nlohmann::json;
using testing::TempDir;
using namespace std::chrono_literals;

std::unique_ptr<clients::WsClient> connect(const clients::LocalServer& server, const clients::ClientOptions& options = {}) {
  auto client = clients::WsClient::connect(server.ws_url(), options);
  EXPECT_TRUE(client.ok()) << client.status().to_string();
  return client.ok() ? std::move(*client) : nullptr;
}

// A plain TCP connection to the server from `from` (a loopback address); -1 on failure.
int tcp_connect(std::uint16_t port, const char* from = "127.0.0.1") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{.sin_family = AF_INET};
  sockaddr_in server{.sin_family = AF_INET, .sin_port = htons(port)};
  if (fd < 0 || inet_pton(AF_INET, from, &local.sin_addr) != 1 || inet_pton(AF_INET, "127.0.0.1", &server.sin_addr) != 1 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// What the server sent on `fd` before it closed the connection; nullopt when it did not
// close it within `timeout`.
std::optional<std::string> read_until_closed(int fd, std::chrono::milliseconds timeout) {
  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd ready{.fd = fd, .events = POLLIN};
    if (::poll(&ready, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return received;
    received.append(buffer, static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

// Reads until the server closes the connection; returns the close code (0 without one).
int close_code_after_draining(clients::WsClient& client) {
  for (int i = 0; i < 10000; ++i) {
    auto frame = client.read(10s);
    if (!frame.ok()) {
      if (client.close_info() && client.close_info()->code == 0) ADD_FAILURE() << "no close frame: " << client.close_info()->reason;
      return client.close_info() ? client.close_info()->code : -1;
    }
  }
  return -1;
}

// Chats every 100 ms (under the rate limit) until told to stop, counting replies.
class PoliteUser {
 public:
  explicit PoliteUser(const clients::LocalServer& server) : thread_([this, &server] { run(server); }) {}
  ~PoliteUser() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int replies() const { return replies_; }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  void run(const clients::LocalServer& server) {
    auto client = clients::WsClient::connect(server.ws_url());
    if (!client.ok()) return failures_.push_back(client.status().to_string());
    json welcome = testing::request(**client, {{"type", "hello"}, {"user_id", "polite"}});
    if (welcome["type"] != "welcome") return failures_.push_back(welcome.dump());
    for (int i = 0; !stop_; ++i) {
      json reply = testing::request(**client, {{"type", "message"}, {"text", "where is your car ? " + std::to_string(i)}});
      if (reply["type"] != "reply") failures_.push_back(reply.dump());
      else ++replies_;
      std::this_thread::sleep_for(100ms);
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<int> replies_{0};
  std::vector<std::string> failures_;
  std::thread thread_;
};

TEST(BadInputTest, EachMisbehaviourGetsItsErrorWhileOthersAreServed) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"),
                       {"--max-message-bytes", "4096", "--max-text-bytes", "3000", "--rate", "20", "--burst", "20",
                        "--max-rate-violations", "30", "--outbound-queue", "8", "--send-timeout-ms", "1000",
                        "--socket-send-buffer", "4096", "--idle-timeout", "2"});
  ASSERT_TRUE(server);
  ASSERT_NE(server->port(), 0);
  PoliteUser polite(*server);
  std::this_thread::sleep_for(300ms);
  const int replies_before = polite.replies();

  {  // An oversized frame: close 1009 (the stream cannot be resynchronised).
    auto a = connect(*server);
    ASSERT_OK(a->send_text(std::string(8000, 'x')));
    EXPECT_EQ(close_code_after_draining(*a), 1009);
  }
  {  // Invalid JSON, an unknown type, a message before hello, a too-long text: errors, and the session lives on.
    auto a = connect(*server);
    EXPECT_EQ(testing::request(*a, json::parse("{\"id\":\"x\"}"))["code"], "invalid_message");
    ASSERT_OK(a->send_text("{this is not json"));
    EXPECT_EQ(testing::next_frame(*a)["code"], "invalid_json");
    json unknown = testing::request(*a, {{"type", "dance"}, {"id", "d1"}});
    EXPECT_EQ(unknown["code"], "unknown_type");
    EXPECT_EQ(unknown["id"], "d1");
    EXPECT_EQ(testing::request(*a, {{"type", "message"}, {"text", "hi"}})["code"], "no_conversation");
    ASSERT_EQ(testing::request(*a, {{"type", "hello"}})["type"], "welcome");
    EXPECT_EQ(testing::request(*a, {{"type", "message"}, {"text", std::string(3001, 'a')}})["code"], "text_too_long");
    EXPECT_EQ(testing::request(*a, {{"type", "message"}, {"text", "  "}})["code"], "empty_text");
    EXPECT_EQ(testing::request(*a, {{"type", "rate"}, {"turn", 99}, {"value", "up"}})["code"], "unknown_turn");
    EXPECT_EQ(testing::request(*a, {{"type", "suggest"}, {"text", "hi"}})["code"], "invalid_message") << "no turn";
    EXPECT_EQ(testing::request(*a, {{"type", "suggest"}, {"turn", 1}, {"text", " "}})["code"], "empty_text");
    EXPECT_EQ(testing::request(*a, {{"type", "suggest"}, {"turn", 99}, {"text", "hi"}})["code"], "unknown_turn");
    EXPECT_EQ(testing::request(*a, {{"type", "ping"}})["type"], "pong");
  }
  {  // Invalid UTF-8 in a binary frame: an error frame, the session survives.
    auto a = connect(*server);
    ASSERT_OK(a->send_binary("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}"));
    EXPECT_EQ(testing::next_frame(*a)["code"], "invalid_utf8");
    EXPECT_EQ(testing::request(*a, {{"type", "ping"}})["type"], "pong");
    // In a text frame RFC 6455 requires failing the connection: close 1007.
    ASSERT_OK(a->send_text("{\"type\":\"ping\",\"id\":\"\xc3\x28\"}"));
    EXPECT_EQ(close_code_after_draining(*a), 1007);
  }
  {  // A flood: "rate_limited" errors, then close 1008 after 30 in a row.
    auto a = connect(*server);
    for (int i = 0; i < 200; ++i) {
      if (!a->send_text(R"({"type":"ping"})").ok()) break;
    }
    int pongs = 0, limited = 0;
    for (;;) {
      auto frame = a->read(10s);
      if (!frame.ok()) break;
      json f = json::parse(*frame);
      if (f["type"] == "pong") ++pongs;
      if (f.value("code", "") == "rate_limited") ++limited;
    }
    ASSERT_TRUE(a->close_info());
    EXPECT_EQ(a->close_info()->code, 1008);
    EXPECT_GE(pongs, 1) << "the burst is served (answers still queued at the close are dropped)";
    EXPECT_EQ(limited, 30);
  }
  {  // Idle: an "idle_timeout" error, then a normal close.
    auto a = connect(*server);
    ASSERT_EQ(testing::request(*a, {{"type", "hello"}})["type"], "welcome");
    EXPECT_EQ(testing::next_frame(*a, 5s)["code"], "idle_timeout");
    EXPECT_EQ(close_code_after_draining(*a), 1000);
  }
  {  // A client that never reads: the server stops reading it, then drops it after the send timeout.
    // Big frames fill the small socket buffers fast: a conversation with long turns, resumed again and again.
    auto writer = connect(*server);
    json welcome = testing::request(*writer, {{"type", "hello"}});
    const std::string id = welcome["conversation_id"];
    for (int i = 0; i < 6; ++i) {
      ASSERT_EQ(testing::request(*writer, {{"type", "message"}, {"text", std::string(2900, 'a' + i)}})["type"], "reply");
      std::this_thread::sleep_for(60ms);
    }
    auto sink = connect(*server, {.receive_buffer_bytes = 4096});
    for (int i = 0; i < 20; ++i) {
      if (!sink->send_text(json({{"type", "hello"}, {"conversation_id", id}}).dump()).ok()) break;
    }
    bool dropped = false;
    for (int i = 0; i < 100 && !dropped; ++i) {
      std::this_thread::sleep_for(100ms);
      auto metrics = clients::http_request("GET", server->http_url("/metrics"));
      ASSERT_OK(metrics);
      dropped = metrics->body.find("selffeed_errors_total{code=\"slow_consumer\"} 1") != std::string::npos;
    }
    EXPECT_TRUE(dropped) << "the server never dropped the client that does not read";
  }

  std::this_thread::sleep_for(300ms);
  polite.finish();
  EXPECT_TRUE(polite.failures().empty()) << polite.failures().front();
  EXPECT_GT(polite.replies(), replies_before + 10) << "the polite user kept being answered throughout";
  auto health = clients::http_request("GET", server->http_url("/healthz"));
  ASSERT_OK(health);
  EXPECT_EQ(health->status, 200);
}

TEST(BadInputTest, ConnectionsBeyondTheLimitAreRefusedPolitely) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"), {"--max-connections", "2"});
  ASSERT_TRUE(server);
  ASSERT_NE(server->port(), 0);
  auto a = connect(*server);
  auto b = connect(*server);
  ASSERT_EQ(testing::request(*a, {{"type", "ping"}})["type"], "pong");
  ASSERT_EQ(testing::request(*b, {{"type", "ping"}})["type"], "pong");
  auto c = connect(*server);
  EXPECT_EQ(testing::next_frame(*c)["code"], "too_many_connections");
  EXPECT_EQ(close_code_after_draining(*c), 1013);
  EXPECT_EQ(testing::request(*a, {{"type", "ping"}})["type"], "pong") << "existing connections are unaffected";
}

TEST(BadInputTest, OneAddressCannotTakeEveryConnection) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"),
                                      {"--max-connections", "4", "--max-connections-per-address", "2"});
  ASSERT_TRUE(server);
  const clients::ClientOptions from_a{.local_address = "127.0.0.2"};
  const clients::ClientOptions from_b{.local_address = "127.0.0.3"};
  auto a1 = connect(*server, from_a);
  auto a2 = connect(*server, from_a);
  ASSERT_EQ(testing::request(*a1, {{"type", "ping"}})["type"], "pong");
  ASSERT_EQ(testing::request(*a2, {{"type", "ping"}})["type"], "pong");
  auto a3 = connect(*server, from_a);
  EXPECT_EQ(testing::next_frame(*a3)["code"], "too_many_connections_from_address");
  EXPECT_EQ(close_code_after_draining(*a3), 1013);

  auto b = connect(*server, from_b);
  EXPECT_EQ(testing::request(*b, {{"type", "ping"}})["type"], "pong") << "another address still gets in";
  EXPECT_EQ(testing::request(*a1, {{"type", "ping"}})["type"], "pong") << "the address's open connections are unaffected";

  // A closed connection gives its place back to its address (the server notices asynchronously).
  a1->close();
  bool admitted = false;
  for (int i = 0; i < 50 && !admitted; ++i) {
    auto again = connect(*server, from_a);
    admitted = testing::request(*again, {{"type", "ping"}})["type"] == "pong";
    if (!admitted) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(admitted) << "the address never got its place back";

  auto metrics = clients::http_request("GET", server->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_errors_total{code=\"too_many_connections_from_address\"}"), std::string::npos);
}

// Plain connections count too: past the limit an HTTP request gets 429, and past twice the
// limit the server closes the connection at once, so one address cannot hold the server's
// file descriptors with connections that never upgrade.
TEST(BadInputTest, OneAddressCannotHoldTheServerWithPlainConnectionsEither) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"), {"--max-connections-per-address", "2"});
  ASSERT_TRUE(server);
  std::vector<int> from_a;  // in the order the server accepts them: 2 within the limit, 2 over it, 1 past twice it
  for (int i = 0; i < 5; ++i) {
    from_a.push_back(tcp_connect(server->port(), "127.0.0.2"));
    ASSERT_GE(from_a.back(), 0);
  }
  EXPECT_EQ(read_until_closed(from_a[4], 3s), "") << "past twice the limit the connection is closed at once";

  const std::string get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(from_a[2], get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
  const std::string refused = read_until_closed(from_a[2], 10s).value_or("<not closed>");
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 429")) << refused;
  EXPECT_NE(refused.find("too many connections from your address"), std::string::npos) << refused;

  const int from_b = tcp_connect(server->port(), "127.0.0.3");
  ASSERT_GE(from_b, 0);
  ASSERT_EQ(::send(from_b, get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
  EXPECT_TRUE(read_until_closed(from_b, 10s).value_or("").starts_with("HTTP/1.1 200")) << "another address is served";
  ASSERT_EQ(::send(from_a[0], get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
  EXPECT_TRUE(read_until_closed(from_a[0], 10s).value_or("").starts_with("HTTP/1.1 200"))
      << "within the limit the address is served";
  for (int fd : from_a) ::close(fd);
  ::close(from_b);
}

// Behind a reverse proxy every connection comes from the proxy; named with --trusted-proxy,
// the proxy's X-Forwarded-For says whose it is, and each client gets its own limit. Any
// other peer's header is ignored: a client can write anything there.
TEST(BadInputTest, BehindATrustedProxyEachForwardedClientHasItsOwnLimit) {
  TempDir dir;
  auto server = testing::start_server(dir.str(), dir.str("store"),
                                      {"--max-connections-per-address", "2", "--trusted-proxy", "127.0.0.2"});
  ASSERT_TRUE(server);
  // A connection from `peer` whose upgrade request says it is for `client`.
  auto forwarded = [](const char* peer, const char* client) {
    return clients::ClientOptions{.local_address = peer, .headers = {{"X-Forwarded-For", client}}};
  };
  auto through_proxy = [&](const char* client) { return forwarded("127.0.0.2", client); };
  auto a1 = connect(*server, through_proxy("198.51.100.1"));
  auto a2 = connect(*server, through_proxy("203.0.113.9, 198.51.100.1"));  // what the client wrote is not read
  ASSERT_EQ(testing::request(*a1, {{"type", "ping"}})["type"], "pong");
  ASSERT_EQ(testing::request(*a2, {{"type", "ping"}})["type"], "pong");
  auto a3 = connect(*server, through_proxy("198.51.100.1"));
  EXPECT_EQ(testing::next_frame(*a3)["code"], "too_many_connections_from_address");
  EXPECT_EQ(close_code_after_draining(*a3), 1013);
  auto b = connect(*server, through_proxy("198.51.100.2"));
  EXPECT_EQ(testing::request(*b, {{"type", "ping"}})["type"], "pong")
      << "another client of the proxy gets in: the proxy's own fourth connection is not refused";
  // Plain HTTP through the proxy counts the same way, for as long as a request is served.
  auto get_for = [&](const char* client, bool close) {  // on a new proxy connection
    const int fd = tcp_connect(server->port(), "127.0.0.2");
    const std::string get = std::string("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: ") + client +
                            "\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
    EXPECT_EQ(::send(fd, get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
    return fd;
  };
  const int refused = get_for("198.51.100.1", true);
  EXPECT_TRUE(read_until_closed(refused, 10s).value_or("").starts_with("HTTP/1.1 429"))
      << "the client holds its two connections";
  // Two proxy connections kept alive after serving 198.51.100.3 once each: idle, they hold no place for it.
  const int idle[] = {get_for("198.51.100.3", false), get_for("198.51.100.3", false)};
  for (int fd : idle) EXPECT_EQ(read_until_closed(fd, 1s), std::nullopt) << "kept alive";
  const int third = get_for("198.51.100.3", true);
  EXPECT_TRUE(read_until_closed(third, 10s).value_or("").starts_with("HTTP/1.1 200"))
      << "each served request gives its place back";
  for (int fd : {refused, idle[0], idle[1], third}) ::close(fd);

  auto spoofing = [&](const char* client) { return forwarded("127.0.0.3", client); };
  auto c1 = connect(*server, spoofing("192.0.2.1"));
  auto c2 = connect(*server, spoofing("192.0.2.2"));
  ASSERT_EQ(testing::request(*c2, {{"type", "ping"}})["type"], "pong");
  auto c3 = connect(*server, spoofing("192.0.2.3"));
  EXPECT_EQ(testing::next_frame(*c3)["code"], "too_many_connections_from_address")
      << "an untrusted peer's header does not make it another client";
}

// A server out of file descriptors cannot accept; it must wait for some to be freed instead
// of retrying at once (which spun a core and wrote a warning per try, ~270,000 lines a
// second), and serve again when they are.
TEST(BadInputTest, OutOfFileDescriptorsTheServerWaitsQuietlyAndRecovers) {
  TempDir dir;
  auto server = clients::LocalServer::start({.binary = SELFFEED_BINARY,
                                             .bundle = testing::toy_bundle(),
                                             .store = dir.str("store"),
                                             .work_dir = dir.str(),
                                             .extra_args = {"--satisfaction", "regex", "--max-connections-per-address", "0"},
                                             .max_open_files = 96});
  ASSERT_OK(server);
  const std::uint16_t port = (*server)->port();

  std::vector<int> held;  // plain TCP connections that say nothing: each takes one of the server's descriptors
  for (int i = 0; i < 150; ++i) {
    held.push_back(tcp_connect(port));
    ASSERT_GE(held.back(), 0);
  }
  std::this_thread::sleep_for(1500ms);
  for (int fd : held) ::close(fd);

  std::unique_ptr<clients::WsClient> client;
  for (int i = 0; i < 100 && !client; ++i) {
    auto connected = clients::WsClient::connect((*server)->ws_url(), {.connect_timeout = 2s});
    if (connected.ok()) client = std::move(*connected);
  }
  ASSERT_TRUE(client) << "the server never accepted again";
  EXPECT_EQ(testing::request(*client, {{"type", "hello"}})["type"], "welcome");
  EXPECT_EQ(testing::request(*client, {{"type", "message"}, {"text", "hi , do you like dogs ?"}})["type"], "reply");

  auto metrics = clients::http_request("GET", (*server)->http_url("/metrics"));
  ASSERT_OK(metrics);
  EXPECT_NE(metrics->body.find("selffeed_errors_total{code=\"accept_failed\"}"), std::string::npos)
      << "the server never ran out of descriptors: the test did not test anything";
  const std::string log = testing::read_file((*server)->log_path());
  EXPECT_LT(std::count(log.begin(), log.end(), '\n'), 100) << "the log was flooded";
}

}  // namespace
}  // namespace selffeed
