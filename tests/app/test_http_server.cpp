// HttpServer over real sockets on 127.0.0.1 (ephemeral ports), driven by a small blocking
// POSIX client so the server is checked against code that shares nothing with Beast.
#include "sfn/app/http_server.h"
#include "sfn/core/error.h"

#include <doctest/doctest.h>
#include "error_text.h"

#include <spdlog/sinks/ostream_sink.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

using sfn::HttpOptions;
using sfn::HttpResponse;
using sfn::HttpServer;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Every wait for the server is bounded by this; generous for a loaded 2-core machine.
constexpr auto kWait = std::chrono::seconds(10);
constexpr std::string_view kMetrics = "sfn_rounds_total 3\n";

struct Reply {
  int status = 0;  // 0: the connection ended or timed out before a whole response
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string("(none)") : it->second;
  }
};

Reply parseHead(const std::string& head) {
  Reply reply;
  std::istringstream in(head);
  std::string line;
  std::getline(in, line);
  REQUIRE(line.rfind("HTTP/1.", 0) == 0);
  reply.status = std::stoi(line.substr(9, 3));
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    reply.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return reply;
}

std::string request(std::string_view method, std::string_view target,
                    std::string_view extra_headers = "") {
  return sfn::joinMessage(method, " ", target, " HTTP/1.1\r\nHost: test\r\n", extra_headers,
                          "\r\n");
}

// One blocking TCP connection to 127.0.0.1; every read waits at most kWait.
class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // False if the server has closed the connection already.
  bool send(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  Reply get(std::string_view target, std::string_view method = "GET") {
    if (!send(request(method, target))) return {};
    return read(method == "HEAD");
  }

  // One response; its body is read by Content-Length unless it answers a HEAD.
  Reply read(bool head = false) {
    const auto deadline = Clock::now() + kWait;
    std::size_t end = 0;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return {};
    }
    Reply reply = parseHead(buffer_.substr(0, end));
    buffer_.erase(0, end + 4);
    REQUIRE(reply.headers.count("content-length") == 1);
    const std::size_t length = head ? 0 : std::stoul(reply.header("content-length"));
    while (buffer_.size() < length) {
      if (!fill(deadline)) return {};
    }
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return reply;
  }

  // True once the server has closed the connection (end of stream or reset) within `limit`;
  // bytes that arrive meanwhile are kept for read().
  bool closedWithin(Clock::duration limit) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      if (!readable(deadline)) return false;
      const auto n = receive();
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    }
  }

  // Bytes received but not read as a response.
  const std::string& pending() const { return buffer_; }

 private:
  bool readable(Clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      pollfd pfd{fd_, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(0, left)));
      if (ready > 0) return true;
      if (ready == 0 || errno != EINTR) return false;
    }
  }

  ssize_t receive() {
    char chunk[4096];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
    return n;
  }

  // Appends what arrives before `deadline`; false on end of stream, error or timeout.
  bool fill(Clock::time_point deadline) { return readable(deadline) && receive() > 0; }

  int fd_;
  std::string buffer_;
};

std::map<std::string, sfn::HttpHandler> testRoutes() {
  return {
      {"/metrics",
       [] {
         return HttpResponse{200, "text/plain; version=0.0.4", std::string(kMetrics)};
       }},
      {"/status",
       [] {
         return HttpResponse{200, "application/json", R"({"round":3})"};
       }},
      {"/boom", []() -> HttpResponse { throw std::runtime_error("snapshot not ready\nat x"); }},
      {"/teapot",
       [] {
         return HttpResponse{42, "text/plain", "short and stout"};
       }},
  };
}

HttpOptions localOptions() {
  HttpOptions options;
  options.listen = "127.0.0.1:0";
  return options;
}

// A logger writing into `out`; read `out` only after the server is destroyed (its thread
// writes to it).
std::shared_ptr<spdlog::logger> logInto(std::ostringstream& out) {
  return std::make_shared<spdlog::logger>("http-test",
                                          std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
}

std::shared_ptr<spdlog::logger> quietLog() {
  auto log = std::make_shared<spdlog::logger>("http-test");  // no sinks
  return log;
}

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE("HttpServer answers GET with the route's status, body and headers") {
  HttpServer server(localOptions(), testRoutes(), quietLog());
  CHECK(server.port() != 0);
  CHECK(server.endpoint() == "127.0.0.1:" + std::to_string(server.port()));
  Client client(server.port());
  const Reply reply = client.get("/metrics");
  CHECK(reply.status == 200);
  CHECK(reply.body == kMetrics);
  CHECK(reply.header("content-type") == "text/plain; version=0.0.4");
  CHECK(reply.header("content-length") == std::to_string(kMetrics.size()));
  CHECK(reply.header("cache-control") == "no-store");
  const Reply json = client.get("/status");
  CHECK(json.status == 200);
  CHECK(json.header("content-type") == "application/json");
  CHECK(json.body == R"({"round":3})");
  CHECK(server.requestsServed() == 2);
}

TEST_CASE("HttpServer: HEAD sends Content-Length and no body") {
  HttpServer server(localOptions(), testRoutes(), quietLog());
  Client client(server.port());
  const Reply head = client.get("/metrics", "HEAD");
  CHECK(head.status == 200);
  CHECK(head.header("content-length") == std::to_string(kMetrics.size()));
  CHECK(head.body.empty());
  // Had the body been sent, it would now precede the next response on the connection.
  const Reply next = client.get("/status");
  CHECK(next.status == 200);
  CHECK(next.body == R"({"round":3})");
}

TEST_CASE("HttpServer: 404 for unknown paths, 405 with Allow for other methods") {
  HttpServer server(localOptions(), testRoutes(), quietLog());
  Client client(server.port());
  const Reply missing = client.get("/nope");
  CHECK(missing.status == 404);
  CHECK(!missing.body.empty());
  CHECK(missing.header("content-length") == std::to_string(missing.body.size()));
  CHECK(missing.header("cache-control") == "no-store");
  CHECK(client.get("/metrics/").status == 404);

  REQUIRE(client.send(request("POST", "/metrics", "Content-Length: 3\r\n") + "x=1"));
  const Reply post = client.read();
  CHECK(post.status == 405);
  CHECK(post.header("allow") == "GET, HEAD");
  CHECK(client.get("/metrics", "DELETE").status == 405);
  // The POST's body was consumed: the connection still serves.
  CHECK(client.get("/metrics").body == kMetrics);
}

TEST_CASE("HttpServer ignores the query string") {
  HttpServer server(localOptions(), testRoutes(), quietLog());
  Client client(server.port());
  const Reply reply = client.get("/metrics?name[]=sfn&x");
  CHECK(reply.status == 200);
  CHECK(reply.body == kMetrics);
  CHECK(client.get("/metrics?").status == 200);
  CHECK(client.get("/metricsx?y").status == 404);
}

TEST_CASE("HttpServer keeps a connection alive until the client asks to close it") {
  HttpServer server(localOptions(), testRoutes(), quietLog());
  Client client(server.port());
  CHECK(client.get("/metrics").body == kMetrics);
  CHECK(client.get("/status").body == R"({"round":3})");
  // Two pipelined requests arrive in one segment and get their answers in order.
  REQUIRE(client.send(request("GET", "/status") + request("GET", "/metrics")));
  CHECK(client.read().body == R"({"round":3})");
  CHECK(client.read().body == kMetrics);
  REQUIRE(client.send(request("GET", "/metrics", "Connection: close\r\n")));
  const Reply last = client.read();
  CHECK(last.status == 200);
  CHECK(last.body == kMetrics);
  CHECK(client.closedWithin(kWait));
  CHECK(server.requestsServed() == 5);

  Client old(server.port());
  REQUIRE(old.send("GET /metrics HTTP/1.0\r\n\r\n"));
  CHECK(old.read().body == kMetrics);
  CHECK(old.closedWithin(kWait));
}

TEST_CASE("HttpServer: a throwing handler gives 500 with its message, logged once") {
  std::ostringstream log_text;
  {
    HttpServer server(localOptions(), testRoutes(), logInto(log_text));
    Client client(server.port());
    for (int i = 0; i < 3; ++i) {
      const Reply reply = client.get("/boom");
      CHECK(reply.status == 500);
      CHECK(reply.body == "snapshot not ready\n");
      CHECK(reply.header("content-length") == std::to_string(reply.body.size()));
    }
    CHECK(client.get("/metrics").body == kMetrics);
    const Reply bad = client.get("/teapot");
    CHECK(bad.status == 500);
    CHECK(bad.body.find("42") != std::string::npos);
    CHECK(client.get("/status").status == 200);
  }
  const std::string log = log_text.str();
  CHECK(occurrences(log, "snapshot not ready") == 1);
  CHECK(occurrences(log, "[warning]") == 2);
  CHECK(log.find("/boom") != std::string::npos);
}

TEST_CASE("HttpServer: a request over the size limit gets 431 or 413 and the connection closes") {
  HttpOptions options = localOptions();
  options.max_request_bytes = 1024;
  HttpServer server(options, testRoutes(), quietLog());
  {
    Client client(server.port());
    REQUIRE(client.send(request("GET", "/metrics", "X-Big: " + std::string(4000, 'a') + "\r\n")));
    const Reply reply = client.read();
    CHECK(reply.status == 431);
    CHECK(reply.header("content-length") == std::to_string(reply.body.size()));
    CHECK(client.closedWithin(kWait));
  }
  {
    Client client(server.port());
    REQUIRE(client.send(request("GET", "/metrics", "Content-Length: 5000\r\n") +
                        std::string(5000, 'b')));
    CHECK(client.read().status == 413);
    CHECK(client.closedWithin(kWait));
  }
  Client client(server.port());
  REQUIRE(client.send("NOT-HTTP\r\n\r\n"));
  CHECK(client.read().status == 400);
  CHECK(client.closedWithin(kWait));
  // A request just under the limit is fine.
  Client fits(server.port());
  CHECK(fits.get("/metrics?" + std::string(800, 'q')).status == 200);
}

TEST_CASE("HttpServer closes a connection that sends no whole request within read_timeout") {
  HttpOptions options = localOptions();
  options.read_timeout = milliseconds(200);
  HttpServer server(options, testRoutes(), quietLog());
  const auto start = Clock::now();
  Client silent(server.port());
  Client slow(server.port());
  REQUIRE(slow.send("GET /metrics HTTP/1.1\r\n"));
  Client idle(server.port());
  CHECK(idle.get("/metrics").status == 200);

  CHECK(silent.closedWithin(kWait));
  // The timer starts at accept, after connect() returned: never sooner than read_timeout.
  CHECK(Clock::now() - start >= milliseconds(190));
  CHECK(slow.closedWithin(kWait));
  CHECK(slow.pending().empty());
  // An idle keep-alive connection gets the same bound for its next request.
  CHECK(idle.closedWithin(kWait));
  Client fresh(server.port());
  CHECK(fresh.get("/metrics").status == 200);
}

TEST_CASE("HttpServer closes connections beyond max_connections at once and counts them") {
  HttpOptions options = localOptions();
  options.max_connections = 2;
  // Far beyond kWait: a connection the server merely let time out would not count as closed.
  options.read_timeout = std::chrono::seconds(60);
  HttpServer server(options, testRoutes(), quietLog());
  auto first = std::make_unique<Client>(server.port());
  Client second(server.port());
  // A response on each proves both are accepted and hold their slots.
  REQUIRE(first->get("/metrics").status == 200);
  REQUIRE(second.get("/metrics").status == 200);
  Client extra(server.port());
  CHECK(extra.closedWithin(kWait));
  CHECK(server.connectionsRefused() == 1);
  CHECK(second.get("/status").status == 200);

  // Once a client leaves, its slot is free again (as soon as the server has seen it go).
  first.reset();
  const auto deadline = Clock::now() + kWait;
  int status = 0;
  while (status == 0 && Clock::now() < deadline) {
    Client next(server.port());
    status = next.get("/metrics").status;
    if (status == 0) std::this_thread::sleep_for(milliseconds(10));
  }
  CHECK(status == 200);
  CHECK(server.connectionsRefused() >= 1);
}

TEST_CASE("HttpServer's destructor returns promptly while a slow client holds a connection") {
  auto server = std::make_unique<HttpServer>(localOptions(), testRoutes(), quietLog());
  Client slow(server->port());
  REQUIRE(slow.get("/metrics").status == 200);
  // Half a request: the server waits up to read_timeout (5 s) for the rest.
  REQUIRE(slow.send("GET /metrics HTTP/1.1\r\nHost: te"));
  const auto start = Clock::now();
  server.reset();
  CHECK(Clock::now() - start < std::chrono::seconds(1));
  CHECK(slow.closedWithin(kWait));
}

TEST_CASE("HttpServer: a taken port or a foreign address is a ConfigError naming it") {
  HttpServer first(localOptions(), testRoutes(), quietLog());
  HttpOptions taken = localOptions();
  taken.listen = first.endpoint();
  const std::string in_use = sfn::test::errorText<sfn::ConfigError>(
      [&] { HttpServer second(taken, testRoutes(), quietLog()); });
  CHECK(in_use.find(first.endpoint()) != std::string::npos);
  CHECK(in_use.find("in use") != std::string::npos);
  // The first server is unharmed.
  Client client(first.port());
  CHECK(client.get("/metrics").status == 200);

  HttpOptions foreign = localOptions();
  foreign.listen = "192.0.2.1:0";  // TEST-NET-1: never an address of this host
  const std::string not_here = sfn::test::errorText<sfn::ConfigError>(
      [&] { HttpServer other(foreign, testRoutes(), quietLog()); });
  CHECK(not_here.find("192.0.2.1:0") != std::string::npos);

  HttpOptions off = localOptions();
  off.listen = "off";
  CHECK(sfn::test::errorText<sfn::ConfigError>([&] {
          HttpServer none(off, testRoutes(), quietLog());
        }).find("off") != std::string::npos);
}

TEST_CASE("parseHttpListen accepts off, HOST:PORT and [IPv6]:PORT") {
  CHECK_FALSE(sfn::parseHttpListen("off", "--http").has_value());
  const auto loopback = sfn::parseHttpListen("127.0.0.1:0", "--http");
  REQUIRE(loopback.has_value());
  CHECK(loopback->host == "127.0.0.1");
  CHECK(loopback->port == 0);
  const auto any = sfn::parseHttpListen("0.0.0.0:9464", "--http");
  REQUIRE(any.has_value());
  CHECK(any->host == "0.0.0.0");
  CHECK(any->port == 9464);
  CHECK(any->toString() == "0.0.0.0:9464");
  const auto v6 = sfn::parseHttpListen("[::1]:80", "--http");
  REQUIRE(v6.has_value());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 80);
  CHECK(v6->toString() == "[::1]:80");
  CHECK(sfn::parseHttpListen("localhost:65535", "--http")->port == 65535);
}

TEST_CASE("parseHttpListen rejects malformed addresses, naming the option and the value") {
  for (const std::string bad :
       {"nonsense", "1.2.3.4:99999", "host:", "127.0.0.1:", ":9464", "127.0.0.1:-1",
        "127.0.0.1:80x", "127.0.0.1:+80", "999.1.1.1:80", "::1:80", "[::1]80", "[::1",
        "[1.2.3.4]:80", "[]:80", "", "OFF", "example.com:80", "127.0.0.1:123456789012345678901"}) {
    CAPTURE(bad);
    const std::string message = sfn::test::errorText<sfn::ConfigError>(
        [&] { (void)sfn::parseHttpListen(bad, "http.listen"); });
    CHECK(message.find("http.listen") != std::string::npos);
    CHECK(message.find("\"" + bad + "\"") != std::string::npos);
  }
  CHECK(sfn::test::errorText<sfn::ConfigError>([] {
          (void)sfn::parseHttpListen("1.2.3.4:99999", "--http");
        }).find("out of range") != std::string::npos);
}
