#include "sfn/app/http_server.h"

#include "sfn/core/error.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <limits>
#include <thread>
#include <utility>

namespace sfn {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr char kText[] = "text/plain; charset=utf-8";
// Bytes read and thrown away after an error response before closing, so that the client
// reads the response instead of a reset caused by its unread request.
constexpr std::size_t kDrainLimit = 64 * 1024;
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

[[noreturn]] void badListen(std::string_view what, std::string_view text, std::string_view why) {
  SFN_THROW(ConfigError, what, " \"", text, "\": ", why);
}

std::uint16_t parsePort(std::string_view port, std::string_view what, std::string_view text) {
  if (port.empty()) badListen(what, text, "the port is missing (expected HOST:PORT)");
  unsigned value = 0;
  const char* end = port.data() + port.size();
  const auto [stop, ec] = std::from_chars(port.data(), end, value);
  if (stop != end || (ec != std::errc{} && ec != std::errc::result_out_of_range)) {
    badListen(what, text, "the port must be a number 0-65535");
  }
  if (ec == std::errc::result_out_of_range || value > std::numeric_limits<std::uint16_t>::max()) {
    badListen(what, text, "the port is out of range 0-65535");
  }
  return static_cast<std::uint16_t>(value);
}

// The address to bind for a host parseHttpListen accepted.
asio::ip::address bindAddress(const std::string& host) {
  return asio::ip::make_address(host == "localhost" ? std::string("127.0.0.1") : host);
}

std::string_view toStd(beast::string_view s) { return {s.data(), s.size()}; }

bool isParseError(const ErrorCode& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

}  // namespace

std::string HttpListenAddress::toString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return joinMessage(v6 ? "[" : "", host, v6 ? "]:" : ":", port);
}

std::optional<HttpListenAddress> parseHttpListen(std::string_view text, std::string_view what) {
  if (text == "off") return std::nullopt;
  HttpListenAddress out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      badListen(what, text, "expected [IPv6]:PORT");
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    ErrorCode ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) badListen(what, text, "the part in brackets is not an IPv6 address");
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      badListen(what, text, "expected HOST:PORT, [IPv6]:PORT or off");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      badListen(what, text, "an IPv6 address needs brackets, as in [::1]:9464");
    }
    ErrorCode ec;
    asio::ip::make_address_v4(out.host, ec);
    if (ec && out.host != "localhost") {
      badListen(what, text, "the host must be an IPv4 address, localhost or [IPv6]");
    }
  }
  out.port = parsePort(port, what, text);
  return out;
}

// The server's state, touched by connections on the server's thread only, except for the
// atomics and the fields fixed before the thread starts.
class HttpServer::Impl {
 public:
  Impl(HttpOptions options, std::map<std::string, HttpHandler> routes,
       std::shared_ptr<spdlog::logger> log);
  // Stops the loop and joins the thread; the members' destructors then close the acceptor
  // and, with the io_context, every connection (the handlers that own them are destroyed).
  ~Impl();

  const HttpOptions& options() const { return options_; }
  Response answer(const Request& request);
  void responded() { served.fetch_add(1, std::memory_order_relaxed); }
  void connectionClosed() { --open_; }

  // Set before the thread starts, then read-only.
  std::string endpoint;
  std::uint16_t port = 0;
  // Read by HttpServer's callers on any thread.
  std::atomic<std::uint64_t> served{0};
  std::atomic<std::uint64_t> refused{0};

 private:
  void bind(const HttpListenAddress& where);
  void accept();
  void onAccept(const ErrorCode& ec, tcp::socket socket);
  void refuse(tcp::socket socket);
  void run();
  HttpResponse route(std::string_view path);
  HttpResponse failed(const std::string& path, std::string text);

  HttpOptions options_;
  std::map<std::string, HttpHandler> routes_;
  std::shared_ptr<spdlog::logger> log_;
  // Server thread only: the last failure logged per path (a scraper calling a broken route
  // every few seconds must not flood the log), and the open connections.
  std::map<std::string, std::string> last_error_;
  std::size_t open_ = 0;
  // Declared after everything connections touch, so they die first (see ~Impl).
  asio::io_context ioc_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  tcp::acceptor acceptor_{ioc_};
  asio::steady_timer accept_retry_{ioc_};
  std::thread thread_;
};

namespace {

// One client connection: read a request, answer it, repeat while keep-alive; every read and
// write has a deadline. Owned by the completion handlers in flight (shared_from_this), so it
// ends when its socket is closed or the io_context is destroyed.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), server_(server) {}
  ~Connection() { server_.connectionClosed(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start() { readRequest(); }

 private:
  void readRequest();
  void onRead(const ErrorCode& ec);
  void reject(http::status status, std::string text);
  void write(Response response);
  void onWrite(const ErrorCode& ec, bool close);
  void drain();

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
  std::array<char, 4096> discard_{};
  std::size_t drained_ = 0;
};

void Connection::readRequest() {
  const auto limit = server_.options().max_request_bytes;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(limit, std::numeric_limits<std::uint32_t>::max())));
  parser_->body_limit(limit);
  // One deadline for the whole request, however slowly its bytes trickle in.
  stream_.expires_after(server_.options().read_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](const ErrorCode& ec, std::size_t) { self->onRead(ec); });
}

void Connection::onRead(const ErrorCode& ec) {
  if (ec == http::error::header_limit) {
    return reject(http::status::request_header_fields_too_large, "request header too large\n");
  }
  if (ec == http::error::body_limit) {
    return reject(http::status::payload_too_large, "request body too large\n");
  }
  if (ec && isParseError(ec) && ec != http::error::end_of_stream && parser_->got_some()) {
    return reject(http::status::bad_request, joinMessage("bad request: ", ec.message(), "\n"));
  }
  if (ec) {
    // End of stream, timeout (the stream is closed already), reset or shutdown.
    ErrorCode ignored;
    stream_.socket().close(ignored);
    return;
  }
  write(server_.answer(parser_->get()));
}

void Connection::reject(http::status status, std::string text) {
  Response response{status, 11};
  response.set(http::field::content_type, kText);
  response.set(http::field::cache_control, "no-store");
  response.keep_alive(false);
  response.body() = std::move(text);
  response.prepare_payload();
  write(std::move(response));
}

void Connection::write(Response response) {
  response_ = std::move(response);
  server_.responded();
  const bool close = response_.need_eof();
  // A client that stops reading its response is dropped like one that stops sending.
  stream_.expires_after(server_.options().read_timeout);
  http::async_write(stream_, response_,
                    [self = shared_from_this(), close](const ErrorCode& ec, std::size_t) {
                      self->onWrite(ec, close);
                    });
}

void Connection::onWrite(const ErrorCode& ec, bool close) {
  ErrorCode ignored;
  if (ec) {
    stream_.socket().close(ignored);
  } else if (close) {
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    drain();
  } else {
    readRequest();
  }
}

void Connection::drain() {
  stream_.expires_after(server_.options().read_timeout);
  stream_.async_read_some(asio::buffer(discard_),
                          [self = shared_from_this()](const ErrorCode& ec, std::size_t n) {
                            self->drained_ += n;
                            if (!ec && self->drained_ <= kDrainLimit) return self->drain();
                            ErrorCode ignored;
                            self->stream_.socket().close(ignored);
                          });
}

}  // namespace

HttpServer::Impl::Impl(HttpOptions options, std::map<std::string, HttpHandler> routes,
                       std::shared_ptr<spdlog::logger> log)
    : options_(std::move(options)), routes_(std::move(routes)), log_(std::move(log)) {
  SFN_ENFORCE(log_ != nullptr, Error, "HttpServer needs a logger");
  if (options_.max_connections < 1) SFN_THROW(ConfigError, "HTTP max_connections must be >= 1");
  if (options_.read_timeout.count() < 1) SFN_THROW(ConfigError, "HTTP read_timeout must be > 0");
  if (options_.max_request_bytes < 256) {
    SFN_THROW(ConfigError, "HTTP max_request_bytes must be >= 256 (got ",
              options_.max_request_bytes, ")");
  }
  const auto where = parseHttpListen(options_.listen, "HTTP listen address");
  if (!where) SFN_THROW(ConfigError, "HTTP listen address is \"off\": no server to start");
  bind(*where);
  accept();
  std::string paths;
  for (const auto& [path, handler] : routes_) paths += (paths.empty() ? "" : " ") + path;
  log_->info("HTTP on {}: serving {}", endpoint, paths.empty() ? "no routes" : paths);
  thread_ = std::thread([this] { run(); });
}

HttpServer::Impl::~Impl() {
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Impl::bind(const HttpListenAddress& where) {
  ErrorCode ec;
  const tcp::endpoint at(bindAddress(where.host), where.port);
  const auto check = [&] {
    if (ec)
      SFN_THROW(ConfigError, "cannot listen for HTTP on ", where.toString(), ": ", ec.message());
  };
  acceptor_.open(at.protocol(), ec);
  check();
  // Lets a restarted binary take its port back while old connections sit in TIME_WAIT; a port
  // another process listens on still fails with "Address already in use".
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  check();
  acceptor_.bind(at, ec);
  check();
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  check();
  const auto local = acceptor_.local_endpoint(ec);
  check();
  port = local.port();
  endpoint = HttpListenAddress{local.address().to_string(), port}.toString();
}

void HttpServer::Impl::accept() {
  acceptor_.async_accept(
      [this](const ErrorCode& ec, tcp::socket socket) { onAccept(ec, std::move(socket)); });
}

void HttpServer::Impl::onAccept(const ErrorCode& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of file descriptors and the like: retry shortly rather than spin on the error.
    log_->warn("HTTP on {}: accept failed: {}", endpoint, ec.message());
    accept_retry_.expires_after(kAcceptRetry);
    accept_retry_.async_wait([this](const ErrorCode& timer_ec) {
      if (!timer_ec) accept();
    });
    return;
  }
  if (open_ >= options_.max_connections) {
    refuse(std::move(socket));
  } else {
    ++open_;
    std::make_shared<Connection>(std::move(socket), *this)->start();
  }
  accept();
}

void HttpServer::Impl::refuse(tcp::socket socket) {
  // The first refusal says why; later ones would only repeat it (they are counted).
  if (refused.fetch_add(1, std::memory_order_relaxed) == 0) {
    log_->warn("HTTP on {}: {} connections open, closing new ones", endpoint, open_);
  }
  ErrorCode ignored;
  socket.close(ignored);
}

void HttpServer::Impl::run() {
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      // Only a connection's own handler can throw (e.g. bad_alloc): that connection is gone,
      // the others and the acceptor keep going.
      log_->error("HTTP on {}: {}", endpoint, e.what());
    }
  }
}

Response HttpServer::Impl::answer(const Request& request) {
  const bool head = request.method() == http::verb::head;
  Response response;
  HttpResponse out;
  if (request.method() != http::verb::get && !head) {
    response.set(http::field::allow, "GET, HEAD");
    out = {405, std::string(kText), "method not allowed: use GET or HEAD\n"};
  } else {
    const auto target = toStd(request.target());
    out = route(target.substr(0, target.find('?')));
  }
  response.result(static_cast<unsigned>(out.status));
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  response.set(http::field::content_type, out.content_type);
  response.set(http::field::cache_control, "no-store");
  // HEAD: the length GET would send, and no body.
  response.content_length(out.body.size());
  if (!head) response.body() = std::move(out.body);
  return response;
}

HttpResponse HttpServer::Impl::route(std::string_view path) {
  const auto it = routes_.find(std::string(path));
  if (it == routes_.end()) return {404, std::string(kText), "not found\n"};
  HttpResponse out;
  try {
    out = it->second();
  } catch (const std::exception& e) {
    return failed(it->first, e.what());
  } catch (...) {
    return failed(it->first, "unknown exception");
  }
  if (out.status < 200 || out.status > 599) {
    return failed(it->first, joinMessage("handler returned status ", out.status));
  }
  if (last_error_.erase(it->first) > 0) log_->info("HTTP on {}: {} works again", endpoint, path);
  return out;
}

HttpResponse HttpServer::Impl::failed(const std::string& path, std::string text) {
  text = text.substr(0, text.find_first_of("\r\n"));
  if (text.empty()) text = "handler failed";
  auto& last = last_error_[path];
  if (last != text) {
    log_->warn("HTTP on {}: {} failed: {}", endpoint, path, text);
    last = text;
  }
  return {500, std::string(kText), text + "\n"};
}

HttpServer::HttpServer(HttpOptions options, std::map<std::string, HttpHandler> routes,
                       std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(routes), std::move(log))) {}

HttpServer::~HttpServer() = default;

std::string HttpServer::endpoint() const { return impl_->endpoint; }
std::uint16_t HttpServer::port() const { return impl_->port; }
std::uint64_t HttpServer::requestsServed() const {
  return impl_->served.load(std::memory_order_relaxed);
}
std::uint64_t HttpServer::connectionsRefused() const {
  return impl_->refused.load(std::memory_order_relaxed);
}

}  // namespace sfn
