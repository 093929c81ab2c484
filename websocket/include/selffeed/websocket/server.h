// selffeed::websocket: one port, Boost.Beast HTTP + WebSocket, knowing nothing about chat.
//
// Upgrade requests on `chat_path` become WebSocket connections whose complete, valid
// messages go to a Handler; GET requests for files under `static_root` are served as
// files; every other HTTP request goes to Handler::on_http. The server enforces the
// transport limits itself (message size, UTF-8, rate, connections, idle, slow readers)
// and tells the client why, in the error frame documented in docs/protocol.md:
//
//   {"type":"error","code":"rate_limited","message":"..."}
//
//   auto server = Server::start(options, handler);   // threads are running
//   ...
//   (*server)->drain();                               // refuse new messages
//   (*server)->stop(std::chrono::seconds(5));        // flush, close 1001, join
//
// Thread safety: Server's methods and Connection's methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "selffeed/common/metrics.h"
#include "selffeed/common/status.h"

namespace selffeed::websocket {

struct Limits {
  // Largest WebSocket message (fragments reassembled); a bigger one closes the connection
  // with 1009 (the RFC 6455 answer; the stream cannot be resynchronised).
  std::size_t max_message_bytes = 16 * 1024;
  // Token bucket per connection. A message over the rate gets a "rate_limited" error and is
  // dropped; `max_rate_violations` of them in a row close the connection with 1008.
  double messages_per_second = 5;
  double burst = 20;
  int max_rate_violations = 50;
  // Chat connections beyond this get a "too_many_connections" error and close 1013.
  std::size_t max_connections = 1000;
  // Connections (HTTP or chat) from one client address beyond this are refused, so that one
  // client cannot take every connection or file descriptor: a chat upgrade gets a
  // "too_many_connections_from_address" error and close 1013, an HTTP request 429, and past
  // twice the limit the connection is closed at once (0: no limit). Behind a reverse proxy,
  // name it in ServerOptions::trusted_proxies, or every client has the proxy's address.
  std::size_t max_connections_per_address = 64;
  // No message from the client for this long: an "idle_timeout" error, then close 1000.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(10);
  // Frames queued for one client. When full the server stops reading that client; when a
  // single frame cannot be written for `send_timeout`, the connection is dropped.
  std::size_t outbound_queue_messages = 64;
  std::chrono::milliseconds send_timeout = std::chrono::seconds(10);
  // SO_SNDBUF for accepted sockets; 0 keeps the OS default (tests shrink it).
  int socket_send_buffer_bytes = 0;
  std::size_t max_http_body_bytes = 64 * 1024;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 picks a free port; see Server::port()
  int io_threads = 1;
  std::string chat_path = "/ws";
  std::string static_root;  // directory served at "/" ("/" -> index.html); empty: none
  Limits limits;
  // Reverse proxies (IP addresses) whose X-Forwarded-For header names the client: a request
  // that comes through one counts against its client's address (client_address_key), not
  // the proxy's, and the proxy's own connections are not limited. The header of any other
  // peer is ignored, since a client can write anything there.
  std::vector<std::string> trusted_proxies;
  metrics::Registry* metrics = nullptr;  // connection and transport-error metrics, optional
};

// WebSocket close codes the server uses (RFC 6455 section 7.4.1).
enum class CloseCode : std::uint16_t {
  kNormal = 1000,
  kGoingAway = 1001,
  kInvalidPayload = 1007,  // text frame that is not UTF-8
  kPolicyViolation = 1008,
  kTooBig = 1009,
  kTryAgainLater = 1013,
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual std::uint64_t id() const = 0;  // unique for the server's lifetime
  // The client's address as the per-address limits count it (client_address_key()).
  virtual const std::string& client_address() const = 0;
  // Queues a text frame. No-op once the connection is closing.
  virtual void send(std::string text) = 0;
  // Sends what is queued, then closes with `code`.
  virtual void close(CloseCode code, std::string reason) = 0;
};
using ConnectionPtr = std::shared_ptr<Connection>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;   // after '?', undecoded
  std::string authorization;  // the Authorization header
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_open(const ConnectionPtr& connection) {}
  // A complete message within the limits, valid UTF-8. Runs on an I/O thread, one message
  // at a time per connection, so it must not block.
  virtual void on_message(const ConnectionPtr& connection, std::string text) = 0;
  virtual void on_close(const ConnectionPtr& connection) {}
  // Any HTTP request that is neither the chat upgrade nor a static file. Call `respond`
  // exactly once, from any thread (hand slow work to another thread first).
  using Respond = std::function<void(HttpResponse)>;
  virtual void on_http(HttpRequest request, Respond respond);
};

// The key under which Limits::max_connections_per_address counts a client: an IPv4 address
// as it is (also when it comes IPv4-mapped, "::ffff:192.0.2.1"), an IPv6 address by its /64
// network ("2001:db8:1:2::/64"), since one host usually has a whole /64 to pick from; the
// text as it is when it is no address.
std::string address_key(std::string_view address);

// The address_key() of the client behind a request from `peer`: `peer`'s own unless it is
// one of `trusted_proxies`; then, reading `forwarded_for` (the X-Forwarded-For values,
// comma-separated, each proxy appending the address it saw) from the right, the first
// address that is not a trusted proxy, which is the one the outermost trusted proxy saw.
// An entry that is no address ends the walk there, as that entry's text.
std::string client_address_key(std::string_view peer, std::string_view forwarded_for,
                               const std::vector<std::string>& trusted_proxies);

// {"type":"error","code":<code>,"message":<message>} plus "id" when `request_id` is not empty.
std::string error_frame(std::string_view code, std::string_view message, std::string_view request_id = {});

class Server {
 public:
  // Binds, listens and starts the I/O threads. kUnavailable when the address cannot be bound.
  static Result<std::unique_ptr<Server>> start(const ServerOptions& options, std::shared_ptr<Handler> handler);
  ~Server();  // stop(0)

  std::uint16_t port() const;
  std::size_t connections() const;
  // Stops accepting connections; messages that arrive afterwards get a "shutting_down"
  // error instead of reaching the handler. Frames already queued are still sent.
  void drain();
  // drain(), then closes every connection with 1001 once its queue is written, waits up to
  // `grace` for that, and joins the I/O threads.
  void stop(std::chrono::milliseconds grace);

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace selffeed::websocket
