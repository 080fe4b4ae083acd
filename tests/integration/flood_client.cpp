// sfn_flood_client: an allowlisted peer that floods the server with Registers and never
// reads a reply, then disconnects, as in issue 13 item 2 (tests/integration/flood.sh).
//
// Each cycle connects with the given key, sends Registers as fast as the connection takes
// them for --seconds, then closes the socket with the server's replies (Rejects: the
// Registers claim 0 samples, so it never becomes a client that rounds wait for) unread.
// Closing with unread bytes makes the kernel send a RST, the disconnect that made
// libzmq 4.3.4 abort the server ("Assertion failed: !_io_error").
//
// Prints "flood: cycle I sent N Registers" per cycle. Exit codes: 0 done, 1 runtime error,
// 2 usage error.
#include "sfn/core/error.h"
#include "sfn/net/zmq_transport.h"
#include "sfn/wire/wire.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string server;
  std::string server_key;
  std::string key;
  double seconds = 5;
  int cycles = 1;
};

std::uint64_t floodOnce(const Options& o, const sfn::BytesPtr& reg) {
  sfn::ZmqClientOptions zo;
  zo.server_endpoint = o.server;
  zo.server_public_key = sfn::readKeyFile(o.server_key).public_key;
  zo.client_keys = sfn::readKeyFile(o.key);
  zo.socket.recv_hwm = 1;  // stops reading the replies almost at once
  zo.socket.send_hwm = 100'000;
  zo.socket.send_timeout = std::chrono::milliseconds(10);
  zo.socket.linger = std::chrono::milliseconds(0);
  auto client = sfn::makeZmqClient(zo);
  std::uint64_t sent = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(o.seconds);
  while (Clock::now() < end)
    if (client->send(reg).ok()) ++sent;
  return sent;  // the client closes here, its replies unread
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app("sfn_flood_client: floods Registers, never reads, disconnects");
  app.add_option("--server", o.server, "server endpoint")->required();
  app.add_option("--server-key", o.server_key, "server public key file")->required();
  app.add_option("--key", o.key, "this client's key pair file (allowlisted)")->required();
  app.add_option("--seconds", o.seconds, "flood length per cycle")->check(CLI::PositiveNumber);
  app.add_option("--cycles", o.cycles, "connect, flood, disconnect this many times")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    sfn::RegisterMsg reg;
    reg.client_name = "flood";
    reg.device_class = "default";
    reg.cores = 1;
    reg.memory_bytes = 1 << 30;
    reg.samples = 0;                         // refused: never selected for a task
    reg.data = sfn::DataInfo{1, 28, 28, 9};  // Fashion-MNIST, as the integration runs use
    const sfn::BytesPtr bytes = sfn::encode(reg);
    for (int i = 0; i < o.cycles; ++i) {
      const std::uint64_t sent = floodOnce(o, bytes);
      std::cout << "flood: cycle " << i << " sent " << sent << " Registers" << std::endl;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  } catch (const std::exception& e) {
    std::cerr << "flood: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
