// selffeed::clients: the C++ side of talking to `selffeed serve` over loopback or a
// network: a blocking WebSocket client with timeouts, a one-shot HTTP request, and the
// terminal chat client. Used by `selffeed chat`, the load benchmark and the tests.
//
//   auto client = WsClient::connect("ws://127.0.0.1:8080/ws");
//   (*client)->send_text(R"({"type":"hello"})");
//   Result<std::string> frame = (*client)->read(std::chrono::seconds(5));
//
// Thread safety: one WsClient per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "selffeed/common/status.h"

namespace selffeed::clients {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string path = "/";
  // "ws://host:port/path" or "http://host:port/path"; kInvalidArgument otherwise.
  static Result<Endpoint> parse(std::string_view url);
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  // SO_RCVBUF before connecting; 0 keeps the OS default (tests shrink it).
  int receive_buffer_bytes = 0;
  // The address to connect from; empty: the OS picks (tests use 127.0.0.2, 127.0.0.3, ...
  // to be several clients on loopback).
  std::string local_address;
  // Header fields added to the WebSocket upgrade request, e.g. the X-Forwarded-For that a
  // reverse proxy adds.
  std::vector<std::pair<std::string, std::string>> headers;
};

// How the server ended the connection.
struct CloseInfo {
  std::uint16_t code = 0;  // 0 when the TCP connection ended without a close frame
  std::string reason;
};

class WsClient {
 public:
  // kUnavailable when the server cannot be reached or refuses the upgrade.
  static Result<std::unique_ptr<WsClient>> connect(std::string_view url, const ClientOptions& options = {});
  ~WsClient();

  Status send_text(std::string_view text);
  Status send_binary(std::string_view bytes);
  // The next message. kDeadlineExceeded when none came in time (the client stays usable);
  // kUnavailable once the connection is closed (see close_info()).
  Result<std::string> read(std::chrono::milliseconds timeout);
  std::optional<CloseInfo> close_info() const;
  // Close handshake (bounded by the write timeout).
  void close();

 private:
  struct Impl;
  explicit WsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// One request on a fresh connection. `url` is "http://host:port/path?query".
Result<HttpReply> http_request(std::string_view method, std::string_view url, std::string_view body = {},
                               std::string_view authorization = {},
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct TerminalChatOptions {
  std::string user_id;  // empty: anonymous
  bool learn = true;    // false: the conversation teaches the bot nothing (hello "learn")
};

// The terminal chat client: lines from `in` are messages; "/good" and "/bad" rate the
// bot's last reply (or the answer a reply's rating_request named), "/reset" starts a new
// topic, "/delete" deletes the conversation and starts a new one, "/quit" ends. Returns an
// exit code.
int run_terminal_chat(std::string_view url, const TerminalChatOptions& options, std::istream& in, std::ostream& out);

}  // namespace selffeed::clients
