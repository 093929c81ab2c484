// Blocking clients over Beast: every operation is asynchronous underneath and runs the
// client's own io_context until it completes or its deadline passes.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "selffeed/clients/clients.h"

namespace selffeed::clients {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ws = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// Runs handlers until `done` or the deadline; true when `done`.
bool run_until(net::io_context& ioc, const bool& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  ioc.restart();
  while (!done) {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    ioc.run_one_for(deadline - now);
  }
  return true;
}

Result<tcp::resolver::results_type> resolve(net::io_context& ioc, const Endpoint& endpoint) {
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
  if (ec) return unavailable_error("cannot resolve " + endpoint.host + ": " + ec.message());
  return results;
}

}  // namespace

Result<Endpoint> Endpoint::parse(std::string_view url) {
  std::string_view rest;
  for (std::string_view scheme : {"ws://", "http://"}) {
    if (url.starts_with(scheme)) rest = url.substr(scheme.size());
  }
  if (rest.empty()) return invalid_argument_error("expected ws://host:port/path or http://..., got '" + std::string(url) + "'");
  Endpoint endpoint;
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  endpoint.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    endpoint.host = std::string(authority);
    endpoint.port = 80;
  } else {
    endpoint.host = std::string(authority.substr(0, colon));
    const std::string port(authority.substr(colon + 1));
    char* end = nullptr;
    const long value = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || value <= 0 || value > 65535) {
      return invalid_argument_error("bad port in '" + std::string(url) + "'");
    }
    endpoint.port = static_cast<std::uint16_t>(value);
  }
  if (endpoint.host.empty()) return invalid_argument_error("no host in '" + std::string(url) + "'");
  return endpoint;
}

struct WsClient::Impl {
  ClientOptions options;
  net::io_context ioc;
  ws::stream<beast::tcp_stream> stream{ioc};
  beast::flat_buffer buffer;
  bool read_pending = false;
  bool read_done = false;
  beast::error_code read_error;
  std::optional<CloseInfo> closed;

  void mark_closed(const beast::error_code& ec) {
    if (closed) return;
    // A received close frame counts even when answering it failed (the server may already
    // have closed the socket).
    if (ec == ws::error::closed || stream.reason().code != ws::close_code::none) {
      closed = CloseInfo{static_cast<std::uint16_t>(stream.reason().code), std::string(stream.reason().reason.c_str())};
    } else {
      closed = CloseInfo{0, ec.message()};
    }
  }

  Status write(std::string_view bytes, bool text) {
    if (closed) return unavailable_error("connection closed: " + closed->reason);
    bool done = false;
    beast::error_code result;
    stream.text(text);
    stream.async_write(net::buffer(bytes.data(), bytes.size()), [&](beast::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    if (!run_until(ioc, done, options.write_timeout)) {
      beast::error_code ignored;
      beast::get_lowest_layer(stream).socket().close(ignored);
      run_until(ioc, done, std::chrono::seconds(5));
      mark_closed(net::error::timed_out);
      return deadline_exceeded_error("the server did not take the message in time");
    }
    if (result) {
      mark_closed(result);
      return unavailable_error("write failed: " + result.message());
    }
    return ok_status();
  }
};

WsClient::WsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WsClient::~WsClient() = default;

Result<std::unique_ptr<WsClient>> WsClient::connect(std::string_view url, const ClientOptions& options) {
  SELFFEED_ASSIGN_OR_RETURN(Endpoint endpoint, Endpoint::parse(url));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  SELFFEED_ASSIGN_OR_RETURN(auto addresses, resolve(impl->ioc, endpoint));
  auto& socket = beast::get_lowest_layer(impl->stream).socket();
  beast::error_code ec;
  const tcp::endpoint target = *addresses.begin();
  socket.open(target.protocol(), ec);
  if (!ec && options.receive_buffer_bytes > 0) {
    socket.set_option(net::socket_base::receive_buffer_size(options.receive_buffer_bytes), ec);
  }
  if (!ec && !options.local_address.empty()) {
    const auto local = net::ip::make_address(options.local_address, ec);
    if (!ec) socket.bind(tcp::endpoint(local, 0), ec);
  }
  if (ec) return unavailable_error("socket: " + ec.message());

  bool done = false;
  beast::error_code result;
  beast::get_lowest_layer(impl->stream).expires_after(options.connect_timeout);
  socket.async_connect(target, [&](beast::error_code e) {
    result = e;
    done = true;
  });
  run_until(impl->ioc, done, options.connect_timeout + std::chrono::seconds(1));
  if (!done || result) {
    return unavailable_error("cannot connect to " + endpoint.host + ":" + std::to_string(endpoint.port) + ": " +
                               (done ? result.message() : "timed out"));
  }
  impl->stream.set_option(ws::stream_base::decorator([headers = options.headers](ws::request_type& request) {
    for (const auto& [name, value] : headers) request.insert(name, value);
  }));
  done = false;
  impl->stream.async_handshake(endpoint.host + ":" + std::to_string(endpoint.port), endpoint.path,
                               [&](beast::error_code e) {
                                 result = e;
                                 done = true;
                               });
  run_until(impl->ioc, done, options.connect_timeout + std::chrono::seconds(1));
  if (!done || result) {
    return unavailable_error("WebSocket handshake with " + std::string(url) + " failed: " +
                               (done ? result.message() : "timed out"));
  }
  beast::get_lowest_layer(impl->stream).expires_never();
  return std::unique_ptr<WsClient>(new WsClient(std::move(impl)));
}

Status WsClient::send_text(std::string_view text) { return impl_->write(text, true); }
Status WsClient::send_binary(std::string_view bytes) { return impl_->write(bytes, false); }

Result<std::string> WsClient::read(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  if (s.closed && !s.read_pending) return unavailable_error("connection closed: " + s.closed->reason);
  if (!s.read_pending) {
    s.read_pending = true;
    s.read_done = false;
    s.stream.async_read(s.buffer, [&s](beast::error_code ec, std::size_t) {
      s.read_error = ec;
      s.read_done = true;
    });
  }
  if (!run_until(s.ioc, s.read_done, timeout)) return deadline_exceeded_error("no message within the timeout");
  s.read_pending = false;
  if (s.read_error) {
    s.mark_closed(s.read_error);
    return unavailable_error("connection closed (" + std::to_string(s.closed->code) + " " + s.closed->reason + ")");
  }
  std::string text = beast::buffers_to_string(s.buffer.data());
  s.buffer.consume(s.buffer.size());
  return text;
}

std::optional<CloseInfo> WsClient::close_info() const { return impl_->closed; }

void WsClient::close() {
  Impl& s = *impl_;
  if (s.closed) return;
  bool done = false;
  s.stream.async_close(ws::close_code::normal, [&](beast::error_code) { done = true; });
  // The close completes once the server's close frame is read, by a pending read or by us.
  if (!run_until(s.ioc, done, s.options.write_timeout)) {
    beast::error_code ignored;
    beast::get_lowest_layer(s.stream).socket().close(ignored);
  }
  s.closed = CloseInfo{1000, "closed by client"};
}

Result<HttpReply> http_request(std::string_view method, std::string_view url, std::string_view body,
                               std::string_view authorization, std::chrono::milliseconds timeout) {
  SELFFEED_ASSIGN_OR_RETURN(Endpoint endpoint, Endpoint::parse(url));
  net::io_context ioc;
  SELFFEED_ASSIGN_OR_RETURN(auto addresses, resolve(ioc, endpoint));
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> request(http::string_to_verb(method), endpoint.path, 11);
  if (request.method() == http::verb::unknown) return invalid_argument_error("unknown HTTP method " + std::string(method));
  request.set(http::field::host, endpoint.host);
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  request.body() = std::string(body);
  request.prepare_payload();
  http::response<http::string_body> response;
  beast::flat_buffer buffer;
  beast::error_code result;
  stream.expires_after(timeout);
  stream.async_connect(addresses, [&](beast::error_code ec, const tcp::endpoint&) {
    if (ec) {
      result = ec;
      return;
    }
    http::async_write(stream, request, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        result = ec;
        return;
      }
      http::async_read(stream, buffer, response, [&](beast::error_code ec, std::size_t) { result = ec; });
    });
  });
  ioc.run();  // the stream's expiry bounds every step
  if (result) return unavailable_error(std::string(method) + " " + std::string(url) + ": " + result.message());
  return HttpReply{static_cast<int>(response.result_int()), std::string(response[http::field::content_type]),
                   std::move(response.body())};
}

}  // namespace selffeed::clients
