// The client: its task handler (TrainTask::accept, runTrainTask) and ClientRunner against a
// server played by the test. The runner's protocol tests run on the in-process transport;
// one test also runs over real ZeroMQ with CURVE on tcp loopback, for what only that backend
// has: the CURVE identity the server sees, the socket factory, and the Bye that the socket's
// linger must flush when the session ends.
#include "sfn/client/client_config.h"
#include "sfn/client/client_runner.h"
#include "sfn/client/own_data.h"
#include "sfn/client/prepared_data.h"
#include "sfn/client/shard_data.h"
#include "sfn/client/train_task.h"
#include "sfn/client/zmq_client_factory.h"
#include "sfn/core/error.h"
#include "sfn/data/dataset.h"
#include "sfn/data/local_data.h"
#include "sfn/data/sample_source.h"
#include "sfn/model/design_space.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"
#include "sfn/net/inproc_transport.h"
#include "sfn/net/zmq_transport.h"
#include "sfn/wire/wire.h"

#include <ATen/ATen.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
// sfn::toString and c10::toString return string_view / const char*, which doctest would
// otherwise pick up by ADL and fail to concatenate when printing a failed comparison.
#define DOCTEST_CONFIG_DOUBLE_STRINGIFY
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

// Generous: loopback CURVE handshakes take milliseconds, but CI machines are shared.
constexpr auto kWait = 10s;
constexpr auto kTrainWait = 60s;
constexpr const char* kClientName = "test-client";

std::shared_ptr<spdlog::logger> testLogger() {
  // Not registered with spdlog's global registry: every test case gets its own.
  auto log = std::make_shared<spdlog::logger>(
      "test-client", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  log->set_level(spdlog::level::warn);
  return log;
}

enum class Backend { kInproc, kZmq };

// The server side of a backend and the factory the runner connects with.
struct TestNetwork {
  std::unique_ptr<sfn::ServerTransport> server;
  sfn::ClientTransportFactory connect;
  sfn::PeerId client_peer;  // who the server sees the client as
};

TestNetwork inprocNetwork() {
  auto net = std::make_shared<sfn::InprocNetwork>();
  TestNetwork t;
  t.server = net->server();
  t.connect = [net] { return net->connect(kClientName); };
  t.client_peer = kClientName;
  return t;
}

TestNetwork zmqNetwork() {
  const sfn::CurveKeyPair server_keys = sfn::generateCurveKeyPair();
  const sfn::CurveKeyPair client_keys = sfn::generateCurveKeyPair();
  sfn::ZmqServerOptions so;
  so.server_keys = server_keys;
  so.allowed_client_keys = {client_keys.public_key};
  so.socket.linger = 100ms;
  auto server = sfn::makeZmqServer(so);
  sfn::ZmqClientOptions co;
  co.server_endpoint = server->endpoint();
  co.client_keys = client_keys;
  co.server_public_key = server_keys.public_key;
  co.socket.linger = 200ms;
  TestNetwork t;
  t.server = std::move(server);
  t.connect = sfn::zmqClientFactory(co, nullptr, testLogger(), kClientName);
  t.client_peer = client_keys.public_key;  // the CURVE identity, not a self-declared name
  return t;
}

// The Welcome of a run of `space` (what the Coordinator's ClientAdmission sends).
sfn::WelcomeMsg welcome(std::uint64_t id, const sfn::DesignSpace& space) {
  sfn::WelcomeMsg w;
  w.client_id = id;
  w.server_name = "test-server";
  w.run_id = "test-run";
  w.design_space = space.toToml();
  return w;
}

sfn::IndexList allOf(const sfn::Dataset& data) {
  sfn::IndexList indices(static_cast<std::size_t>(data.size()));
  std::iota(indices.begin(), indices.end(), 0);
  return indices;
}

// The server side of the test, plus a runner on its own thread.
struct Harness {
  sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  sfn::Dataset data =
      sfn::makeSyntheticDataset(48, space.in_channels, space.image_size, space.num_classes, 7);
  sfn::PreparedData prepared{data, allOf(data)};
  TestNetwork net;
  std::atomic<bool> stop{false};
  std::optional<sfn::RunOutcome> outcome;
  std::unique_ptr<sfn::ClientRunner> runner;
  std::thread thread;

  explicit Harness(Backend backend = Backend::kInproc, bool stay = false)
      : net(backend == Backend::kZmq ? zmqNetwork() : inprocNetwork()) {
    sfn::ClientOptions co;
    co.stay = stay;
    co.name = kClientName;
    co.device_class = "phone";
    co.cores = 2;
    co.memory_bytes = 1 << 30;
    co.poll_interval = 50ms;
    co.heartbeat_interval = 200ms;
    co.register_timeout = 5s;
    co.backoff_initial = 50ms;
    co.backoff_max = 200ms;
    co.jitter_seed = 1;
    runner = std::make_unique<sfn::ClientRunner>(co, prepared, net.connect, testLogger());
    thread = std::thread([this] { outcome = runner->run(stop); });
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
      std::optional<sfn::Received> r = net.server->recv(50ms);
      if (!r) continue;
      CHECK(r->peer == net.client_peer);
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

  // Sends until the client's transport is there (a reconnecting client is briefly gone).
  void send(const sfn::Message& m) {
    const sfn::BytesPtr bytes = sfn::encode(m);
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    sfn::SendResult r = net.server->send(net.client_peer, bytes);
    while (r.status == sfn::SendStatus::kUnknownPeer &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
      r = net.server->send(net.client_peer, bytes);
    }
    REQUIRE_MESSAGE(r.ok(), r.reason);
  }

  sfn::RunOutcome join() {
    thread.join();
    REQUIRE(outcome.has_value());
    return *outcome;
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
  task.tensors = supernet.extract(min);
  task.hyper.epochs = 1;
  task.hyper.batch_size = 16;
  task.hyper.lr = 0.05;
  task.hyper.seed = 3;
  task.deadline_ms = 60'000;
  return task;
}

bool sameBytes(const sfn::Bytes& a, const sfn::Bytes& b) {
  return a.size() == b.size() && std::equal(a.data(), a.data() + a.size(), b.data());
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

void registerAndTrainOnce(Backend backend) {
  Harness h(backend);
  const sfn::RegisterMsg reg = h.expect<sfn::RegisterMsg>();
  CHECK(reg.client_name == kClientName);
  CHECK(reg.device_class == "phone");
  CHECK(reg.cores == 2);
  CHECK(reg.samples == 48);
  REQUIRE(reg.data.has_value());
  CHECK(*reg.data == sfn::describeData(h.data, allOf(h.data)));
  CHECK(reg.data->channels == 1);
  CHECK(reg.data->height == 8);
  CHECK(reg.data->max_label == 3);
  CHECK_FALSE(reg.shard.has_value());
  h.send(welcome(42, h.space));

  h.send(minNetTask(h.space, 3, 11));
  const sfn::UpdateMsg update = h.expect<sfn::UpdateMsg>(kTrainWait);
  checkUpdate(update, h.space, 3, 11, 48);
  // Training moved the weights: the update is not the slice it was sent.
  const sfn::SuperNet initial(h.space, 1);
  CHECK_FALSE(update.tensors.bitEqual(initial.extract(sfn::SubNetConfig::minNet(h.space))));

  h.stop = true;
  const sfn::ByeMsg bye = h.expect<sfn::ByeMsg>();
  CHECK_FALSE(bye.reason.empty());
  CHECK(h.join() == sfn::RunOutcome::kStopped);
  CHECK(h.runner->updatesSent() == 1);
}

}  // namespace

// --- the task handler ------------------------------------------------------------------

TEST_CASE("task handler: the same task gives the same Update bytes under a fixed clock") {
  const sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  const sfn::Dataset data = sfn::makeSyntheticDataset(40, 1, 8, 4, 5);
  sfn::IndexList indices(40);
  std::iota(indices.begin(), indices.end(), 0);
  const sfn::VirtualClock clock;  // never advanced: compute_seconds is 0
  const sfn::ClientContext context{space, data, indices, "cpu", &clock};
  const sfn::BytesPtr task_bytes = sfn::encode(minNetTask(space, 2, 9));
  auto answer = [&] {
    sfn::DecodeResult d = sfn::decode(task_bytes);
    REQUIRE(d.ok());
    return sfn::encode(
        sfn::runTrainTask(std::get<sfn::TrainTaskMsg>(std::move(d.message())), context));
  };
  const sfn::BytesPtr a = answer();
  const sfn::BytesPtr b = answer();
  CHECK(sameBytes(*a, *b));
  sfn::DecodeResult d = sfn::decode(a);
  REQUIRE(d.ok());
  const auto& update = std::get<sfn::UpdateMsg>(d.message());
  checkUpdate(update, space, 2, 9, 40);
  CHECK(update.compute_seconds == 0.0);

  // Without a clock, compute_seconds is the trainer's wall time.
  const sfn::ClientContext wall{space, data, indices, "cpu", nullptr};
  CHECK(sfn::runTrainTask(minNetTask(space, 2, 9), wall).compute_seconds > 0.0);
}

TEST_CASE("task handler: a task that does not fit its SubNet is refused with a ConfigError") {
  const sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  auto accept = [&](const sfn::TrainTaskMsg& msg) {
    return sfn::TrainTask::accept(msg, space, "cpu");
  };
  const sfn::TrainTask ok = accept(minNetTask(space, 1, 2));
  CHECK(ok.round == 1);
  CHECK(ok.task_id == 2);
  CHECK(ok.options.epochs == 1);
  CHECK(ok.options.seed == 3);
  CHECK(ok.deadline_ms == 60'000);

  sfn::TrainTaskMsg bad_subnet = minNetTask(space, 1, 2);
  bad_subnet.subnet = "d=9-9-9-9;e=nonsense";
  CHECK_THROWS_AS(accept(bad_subnet), sfn::ConfigError);
  sfn::TrainTaskMsg bad_hyper = minNetTask(space, 1, 2);
  bad_hyper.hyper.epochs = 0;
  CHECK_THROWS_AS(accept(bad_hyper), sfn::ConfigError);
  // The MaxNet's slice sent for the MinNet: wrong shapes.
  sfn::TrainTaskMsg wrong_slice = minNetTask(space, 1, 2);
  wrong_slice.tensors = sfn::SuperNet(space, 1).extract(sfn::SubNetConfig::maxNet(space));
  CHECK_THROWS_WITH_AS(accept(wrong_slice), doctest::Contains("round 1 task 2"), sfn::ConfigError);
  sfn::TrainTaskMsg nan = minNetTask(space, 1, 2);
  nan.tensors[0].tensor.view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(accept(nan), doctest::Contains("not finite"), sfn::ConfigError);
}

TEST_CASE("client: run outcomes have names") {
  CHECK(sfn::toString(sfn::RunOutcome::kStopped) == "stopped");
  CHECK(sfn::toString(sfn::RunOutcome::kRejected) == "rejected");
  CHECK(sfn::toString(sfn::RunOutcome::kServerBye) == "server_bye");
  CHECK(sfn::toString(sfn::RunOutcome::kFinished) == "finished");
  CHECK(sfn::toString(sfn::RunOutcome::kAuthRefused) == "auth_refused");
}

// --- the runner --------------------------------------------------------------------------

TEST_CASE("client: register, train a MinNet task, report the update, say Bye on stop") {
  registerAndTrainOnce(Backend::kInproc);
}

TEST_CASE("client over ZeroMQ: the server sees the CURVE key, gets the update and the Bye") {
  registerAndTrainOnce(Backend::kZmq);
}

TEST_CASE("client: a rejected registration ends run() with kRejected") {
  Harness h;
  (void)h.expect<sfn::RegisterMsg>();
  h.send(sfn::RejectMsg{sfn::RejectCode::kClientIdCollision, "no room for you"});
  CHECK(h.join() == sfn::RunOutcome::kRejected);
}

TEST_CASE("client: re-registers after the server forgets it and reconnects after a Bye") {
  Harness h;
  (void)h.expect<sfn::RegisterMsg>();
  h.send(welcome(1, h.space));

  // A Reject the client does not expect while registered (not kNotRegistered) is ignored:
  // it answers the next task instead of registering again (expect() fails on a Register).
  h.send(sfn::RejectMsg{sfn::RejectCode::kDataMismatch, "reason text that says nothing"});
  h.send(minNetTask(h.space, 4, 1));
  checkUpdate(h.expect<sfn::UpdateMsg>(kTrainWait), h.space, 4, 1, 48);
  // A restarted server answers anything from an unknown peer with kNotRegistered. Several of
  // them (one per heartbeat queued while it was down): only the first triggers a
  // registration, the stale ones are not mistaken for a refusal (whatever their text).
  h.send(sfn::RejectMsg{sfn::RejectCode::kNotRegistered, "who are you"});
  h.send(sfn::RejectMsg{sfn::RejectCode::kNotRegistered, "who are you"});
  h.send(sfn::RejectMsg{sfn::RejectCode::kNotRegistered, "who are you"});
  (void)h.expect<sfn::RegisterMsg>();
  h.send(welcome(2, h.space));

  // Bye from the server: the client backs off, reconnects on a new transport and registers.
  h.send(sfn::ByeMsg{"server restarting", sfn::ByeCode::kStopping});
  (void)h.expect<sfn::RegisterMsg>();
  h.send(welcome(3, h.space));

  // Still fully working on the new connection.
  h.send(minNetTask(h.space, 5, 1));
  checkUpdate(h.expect<sfn::UpdateMsg>(kTrainWait), h.space, 5, 1, 48);
  h.stop = true;
  (void)h.expect<sfn::ByeMsg>();
  CHECK(h.join() == sfn::RunOutcome::kStopped);
}

TEST_CASE("client: with stop_on_server_bye, a Bye from the server ends run() with kServerBye") {
  // Built by hand: the Harness's runner keeps reconnecting after a Bye.
  const sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  const sfn::Dataset data = sfn::makeSyntheticDataset(8, 1, 8, 4, 1);
  TestNetwork net = inprocNetwork();
  sfn::ClientOptions co;
  co.name = kClientName;
  co.poll_interval = 20ms;
  co.stop_on_server_bye = true;
  sfn::PreparedData prepared(data, {0, 1, 2});
  sfn::ClientRunner runner(co, prepared, net.connect, testLogger());
  std::atomic<bool> stop{false};
  std::optional<sfn::RunOutcome> outcome;
  std::thread t([&] { outcome = runner.run(stop); });
  std::optional<sfn::Received> r;
  for (auto deadline = std::chrono::steady_clock::now() + kWait;
       !r && std::chrono::steady_clock::now() < deadline;)
    r = net.server->recv(50ms);
  REQUIRE(r.has_value());  // the Register
  REQUIRE(net.server->send(kClientName, sfn::encode(welcome(1, space))));
  REQUIRE(net.server->send(kClientName,
                           sfn::encode(sfn::ByeMsg{"server stopping", sfn::ByeCode::kStopping})));
  t.join();
  REQUIRE(outcome.has_value());
  CHECK(*outcome == sfn::RunOutcome::kServerBye);
}

TEST_CASE("client: a task it cannot accept is skipped and the next task is still trained") {
  Harness h;
  (void)h.expect<sfn::RegisterMsg>();
  h.send(welcome(7, h.space));

  sfn::TrainTaskMsg bad = minNetTask(h.space, 1, 1);
  bad.subnet = "d=9-9-9-9;e=nonsense";  // not a SubNet of this design space
  h.send(bad);
  sfn::TrainTaskMsg zero_epochs = minNetTask(h.space, 1, 2);
  zero_epochs.hyper.epochs = 0;  // rejected by TrainOptions::validate
  h.send(zero_epochs);
  sfn::TrainTaskMsg wrong_slice = minNetTask(h.space, 1, 3);
  wrong_slice.tensors = sfn::SuperNet(h.space, 1).extract(sfn::SubNetConfig::maxNet(h.space));
  h.send(wrong_slice);
  h.send(minNetTask(h.space, 1, 4));
  // Only the good task is answered (expect() fails on any other message but heartbeats).
  checkUpdate(h.expect<sfn::UpdateMsg>(kTrainWait), h.space, 1, 4, 48);
  CHECK(h.runner->state() != sfn::ClientState::kBackoff);
  h.stop = true;
  (void)h.expect<sfn::ByeMsg>();
  CHECK(h.join() == sfn::RunOutcome::kStopped);
  // Read after run() returned: the counter moves just after the send, so the server may see
  // the Update first.
  CHECK(h.runner->updatesSent() == 1);
}

TEST_CASE("client: the server's Bye(finished) ends run() with kFinished; --stay reconnects") {
  {
    Harness h;
    (void)h.expect<sfn::RegisterMsg>();
    h.send(welcome(1, h.space));
    h.send(sfn::ByeMsg{"training finished", sfn::ByeCode::kFinished});
    CHECK(h.join() == sfn::RunOutcome::kFinished);
  }
  Harness stays(Backend::kInproc, /*stay=*/true);
  (void)stays.expect<sfn::RegisterMsg>();
  stays.send(welcome(1, stays.space));
  stays.send(sfn::ByeMsg{"training finished", sfn::ByeCode::kFinished});
  (void)stays.expect<sfn::RegisterMsg>();  // back for the server's next run
  stays.send(welcome(2, stays.space));
  stays.stop = true;
  (void)stays.expect<sfn::ByeMsg>();
  CHECK(stays.join() == sfn::RunOutcome::kStopped);
}

TEST_CASE("client data: own samples are normalised with the statistics of the Welcome") {
  sfn::Dataset raw = sfn::makeSyntheticDataset(6, 1, 8, 4, 3);
  raw.images = raw.images.sigmoid();  // pixel values in [0, 1], as loadLocalData gives
  const at::Tensor pixels = raw.images.clone();
  sfn::OwnData own(raw);
  const sfn::DataClaim claim = own.claim();
  CHECK(claim.samples == 6);
  REQUIRE(claim.data.has_value());
  CHECK(claim.data->max_label == raw.labels.max().item<std::int64_t>());

  sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  space.norm_mean = {0.5};
  space.norm_std = {0.25};
  sfn::RunSettings settings = sfn::RunSettings::fromWelcome(welcome(1, space));
  CHECK(settings.run_id == "test-run");
  CHECK(settings.space.norm_std == std::vector<double>{0.25});
  own.prepare(settings);
  CHECK(at::allclose(own.dataset().images, (pixels - 0.5) / 0.25));
  CHECK(own.indices().size() == 6);

  // Another run's SuperNet takes 28x28 images: nothing is trained on 8x8 ones.
  settings.space = sfn::DesignSpace::preset("fmnist");
  CHECK_THROWS_WITH_AS(own.prepare(settings), doctest::Contains("1x8x8"), sfn::DataError);
  // A Welcome without a design space (an older server) is a protocol error.
  CHECK_THROWS_AS(sfn::RunSettings::fromWelcome(sfn::WelcomeMsg{}), sfn::ProtocolError);
}

TEST_CASE("client data: a shard is cut with the Welcome's settings and checked against its size") {
  sfn::ShardData shard(2, 5, "");
  const sfn::DataClaim claim = shard.claim();
  CHECK(claim.samples == 0);
  CHECK_FALSE(claim.data.has_value());
  REQUIRE(claim.shard.has_value());
  CHECK(claim.shard->index == 2);
  CHECK(claim.shard->count == 5);
  CHECK_THROWS_AS(sfn::ShardData(5, 5, ""), sfn::ConfigError);

  const sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  sfn::ShardSettings s;
  s.dataset = sfn::DatasetKind::kSynthetic;
  s.seed = 4;
  s.split_seed = 4;
  s.val_fraction = 0.1;
  s.scheme = sfn::PartitionScheme::kIid;
  s.synthetic_train = 200;
  s.synthetic_test = 20;
  s.samples = 36;  // 180 training samples (200 minus 10 %) in 5 equal IID shards
  sfn::RunSettings settings{"run", space, s};
  shard.prepare(settings);
  CHECK(shard.indices().size() == 36);
  for (std::int64_t i : shard.indices()) CHECK(i < 200);

  settings.shard->samples = 37;  // the server's copy of the data differs
  sfn::ShardData other(2, 5, "");
  CHECK_THROWS_WITH_AS(other.prepare(settings), doctest::Contains("differs"), sfn::DataError);
  settings.shard.reset();
  CHECK_THROWS_AS(other.prepare(settings), sfn::DataError);
}

TEST_CASE("client config: a TOML file with flags as overrides, and errors that name the key") {
  const auto load = [](std::vector<std::string> o) { return sfn::ClientConfig::load("", o); };
  const sfn::ClientConfig c = load({"server.endpoint=\"tcp://h:5555\"", "server.insecure=true",
                                    "data.path=\"/d\"", "client.threads=3"});
  CHECK(c.endpoint == "tcp://h:5555");
  CHECK(c.data_path == "/d");
  CHECK(c.threads == 3);
  CHECK_FALSE(c.shardMode());
  CHECK(load({"server.endpoint=\"e\"", "server.insecure=true", "data.partition=1", "data.of=4"})
            .shardMode());
  CHECK_THROWS_WITH_AS(load({"server.endpoint=\"e\"", "server.insecure=true"}),
                       doctest::Contains("--data PATH"), sfn::ConfigError);
  CHECK_THROWS_WITH_AS(load({"server.insecure=true", "data.path=\"/d\""}),
                       doctest::Contains("--server"), sfn::ConfigError);
  CHECK_THROWS_WITH_AS(load({"server.endpoint=\"e\"", "data.path=\"/d\""}),
                       doctest::Contains("--key"), sfn::ConfigError);
  CHECK_THROWS_WITH_AS(
      load({"server.endpoint=\"e\"", "server.insecure=true", "data.partition=4", "data.of=4"}),
      doctest::Contains("data.partition"), sfn::ConfigError);
  CHECK_THROWS_WITH_AS(load({"server.endpoint=\"e\"", "server.insecure=true", "data.path=\"/d\"",
                             "data.format=\"png\""}),
                       doctest::Contains("data.format"), sfn::ConfigError);
  CHECK_THROWS_WITH_AS(load({"client.nmae=\"x\""}), doctest::Contains("nmae"), sfn::ConfigError);
  CHECK_THROWS_WITH_AS(load({"seed.value=1"}), doctest::Contains("[seed]"), sfn::ConfigError);
}

namespace {

// An app's samples, served without files: a gradient image per sample, label = index % 4.
class AppSamples final : public sfn::SampleSource {
 public:
  std::int64_t size() const override { return 12; }
  sfn::SampleShape shape() const override { return {1, 8, 8}; }
  std::int64_t read(std::int64_t index, std::span<float> pixels) const override {
    for (std::size_t p = 0; p < pixels.size(); ++p)
      pixels[p] = static_cast<float>((p + static_cast<std::size_t>(index)) % 64) / 63.0f;
    return index % 4;
  }
};

}  // namespace

TEST_CASE("client: an app's SampleSource registers, is welcomed and trains") {
  const AppSamples app;
  sfn::OwnData own(sfn::materialize(app, "app"));
  TestNetwork net = inprocNetwork();
  sfn::ClientOptions co;
  co.name = kClientName;
  co.poll_interval = 20ms;
  sfn::ClientRunner runner(co, own, net.connect, testLogger());
  std::atomic<bool> stop{false};
  std::thread t([&] { (void)runner.run(stop); });
  const auto next = [&]() -> sfn::Message {
    for (auto deadline = std::chrono::steady_clock::now() + kTrainWait;
         std::chrono::steady_clock::now() < deadline;) {
      std::optional<sfn::Received> r = net.server->recv(50ms);
      if (!r) continue;
      sfn::DecodeResult d = sfn::decode(r->message);
      if (d.ok() && !std::holds_alternative<sfn::HeartbeatMsg>(d.message())) return d.message();
    }
    return sfn::ByeMsg{"timeout"};
  };
  const sfn::Message reg = next();
  REQUIRE(std::holds_alternative<sfn::RegisterMsg>(reg));
  CHECK(std::get<sfn::RegisterMsg>(reg).samples == 12);
  CHECK(*std::get<sfn::RegisterMsg>(reg).data == sfn::DataInfo{1, 8, 8, 3});
  const sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  REQUIRE(net.server->send(kClientName, sfn::encode(welcome(1, space))));
  REQUIRE(net.server->send(kClientName, sfn::encode(minNetTask(space, 0, 1))));
  const sfn::Message update = next();
  REQUIRE(std::holds_alternative<sfn::UpdateMsg>(update));
  checkUpdate(std::get<sfn::UpdateMsg>(update), space, 0, 1, 12);
  stop = true;
  t.join();
}

namespace {

// A connection that comes up when the test says so. Until then nothing arrives, and what
// the client sends waits, as it does in ZeroMQ's queue before the handshake.
struct SlowLink {
  std::atomic<bool> up{false};
  std::atomic<int> sessions{0};  // transports made
};

class SlowConnectTransport final : public sfn::ClientTransport {
 public:
  SlowConnectTransport(std::unique_ptr<sfn::ClientTransport> inner, std::shared_ptr<SlowLink> link)
      : inner_(std::move(inner)), link_(std::move(link)) {}
  sfn::SendResult send(sfn::BytesPtr message) override {
    if (!flush()) {
      held_.push_back(std::move(message));
      return {};
    }
    return inner_->send(std::move(message));
  }
  std::optional<sfn::BytesPtr> recv(std::chrono::milliseconds timeout) override {
    if (!flush()) {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(timeout, 10ms));
      return std::nullopt;
    }
    return inner_->recv(timeout);
  }
  bool connected() override { return link_->up.load(); }

 private:
  // Sends what waited once the link is up; returns whether it is.
  bool flush() {
    if (!link_->up.load()) return false;
    for (auto& m : held_) (void)inner_->send(std::move(m));
    held_.clear();
    return true;
  }
  std::unique_ptr<sfn::ClientTransport> inner_;
  std::shared_ptr<SlowLink> link_;
  std::vector<sfn::BytesPtr> held_;
};

// A runner on its own thread whose every session connects through a SlowConnectTransport.
struct SlowHarness {
  sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  sfn::Dataset data =
      sfn::makeSyntheticDataset(48, space.in_channels, space.image_size, space.num_classes, 7);
  sfn::PreparedData prepared{data, allOf(data)};
  std::shared_ptr<sfn::InprocNetwork> net = std::make_shared<sfn::InprocNetwork>();
  std::unique_ptr<sfn::ServerTransport> server = net->server();
  std::shared_ptr<SlowLink> link = std::make_shared<SlowLink>();
  std::atomic<bool> stop{false};
  std::unique_ptr<sfn::ClientRunner> runner;
  std::thread thread;

  SlowHarness(std::chrono::milliseconds connect_timeout,
              std::chrono::milliseconds register_timeout) {
    sfn::ClientOptions co;
    co.name = kClientName;
    co.poll_interval = 20ms;
    co.connect_timeout = connect_timeout;
    co.register_timeout = register_timeout;
    co.backoff_initial = 20ms;
    co.backoff_max = 50ms;
    co.jitter_seed = 1;
    auto connect = [net = net, link = link]() -> std::unique_ptr<sfn::ClientTransport> {
      ++link->sessions;
      return std::make_unique<SlowConnectTransport>(net->connect(kClientName), link);
    };
    runner = std::make_unique<sfn::ClientRunner>(co, prepared, connect, testLogger());
    thread = std::thread([this] { (void)runner->run(stop); });
  }
  ~SlowHarness() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  // Waits (bounded) until `done` holds.
  template <typename F>
  bool waitFor(F done) const {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
};

}  // namespace

TEST_CASE("client: the answer to a Register is timed from the connection, not from the send") {
  // A server busy accepting a fleet: the connection takes 10 register timeouts to come up.
  SlowHarness h(/*connect_timeout=*/30s, /*register_timeout=*/100ms);
  REQUIRE(h.waitFor([&] { return h.runner->state() == sfn::ClientState::kRegistering; }));
  std::this_thread::sleep_for(1s);  // the slow accept being modelled, not a synchronisation
  CHECK(h.link->sessions == 1);     // no reconnect while the Register waited
  h.link->up = true;
  std::optional<sfn::Received> reg;
  REQUIRE(h.waitFor([&] { return (reg = h.server->recv(10ms)).has_value(); }));
  sfn::DecodeResult d = sfn::decode(reg->message);
  REQUIRE(d.ok());
  CHECK(std::holds_alternative<sfn::RegisterMsg>(d.message()));
  REQUIRE(h.server->send(kClientName, sfn::encode(welcome(1, h.space))).ok());
  REQUIRE(h.waitFor([&] { return h.runner->state() == sfn::ClientState::kIdle; }));
  CHECK(h.link->sessions == 1);  // the first connection, kept
}

TEST_CASE("client: no connection within connect_timeout starts a new session") {
  SlowHarness h(/*connect_timeout=*/200ms, /*register_timeout=*/5s);
  CHECK(h.waitFor([&] { return h.link->sessions >= 3; }));
}
