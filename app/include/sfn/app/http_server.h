// A small HTTP/1.1 endpoint for operators (/metrics, /healthz, /readyz, /status, /): fixed
// routes answered by callbacks on the server's own thread. Boost.Beast stays inside the .cpp,
// so binaries that include this header do not compile Asio.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sfn {

// The default address of the operator endpoint of sfn-server and sfn-sim (http.listen).
inline constexpr const char* kDefaultHttpListen = "127.0.0.1:9464";

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// A route's handler runs on the server's thread, one request at a time: it must be quick and
// must guard the data it reads itself (callers hand it snapshots behind their own mutex). An
// exception it throws becomes a 500 whose body is the exception's text.
using HttpHandler = std::function<HttpResponse()>;

struct HttpOptions {
  // HOST:PORT or [IPv6]:PORT, HOST an IP address or "localhost"; port 0 picks a free port.
  // Check user input with parseHttpListen first ("off" is for callers to handle).
  std::string listen = "127.0.0.1:9464";
  // Connections beyond this many open ones are closed as soon as they are accepted.
  std::size_t max_connections = 64;
  // A request (its header and body) must arrive within this long of the previous response or
  // of connecting, else the connection is closed: slow or idle clients cannot pin a slot.
  std::chrono::milliseconds read_timeout{5000};
  // Limit of a request's header, and separately of its body; larger requests get 431 or 413
  // and the connection is closed.
  std::size_t max_request_bytes = 8192;
};

// Where to listen: host as written (without the brackets of an IPv6 address) and port.
struct HttpListenAddress {
  std::string host;
  std::uint16_t port = 0;
  // "127.0.0.1:9464", "[::1]:80".
  std::string toString() const;
};

// Parses "off" (nullopt), "HOST:PORT" or "[IPv6]:PORT". HOST must be an IPv4 address or
// "localhost"; PORT 0..65535. Throws ConfigError naming `what` (a flag such as "--http" or a
// key such as "http.listen") and the value.
[[nodiscard]] std::optional<HttpListenAddress> parseHttpListen(std::string_view text,
                                                               std::string_view what);

// Serves GET and HEAD on exact paths (a query string is ignored) with keep-alive; other
// methods get 405, unknown paths 404. Every response has Content-Length and
// "Cache-Control: no-store".
class HttpServer {
 public:
  // Binds and listens before returning, then serves on its own thread until destroyed.
  // Throws ConfigError naming the address and the OS error when options.listen is malformed
  // or "off", the port is taken, or the address is not one of this host's.
  HttpServer(HttpOptions options, std::map<std::string, HttpHandler> routes,
             std::shared_ptr<spdlog::logger> log);
  // Stops accepting, drops open connections (even slow ones) and joins the thread: promptly.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The address actually bound, e.g. "127.0.0.1:40321" after asking for port 0.
  std::string endpoint() const;
  std::uint16_t port() const;
  // Responses written (any status), and connections closed at once for max_connections.
  std::uint64_t requestsServed() const;
  std::uint64_t connectionsRefused() const;

  // The state behind the interface, defined in http_server.cpp (public so that the
  // connections there can name it).
  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sfn
