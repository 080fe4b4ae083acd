// ClientRunner against a server played by the test: a real ZmqServerTransport with CURVE on
// tcp loopback (ephemeral port), the runner on its own thread.
#include "sfn/client/client_runner.h"
#include "sfn/data/dataset.h"
#include "sfn/model/design_space.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"
#include "sfn/wire/wire.h"
#include "sfn/net/zmq_transport.h"

#include <ATen/ATen.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
// sfn::toString and c10::toString return string_view / const char*, which doctest would
// otherwise pick up by ADL and fail to concatenate when printing a failed comparison.
#define DOCTEST_CONFIG_DOUBLE_STRINGIFY
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

// Generous: loopback CURVE handshakes take milliseconds, but CI machines are shared.
constexpr auto kWait = 10s;
constexpr auto kTrainWait = 60s;

std::shared_ptr<spdlog::logger> testLogger() {
  // Not registered with spdlog's global registry: every test case gets its own.
  auto log = std::make_shared<spdlog::logger>(
      "test-client", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  log->set_level(spdlog::level::warn);
  return log;
}

// The server side of the test, plus a runner on its own thread.
struct Harness {
  sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  sfn::Dataset data =
      sfn::makeSyntheticDataset(48, space.in_channels, space.image_size, space.num_classes, 7);
  sfn::CurveKeyPair server_keys = sfn::generateCurveKeyPair();
  sfn::CurveKeyPair client_keys = sfn::generateCurveKeyPair();
  std::unique_ptr<sfn::ZmqServerTransport> server;
  std::atomic<bool> stop{false};
  std::atomic<int> exit_code{-1};
  std::unique_ptr<sfn::ClientRunner> runner;
  std::thread thread;

  Harness() {
    sfn::ZmqServerOptions so;
    so.server_keys = server_keys;
    so.allowed_client_keys = {client_keys.public_key};
    so.socket.linger = 100ms;
    server = sfn::makeZmqServer(so);

    sfn::ClientOptions co;
    co.name = "test-client";
    co.device_class = "phone";
    co.cores = 2;
    co.memory_bytes = 1 << 30;
    co.transport.server_endpoint = server->endpoint();
    co.transport.client_keys = client_keys;
    co.transport.server_public_key = server_keys.public_key;
    co.transport.socket.linger = 200ms;
    co.poll_interval = 50ms;
    co.heartbeat_interval = 200ms;
    co.register_timeout = 5s;
    co.backoff_initial = 50ms;
    co.backoff_max = 200ms;
    co.jitter_seed = 1;
    sfn::IndexList indices(static_cast<std::size_t>(data.size()));
    std::iota(indices.begin(), indices.end(), 0);
    runner = std::make_unique<sfn::ClientRunner>(co, space, data, indices, testLogger());
    thread = std::thread([this] { exit_code = runner->run(stop); });
  }
  ~Harness() {
    stop = true;
    if (thread.joinable()) thread.join();
  }

  // The next message of type T from the client, skipping heartbeats; fails the test on a
  // timeout or any other message type.
  template <typename T>
  T expect(std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<sfn::Received> r = server->recv(50ms);
      if (!r) continue;
      CHECK(r->peer == client_keys.public_key);  // CURVE identity, not a self-declared name
      sfn::DecodeResult d = sfn::decode(r->message);
      REQUIRE_MESSAGE(d.ok(), (d.ok() ? std::string() : d.error().reason));
      if (std::holds_alternative<sfn::HeartbeatMsg>(d.message())) continue;
      T* msg = std::get_if<T>(&d.message());
      REQUIRE_MESSAGE(msg != nullptr, "got ", std::string(sfn::messageName(d.message())));
      return std::move(*msg);
    }
    FAIL("timed out waiting for a message from the client");
    return T{};
  }

  void send(const sfn::Message& m) {
    const sfn::SendResult r = server->send(client_keys.public_key, sfn::encode(m));
    REQUIRE_MESSAGE(r.ok(), r.reason);
  }

  int join() {
    thread.join();
    return exit_code.load();
  }
};

sfn::TrainTaskMsg minNetTask(const sfn::DesignSpace& space, std::uint64_t round,
                             std::uint64_t task_id) {
  const sfn::SuperNet supernet(space, 1);
  const sfn::SubNetConfig min = sfn::SubNetConfig::minNet(space);
  sfn::TrainTaskMsg task;
  task.round = round;
  task.task_id = task_id;
  task.subnet = min.toString(space);
  task.tensors = supernet.sliceViews(min);  // encode() copies them into the message
  task.hyper.epochs = 1;
  task.hyper.batch_size = 16;
  task.hyper.lr = 0.05;
  task.hyper.seed = 3;
  task.deadline_ms = 60'000;
  return task;
}

void checkUpdate(const sfn::UpdateMsg& update, const sfn::DesignSpace& space, std::uint64_t round,
                 std::uint64_t task_id, std::uint64_t samples) {
  CHECK(update.round == round);
  CHECK(update.task_id == task_id);
  CHECK(update.samples == samples);
  CHECK(std::isfinite(update.mean_loss));
  CHECK(update.compute_seconds >= 0.0);
  const auto error =
      sfn::validateTensors(update.tensors, sfn::sliceSpec(space, sfn::SubNetConfig::minNet(space)));
  CHECK_MESSAGE(!error.has_value(), (error ? error->reason : std::string()));
}

}  // namespace

TEST_CASE("client: register, train a MinNet task, report the update, say Bye on stop") {
  Harness h;
  const sfn::RegisterMsg reg = h.expect<sfn::RegisterMsg>();
  CHECK(reg.client_name == "test-client");
  CHECK(reg.device_class == "phone");
  CHECK(reg.cores == 2);
  CHECK(reg.samples == 48);
  h.send(sfn::WelcomeMsg{42, "test-server", sfn::kProtocolVersion});

  h.send(minNetTask(h.space, 3, 11));
  const sfn::UpdateMsg update = h.expect<sfn::UpdateMsg>(kTrainWait);
  checkUpdate(update, h.space, 3, 11, 48);
  // Training moved the weights: the update is not the slice it was sent.
  const sfn::SuperNet initial(h.space, 1);
  CHECK_FALSE(update.tensors.bitEqual(initial.extract(sfn::SubNetConfig::minNet(h.space))));

  h.stop = true;
  const sfn::ByeMsg bye = h.expect<sfn::ByeMsg>();
  CHECK_FALSE(bye.reason.empty());
  CHECK(h.join() == sfn::kExitOk);
  CHECK(h.runner->updatesSent() == 1);
}

TEST_CASE("client: a rejected registration ends run() with a non-zero code") {
  Harness h;
  (void)h.expect<sfn::RegisterMsg>();
  h.send(sfn::RejectMsg{sfn::RejectCode::kClientIdCollision, "no room for you"});
  CHECK(h.join() == sfn::kExitRejected);
}

TEST_CASE("client: re-registers after the server forgets it and reconnects after a Bye") {
  Harness h;
  (void)h.expect<sfn::RegisterMsg>();
  h.send(sfn::WelcomeMsg{1, "test-server", sfn::kProtocolVersion});

  // A restarted server answers anything from an unknown peer with Reject "not registered".
  // Several of them (one per heartbeat queued while it was down): only the first triggers a
  // registration, the stale ones are not mistaken for a refusal.
  h.send(sfn::RejectMsg{sfn::RejectCode::kNotRegistered, "not registered"});
  h.send(sfn::RejectMsg{sfn::RejectCode::kNotRegistered, "not registered"});
  h.send(sfn::RejectMsg{sfn::RejectCode::kNotRegistered, "not registered"});
  (void)h.expect<sfn::RegisterMsg>();
  h.send(sfn::WelcomeMsg{2, "test-server", sfn::kProtocolVersion});

  // Bye from the server: the client backs off, reconnects on a new socket and registers.
  h.send(sfn::ByeMsg{"server restarting"});
  (void)h.expect<sfn::RegisterMsg>();
  h.send(sfn::WelcomeMsg{3, "test-server", sfn::kProtocolVersion});

  // Still fully working on the new connection.
  h.send(minNetTask(h.space, 5, 1));
  checkUpdate(h.expect<sfn::UpdateMsg>(kTrainWait), h.space, 5, 1, 48);
  h.stop = true;
  (void)h.expect<sfn::ByeMsg>();
  CHECK(h.join() == sfn::kExitOk);
}

TEST_CASE("client: a task it cannot parse is skipped and the next task is still trained") {
  Harness h;
  (void)h.expect<sfn::RegisterMsg>();
  h.send(sfn::WelcomeMsg{7, "test-server", sfn::kProtocolVersion});

  sfn::TrainTaskMsg bad = minNetTask(h.space, 1, 1);
  bad.subnet = "d=9-9-9-9;e=nonsense";  // not a SubNet of this design space
  h.send(bad);
  sfn::TrainTaskMsg zero_epochs = minNetTask(h.space, 1, 2);
  zero_epochs.hyper.epochs = 0;  // rejected by TrainOptions::validate
  h.send(zero_epochs);
  h.send(minNetTask(h.space, 1, 3));
  // Only the good task is answered (expect() fails on any other message but heartbeats).
  checkUpdate(h.expect<sfn::UpdateMsg>(kTrainWait), h.space, 1, 3, 48);
  CHECK(h.runner->updatesSent() == 1);
  CHECK(h.runner->state() != sfn::ClientState::kBackoff);
  h.stop = true;
  (void)h.expect<sfn::ByeMsg>();
  CHECK(h.join() == sfn::kExitOk);
}
