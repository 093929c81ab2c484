// The Beast side of selffeed::websocket: listener -> HTTP session -> (upgrade) WebSocket
// session, after Beast's advanced_server and chat-multi examples. Every session runs on its
// own strand; a WebSocket session owns a bounded outbound queue with one write in flight.
#include "selffeed/websocket/server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "selffeed/common/log.h"
#include "selffeed/common/utf8.h"

namespace selffeed::websocket {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ws = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kHttpReadTimeout = std::chrono::seconds(30);
constexpr auto kRefusedReadTimeout = std::chrono::seconds(5);

spdlog::logger* log() { return SELFFEED_LOGGER("websocket"); }

// Errors that only mean "the peer went away" or "we closed it": not worth a warning.
bool is_expected_close(const beast::error_code& ec) {
  return ec == net::error::operation_aborted || ec == ws::error::closed || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == http::error::end_of_stream || ec == beast::error::timeout ||
         ec == net::error::broken_pipe || ec == net::error::bad_descriptor;
}

// An IPv4 client of a dual-stack socket comes as an IPv4-mapped IPv6 address.
net::ip::address one_per_host(const net::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
  }
  return address;
}

std::string address_key(const net::ip::address& any) {
  const net::ip::address address = one_per_host(any);
  if (address.is_v4()) return address.to_string();
  net::ip::address_v6::bytes_type network = address.to_v6().to_bytes();
  std::fill(network.begin() + 8, network.end(), 0);
  return net::ip::address_v6(network).to_string() + "/64";
}

// `text` as an address, one value per host (an IPv4-mapped IPv6 address is its IPv4 one).
// X-Forwarded-For entries may carry a port ("192.0.2.7:4711", "[2001:db8::1]:4711").
// `text` without the spaces and tabs around it (as a header list's entries come).
std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::optional<net::ip::address> parse_address(std::string_view text) {
  text = trimmed(text);
  if (text.starts_with('[')) {
    text = text.substr(1, text.find(']') - 1);
  } else if (const auto colon = text.find(':');
             colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
    text = text.substr(0, colon);  // IPv4 with a port; IPv6 has more than one colon
  }
  beast::error_code ec;
  const net::ip::address address = net::ip::make_address(text, ec);
  if (ec) return std::nullopt;
  return one_per_host(address);
}

// ServerOptions::trusted_proxies, parsed once; an entry that is no address is left out.
using TrustedProxies = std::vector<net::ip::address>;

TrustedProxies parse_trusted_proxies(const std::vector<std::string>& proxies) {
  TrustedProxies parsed;
  for (const std::string& proxy : proxies) {
    if (auto address = parse_address(proxy)) parsed.push_back(*address);
  }
  return parsed;
}

bool is_trusted_proxy(const net::ip::address& address, const TrustedProxies& trusted_proxies) {
  return std::find(trusted_proxies.begin(), trusted_proxies.end(), one_per_host(address)) != trusted_proxies.end();
}

std::string client_key_behind(std::string_view peer, std::string_view forwarded_for,
                              const TrustedProxies& trusted_proxies) {
  std::optional<net::ip::address> client = parse_address(peer);
  if (!client) return std::string(peer);
  while (is_trusted_proxy(*client, trusted_proxies) && !forwarded_for.empty()) {
    const auto comma = forwarded_for.rfind(',');
    const std::string_view entry =
        trimmed(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for = comma == std::string_view::npos ? std::string_view{} : forwarded_for.substr(0, comma);
    if (entry.empty()) continue;
    client = parse_address(entry);
    if (!client) return std::string(entry.substr(0, 64));  // e.g. "unknown"; bounded: the table keeps it
  }
  return address_key(*client);
}

// The peer's address; none when the socket no longer knows it (the peer already left).
std::optional<net::ip::address> remote_address(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint endpoint = socket.remote_endpoint(ec);
  if (ec) return std::nullopt;
  return endpoint.address();
}

// Every X-Forwarded-For value of `request`, in order, comma-separated.
template <class Request>
std::string forwarded_for(const Request& request) {
  std::string joined;
  for (auto [field, end] = request.equal_range("X-Forwarded-For"); field != end; ++field) {
    if (!joined.empty()) joined += ',';
    joined += field->value();
  }
  return joined;
}

}  // namespace

void Handler::on_http(HttpRequest request, Respond respond) {
  respond({404, "text/plain; charset=utf-8", "not found\n"});
}

std::string address_key(std::string_view address) {
  beast::error_code ec;
  const net::ip::address parsed = net::ip::make_address(address, ec);
  return ec ? std::string(address) : address_key(parsed);
}

std::string client_address_key(std::string_view peer, std::string_view forwarded_for,
                               const std::vector<std::string>& trusted_proxies) {
  return client_key_behind(peer, forwarded_for, parse_trusted_proxies(trusted_proxies));
}

std::string error_frame(std::string_view code, std::string_view message, std::string_view request_id) {
  nlohmann::json frame = {{"type", "error"}, {"code", code}, {"message", message}};
  if (!request_id.empty()) frame["id"] = request_id;
  return frame.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

class WsSession;

// What every session shares: options, handler, metrics and the table of live connections.
struct Shared {
  ServerOptions options;
  TrustedProxies trusted_proxies;  // options.trusted_proxies, parsed
  std::shared_ptr<Handler> handler;
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> next_id{1};

  std::mutex mutex;
  std::condition_variable all_closed;
  std::unordered_map<std::uint64_t, std::weak_ptr<WsSession>> sessions;
  std::unordered_map<std::string, std::size_t> connections_per_address;  // TCP connections, HTTP or chat

  // Metrics (registered in a private registry when the caller gave none).
  metrics::Registry own_registry;
  metrics::Counter* connections_total = nullptr;
  metrics::Gauge* connections_open = nullptr;
  metrics::Counter* messages_total = nullptr;
  metrics::Registry* registry = nullptr;

  metrics::Counter& transport_error(std::string_view code) { return metrics::error_counter(*registry, code); }
};

// ---- connections per client address -----------------------------------------------------

// One accepted TCP connection's place in its client address's count. The HTTP session holds
// it and hands it to the WebSocket session on upgrade; the place is given back when the
// connection ends. Past the limit a connection still gets a place, to be told why it is
// refused (HTTP 429, or the WebSocket error frame); past twice the limit it gets none and
// is closed at once, so one address never holds more than twice the limit of descriptors.
class AddressPlace {
 public:
  static std::unique_ptr<AddressPlace> take(const std::shared_ptr<Shared>& shared, std::string address) {
    const std::size_t limit = shared->options.limits.max_connections_per_address;
    std::lock_guard lock(shared->mutex);
    std::size_t& open = shared->connections_per_address[address];
    if (limit > 0 && open >= 2 * limit) return nullptr;
    const bool over_limit = limit > 0 && open >= limit;
    ++open;
    return std::unique_ptr<AddressPlace>(new AddressPlace(shared, std::move(address), over_limit));
  }

  ~AddressPlace() {
    std::lock_guard lock(shared_->mutex);
    const auto open = shared_->connections_per_address.find(address_);
    if (open != shared_->connections_per_address.end() && --open->second == 0) {
      shared_->connections_per_address.erase(open);
    }
  }

  AddressPlace(const AddressPlace&) = delete;
  AddressPlace& operator=(const AddressPlace&) = delete;

  bool over_limit() const { return over_limit_; }
  const std::string& address() const { return address_; }

  static constexpr std::string_view kRefusal = "too_many_connections_from_address";
  static constexpr std::string_view kRefusalMessage = "too many connections from your address; close some and try again";

 private:
  AddressPlace(std::shared_ptr<Shared> shared, std::string address, bool over_limit)
      : shared_(std::move(shared)), address_(std::move(address)), over_limit_(over_limit) {}

  std::shared_ptr<Shared> shared_;
  const std::string address_;
  const bool over_limit_;
};

// ---- WebSocket session ------------------------------------------------------------------

class WsSession : public Connection, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& socket, std::shared_ptr<Shared> shared, std::unique_ptr<AddressPlace> place)
      : ws_(std::move(socket)),
        shared_(std::move(shared)),
        place_(std::move(place)),
        id_(shared_->next_id.fetch_add(1)),
        idle_timer_(ws_.get_executor()),
        send_timer_(ws_.get_executor()),
        tokens_(shared_->options.limits.burst),
        refilled_(Clock::now()) {}

  std::uint64_t id() const override { return id_; }
  const std::string& client_address() const override { return place_->address(); }

  void send(std::string text) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), text = std::move(text)]() mutable {
      self->enqueue(std::move(text));
    });
  }

  void close(CloseCode code, std::string reason) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
      self->begin_close(code, std::move(reason));
    });
  }

  template <class Body, class Allocator>
  void run(http::request<Body, http::basic_fields<Allocator>> request) {
    ws_.set_option(ws::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(ws::stream_base::decorator(
        [](ws::response_type& res) { res.set(http::field::server, "selffeed"); }));
    ws_.read_message_max(shared_->options.limits.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.async_accept(request, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return finish(ec, "accept");
    if (const std::optional<Refusal> refusal = admit()) {
      shared_->transport_error(refusal->code).inc();
      enqueue(error_frame(refusal->code, refusal->message));
      begin_close(CloseCode::kTryAgainLater, std::string(refusal->code));
      return;
    }
    registered_ = true;
    shared_->connections_total->inc();
    shared_->connections_open->add(1);
    shared_->handler->on_open(shared_from_this());
    arm_idle_timer();
    do_read();
  }

  struct Refusal {
    std::string_view code;
    std::string_view message;
  };

  // Takes a place in the connection table, or says why there is none.
  std::optional<Refusal> admit() {
    const Limits& limits = shared_->options.limits;
    // Under the lock: either stop() finds this session in the table or it is seen draining.
    std::lock_guard lock(shared_->mutex);
    if (shared_->draining) return Refusal{"shutting_down", "the server is shutting down"};
    if (shared_->sessions.size() >= limits.max_connections) {
      return Refusal{"too_many_connections", "the server has too many connections; try again later"};
    }
    if (place_->over_limit()) return Refusal{AddressPlace::kRefusal, AddressPlace::kRefusalMessage};
    shared_->sessions.emplace(id_, weak_from_this());
    return std::nullopt;
  }

  void do_read() {
    if (reading_ || closing_ || finished_) return;
    reading_ = true;
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (ec) {
      if (ec == ws::error::message_too_big) shared_->transport_error("message_too_big").inc();
      if (ec == ws::error::bad_frame_payload) shared_->transport_error("invalid_utf8").inc();
      return finish(ec, "read");
    }
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    const bool binary = !ws_.got_text();
    arm_idle_timer();
    deliver(std::move(text), binary);
    if (closing_) return;
    if (queue_.size() >= shared_->options.limits.outbound_queue_messages) {
      paused_ = true;  // back-pressure: read again once the client has taken some frames
      return;
    }
    do_read();
  }

  void deliver(std::string text, bool binary) {
    const Limits& limits = shared_->options.limits;
    // Text frames were checked by Beast (which closes with 1007); binary ones are checked here
    // so that a client sending bytes gets an answer and keeps its session.
    if (binary && !is_valid_utf8(text)) {
      reject("invalid_utf8", "the message is not valid UTF-8");
      return;
    }
    if (shared_->draining) {
      reject("shutting_down", "the server is shutting down; reconnect shortly");
      return;
    }
    const auto now = Clock::now();
    tokens_ = std::min(limits.burst,
                       tokens_ + std::chrono::duration<double>(now - refilled_).count() * limits.messages_per_second);
    refilled_ = now;
    if (tokens_ < 1) {
      reject("rate_limited", "too many messages; slow down");
      if (++rate_violations_ >= limits.max_rate_violations) {
        begin_close(CloseCode::kPolicyViolation, "rate limit exceeded");
      }
      return;
    }
    tokens_ -= 1;
    rate_violations_ = 0;
    shared_->messages_total->inc();
    shared_->handler->on_message(shared_from_this(), std::move(text));
  }

  void reject(std::string_view code, std::string_view message) {
    shared_->transport_error(code).inc();
    enqueue(error_frame(code, message));
  }

  void enqueue(std::string text) {
    if (closing_ || finished_) return;
    queue_.push_back(std::move(text));
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    send_timer_.expires_after(shared_->options.limits.send_timeout);
    send_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: the write finished in time
      self->shared_->transport_error("slow_consumer").inc();
      log()->warn("connection {}: client does not read; dropping it", self->id_);
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    });
    ws_.async_write(net::buffer(queue_.front()), beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    send_timer_.cancel();
    writing_ = false;
    if (ec) return finish(ec, "write");
    queue_.pop_front();
    if (!queue_.empty()) {
      do_write();
    } else if (closing_) {
      do_close();
    }
    if (paused_ && queue_.size() <= shared_->options.limits.outbound_queue_messages / 2) {
      paused_ = false;
      do_read();
    }
  }

  void begin_close(CloseCode code, std::string reason) {
    if (closing_ || finished_) return;
    closing_ = true;
    close_reason_.code = static_cast<std::uint16_t>(code);
    close_reason_.reason = reason.substr(0, 120);  // a close frame carries at most 123 bytes
    if (!writing_) do_close();
  }

  void do_close() {
    idle_timer_.cancel();
    // Bound the close handshake by the send timeout too.
    send_timer_.expires_after(shared_->options.limits.send_timeout);
    send_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    });
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code ec) {
      self->send_timer_.cancel();
      self->finish(ec, "close");
    });
  }

  void arm_idle_timer() {
    idle_timer_.expires_after(shared_->options.limits.idle_timeout);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->reject("idle_timeout", "no message for too long; closing");
      self->begin_close(CloseCode::kNormal, "idle timeout");
    });
  }

  // The connection is over (error, peer gone, or closed by us). Runs its bookkeeping once.
  void finish(beast::error_code ec, const char* what) {
    if (ec && !is_expected_close(ec) && ec != ws::error::message_too_big && ec != ws::error::bad_frame_payload) {
      log()->info("connection {}: {}: {}", id_, what, ec.message());
    }
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    idle_timer_.cancel();
    send_timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (!registered_) return;
    shared_->connections_open->add(-1);
    shared_->handler->on_close(shared_from_this());
    std::lock_guard lock(shared_->mutex);
    shared_->sessions.erase(id_);
    if (shared_->sessions.empty()) shared_->all_closed.notify_all();
  }

  ws::stream<beast::tcp_stream> ws_;
  std::shared_ptr<Shared> shared_;
  const std::unique_ptr<AddressPlace> place_;
  const std::uint64_t id_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  net::steady_timer idle_timer_;
  net::steady_timer send_timer_;
  ws::close_reason close_reason_;
  double tokens_;
  Clock::time_point refilled_;
  int rate_violations_ = 0;
  bool registered_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool paused_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

// ---- HTTP session -----------------------------------------------------------------------

std::string_view mime_type(std::string_view path) {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? std::string_view{} : path.substr(dot);
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  return "application/octet-stream";
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `place`: the connection's place in its address's count; null for a connection from a
  // trusted proxy, `proxy`, whose requests each take their client's place.
  HttpSession(tcp::socket&& socket, std::shared_ptr<Shared> shared, std::unique_ptr<AddressPlace> place,
              std::string proxy = {})
      : stream_(std::move(socket)), shared_(std::move(shared)), place_(std::move(place)), proxy_(std::move(proxy)) {}

  void run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(shared_->options.limits.max_http_body_bytes);
    // A connection that is only to be told it is refused gets little time to say what it wants.
    stream_.expires_after(place_ && place_->over_limit() ? kRefusedReadTimeout : kHttpReadTimeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_shutdown();
    if (ec == http::error::body_limit) return write(413, "text/plain; charset=utf-8", "request body too large\n", false);
    if (ec) {
      if (!is_expected_close(ec)) log()->debug("http read: {}", ec.message());
      return;
    }
    auto& request = parser_->get();
    if (!proxy_.empty()) {
      // Held while this request is served (after_write gives it back), or by the chat session.
      const std::string client = client_key_behind(proxy_, forwarded_for(request), shared_->trusted_proxies);
      place_ = AddressPlace::take(shared_, client);
      if (!place_) {
        shared_->transport_error(AddressPlace::kRefusal).inc();
        return write(429, "text/plain; charset=utf-8", std::string(AddressPlace::kRefusalMessage) + "\n", false);
      }
    }
    const std::string target(request.target());
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    const std::string query = q == std::string::npos ? "" : target.substr(q + 1);

    if (ws::is_upgrade(request)) {
      if (path != shared_->options.chat_path) return write(404, "text/plain; charset=utf-8", "no WebSocket here\n", false);
      stream_.expires_never();
      std::make_shared<WsSession>(stream_.release_socket(), shared_, std::move(place_))->run(parser_->release());
      return;
    }
    if (place_->over_limit()) {
      shared_->transport_error(AddressPlace::kRefusal).inc();
      return write(429, "text/plain; charset=utf-8", std::string(AddressPlace::kRefusalMessage) + "\n", false);
    }
    keep_alive_ = request.keep_alive();
    if ((request.method() == http::verb::get || request.method() == http::verb::head) && serve_static(path)) return;

    HttpRequest forwarded{std::string(request.method_string()), path, query,
                          std::string(request[http::field::authorization]), std::move(request.body())};
    auto respond = [self = shared_from_this()](HttpResponse response) {
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->write(response.status, response.content_type, std::move(response.body), self->keep_alive_);
      });
    };
    shared_->handler->on_http(std::move(forwarded), std::move(respond));
  }

  // True when `path` named a file under static_root and a response is on its way.
  bool serve_static(const std::string& path) {
    const std::string& root = shared_->options.static_root;
    if (root.empty() || path.find("..") != std::string::npos || path.empty() || path[0] != '/') return false;
    const std::string file = root + (path == "/" ? "/index.html" : path);
    std::error_code fs_ec;
    if (!std::filesystem::is_regular_file(file, fs_ec)) return false;
    http::file_body::value_type body;
    beast::error_code ec;
    body.open(file.c_str(), beast::file_mode::scan, ec);
    if (ec) return false;
    auto response = std::make_shared<http::response<http::file_body>>(
        std::piecewise_construct, std::make_tuple(std::move(body)), std::make_tuple(http::status::ok, 11));
    response->set(http::field::server, "selffeed");
    response->set(http::field::content_type, mime_type(file));
    response->set(http::field::cache_control, "no-cache");
    response->keep_alive(keep_alive_);
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
                        self->after_write(ec, response->keep_alive());
                      });
    return true;
  }

  void write(int status, std::string_view content_type, std::string body, bool keep_alive) {
    auto response = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), 11);
    response->set(http::field::server, "selffeed");
    response->set(http::field::content_type, content_type);
    response->set(http::field::cache_control, "no-cache");
    response->keep_alive(keep_alive);
    response->body() = std::move(body);
    response->prepare_payload();
    http::async_write(stream_, *response, [self = shared_from_this(), response](beast::error_code ec, std::size_t) {
      self->after_write(ec, response->keep_alive());
    });
  }

  void after_write(beast::error_code ec, bool keep_alive) {
    if (!proxy_.empty()) place_.reset();
    if (ec) return;
    if (!keep_alive || shared_->draining) return do_shutdown();
    do_read();
  }

  void do_shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<AddressPlace> place_;  // null once handed to the WebSocket session
  const std::string proxy_;              // the trusted proxy this connection comes from, if any
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
};

// ---- listener ---------------------------------------------------------------------------

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, std::shared_ptr<Shared> shared)
      : ioc_(ioc),
        acceptor_(net::make_strand(ioc)),
        retry_timer_(acceptor_.get_executor()),
        shared_(std::move(shared)) {}

  Status open(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return unavailable_error("cannot listen on " + endpoint.address().to_string() + ":" +
                                 std::to_string(endpoint.port()) + ": " + ec.message());
    }
    return ok_status();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  void run() { do_accept(); }

  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_timer_.cancel();
    });
  }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) return accept_later(ec);
    if (const int bytes = shared_->options.limits.socket_send_buffer_bytes; bytes > 0) {
      beast::error_code ignored;
      socket.set_option(net::socket_base::send_buffer_size(bytes), ignored);
    }
    const std::optional<net::ip::address> peer = remote_address(socket);
    if (peer && is_trusted_proxy(*peer, shared_->trusted_proxies)) {
      std::make_shared<HttpSession>(std::move(socket), shared_, nullptr, peer->to_string())->run();
    } else if (auto place = AddressPlace::take(shared_, peer ? address_key(*peer) : std::string())) {
      std::make_shared<HttpSession>(std::move(socket), shared_, std::move(place))->run();
    } else {
      shared_->transport_error(AddressPlace::kRefusal).inc();
      beast::error_code ignored;
      socket.close(ignored);
    }
    do_accept();
  }

  // Out of file descriptors (EMFILE), most likely: the connection stays in the backlog and
  // accepting again at once fails again, so wait for a connection to close instead of
  // spinning a core and writing a warning per try.
  void accept_later(const beast::error_code& ec) {
    shared_->transport_error("accept_failed").inc();
    ++failures_since_warning_;
    if (const auto now = Clock::now(); now - last_warning_ >= kAcceptWarningEvery) {
      log()->warn("cannot accept connections: {} ({} tries failed since the last warning; trying every {} ms)",
                  ec.message(), failures_since_warning_, kAcceptRetry.count());
      last_warning_ = now;
      failures_since_warning_ = 0;
    }
    retry_timer_.expires_after(kAcceptRetry);
    retry_timer_.async_wait([self = shared_from_this()](beast::error_code waited) {
      if (!waited) self->do_accept();
    });
  }

  static constexpr std::chrono::milliseconds kAcceptRetry{100};
  static constexpr std::chrono::seconds kAcceptWarningEvery{10};

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_timer_;
  Clock::time_point last_warning_{};
  std::uint64_t failures_since_warning_ = 0;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

// ---- Server -----------------------------------------------------------------------------

struct Server::Impl {
  std::shared_ptr<Shared> shared;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::shared_ptr<Listener> listener;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;
  bool stopped = false;

  explicit Impl(int threads) : ioc(std::max(1, threads)) {}
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<Server>> Server::start(const ServerOptions& options, std::shared_ptr<Handler> handler) {
  if (!handler) return invalid_argument_error("websocket::Server needs a handler");
  for (const std::string& proxy : options.trusted_proxies) {
    if (!parse_address(proxy)) return invalid_argument_error("trusted proxy '" + proxy + "' is not an IP address");
  }
  auto impl = std::make_unique<Impl>(options.io_threads);
  auto shared = std::make_shared<Shared>();
  shared->options = options;
  shared->trusted_proxies = parse_trusted_proxies(options.trusted_proxies);
  shared->handler = std::move(handler);
  shared->registry = options.metrics ? options.metrics : &shared->own_registry;
  shared->connections_total =
      &shared->registry->counter("selffeed_connections_total", "WebSocket connections accepted.");
  shared->connections_open = &shared->registry->gauge("selffeed_connections_open", "WebSocket connections open now.");
  shared->messages_total =
      &shared->registry->counter("selffeed_ws_messages_total", "WebSocket messages passed to the chat handler.");
  impl->shared = shared;

  beast::error_code ec;
  const auto address = net::ip::make_address(options.address, ec);
  if (ec) return invalid_argument_error("bad listen address '" + options.address + "': " + ec.message());
  impl->listener = std::make_shared<Listener>(impl->ioc, shared);
  SELFFEED_RETURN_IF_ERROR(impl->listener->open(tcp::endpoint(address, options.port)));
  impl->port = impl->listener->port();
  impl->listener->run();
  impl->work.emplace(net::make_work_guard(impl->ioc));
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] { ioc->run(); });
  }
  log()->info("listening on http://{}:{} (chat at {})", options.address, impl->port, options.chat_path);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::uint16_t Server::port() const { return impl_->port; }

std::size_t Server::connections() const {
  std::lock_guard lock(impl_->shared->mutex);
  return impl_->shared->sessions.size();
}

void Server::drain() {
  if (impl_->shared->draining.exchange(true)) return;
  impl_->listener->stop();
}

void Server::stop(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  drain();
  std::vector<std::shared_ptr<WsSession>> open;
  {
    std::lock_guard lock(impl_->shared->mutex);
    for (auto& [id, weak] : impl_->shared->sessions) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
  }
  for (auto& session : open) session->close(CloseCode::kGoingAway, "server shutting down");
  open.clear();
  {
    std::unique_lock lock(impl_->shared->mutex);
    impl_->shared->all_closed.wait_for(lock, grace, [&] { return impl_->shared->sessions.empty(); });
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace selffeed::websocket
