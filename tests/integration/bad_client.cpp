// sfn_bad_client: a hand-made, allowlisted client that sends the server every kind of bad
// message the protocol must survive (tests/integration/server_clients.sh, item 5).
//
// It registers like sfn-client (CURVE, its key on the allowlist, so everything it sends
// reaches the Coordinator), then answers its first two TrainTasks with bad messages only:
//   task 1: garbage bytes, a truncated Update, an Envelope with an unknown union member,
//           an Update with wrong tensor shapes (the server drops the task), then the same
//           Update again (a duplicate);
//   task 2: an Update for the previous round (stale), then one with a NaN in its tensors.
// No valid update is ever sent, so none of this client's tasks may be accepted. Each
// message sent is printed as "bad-client: sent <kind>" for the script's log.
//
// --mode poison (item "poison", issue 13): answers every TrainTask with a well-formed Update
// whose float values are all 3e38 (finite, so it passes decoding and validation; only the
// bound on an update's change stops it), until the server says Bye.
//
// Exit codes: 0 all bad messages sent (poison: the server said Bye after at least one
// poisoned Update), 1 runtime error or timeout, 2 usage error.
#include "sfn/core/error.h"
#include "sfn/wire/wire.h"
#include "sfn/net/zmq_transport.h"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <sfn_generated.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fbw = sfn::wire;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  std::string server;
  std::string server_key;
  std::string key;
  std::string name = "bad";
  std::string mode = "malformed";
  std::uint64_t samples = 100;
  double timeout_s = 120;
};

class BadClient {
 public:
  explicit BadClient(const Options& o) : options_(o) {
    sfn::ZmqClientOptions zo;
    zo.server_endpoint = o.server;
    zo.server_public_key = sfn::readKeyFile(o.server_key).public_key;
    zo.client_keys = sfn::readKeyFile(o.key);
    client_ = sfn::makeZmqClient(zo);
  }

  int run() {
    sfn::RegisterMsg reg;
    reg.client_name = options_.name;
    reg.device_class = "default";
    reg.cores = 1;
    reg.memory_bytes = 1 << 30;
    reg.samples = options_.samples;
    reg.data = sfn::DataInfo{1, 28, 28, 9};  // Fashion-MNIST, as the integration runs use
    send(sfn::encode(reg), "Register");
    (void)next<sfn::WelcomeMsg>();
    std::cout << "bad-client: registered" << std::endl;
    if (options_.mode == "poison") return poisonEveryTask();

    const sfn::TrainTaskMsg first = next<sfn::TrainTaskMsg>();
    std::cout << "bad-client: task 1: round " << first.round << " task " << first.task_id
              << std::endl;
    sendGarbage();
    sendTruncated(first);
    sendUnknownUnionMember();
    const sfn::BytesPtr wrong_shapes = sfn::encode(updateFor(first, wrongShapes(first.tensors)));
    send(wrong_shapes, "wrong-shapes Update");
    send(wrong_shapes, "duplicate Update");

    const sfn::TrainTaskMsg second = next<sfn::TrainTaskMsg>();
    std::cout << "bad-client: task 2: round " << second.round << " task " << second.task_id
              << std::endl;
    // Correct shapes and values, but for the first task's round: stale.
    send(sfn::encode(updateFor(first, second.tensors.clone())), "stale-round Update");
    send(sfn::encode(updateFor(second, withNaN(second.tensors))), "NaN Update");

    send(sfn::encode(sfn::ByeMsg{"bad client done"}), "Bye");
    std::cout << "bad-client: done" << std::endl;
    return 0;  // the transport's linger flushes the Bye
  }

 private:
  void send(sfn::BytesPtr bytes, const char* kind) {
    const sfn::SendResult r = client_->send(std::move(bytes));
    SFN_ENFORCE(r.ok(), sfn::Error, "bad-client: sending ", kind, " failed: ", r.reason);
    std::cout << "bad-client: sent " << kind << std::endl;
  }

  // Answers every task with an all-3e38 Update until the server says Bye.
  int poisonEveryTask() {
    int sent = 0;
    const auto deadline_of = [&] {
      return Clock::now() +
             std::chrono::milliseconds(static_cast<long long>(options_.timeout_s * 1e3));
    };
    auto deadline = deadline_of();
    while (Clock::now() < deadline) {
      std::optional<sfn::BytesPtr> bytes = client_->recv(200ms);
      if (!bytes) continue;
      sfn::DecodeResult d = sfn::decode(*bytes);
      SFN_ENFORCE(d.ok(), sfn::ProtocolError,
                  "bad-client: the server sent a bad message: ", d.error().reason);
      if (std::holds_alternative<sfn::ByeMsg>(d.message())) {
        std::cout << "bad-client: the server said Bye after " << sent << " poisoned Updates"
                  << std::endl;
        return sent > 0 ? 0 : 1;
      }
      if (auto* task = std::get_if<sfn::TrainTaskMsg>(&d.message())) {
        std::cout << "bad-client: task: round " << task->round << " task " << task->task_id
                  << std::endl;
        send(sfn::encode(updateFor(*task, filled(task->tensors, 3e38f))), "poisoned Update");
        ++sent;
        deadline = deadline_of();
      }
    }
    SFN_THROW(sfn::Error, "bad-client: timed out after ", options_.timeout_s, " s");
  }

  // The next message of type T, skipping anything else; throws on timeout.
  template <typename T>
  T next() {
    const auto deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<long long>(options_.timeout_s * 1e3));
    while (Clock::now() < deadline) {
      std::optional<sfn::BytesPtr> bytes = client_->recv(200ms);
      if (!bytes) continue;
      sfn::DecodeResult d = sfn::decode(*bytes);
      SFN_ENFORCE(d.ok(), sfn::ProtocolError,
                  "bad-client: the server sent a bad message: ", d.error().reason);
      if (auto* reject = std::get_if<sfn::RejectMsg>(&d.message()))
        SFN_THROW(sfn::Error, "bad-client: rejected by the server: ", reject->reason);
      if (T* msg = std::get_if<T>(&d.message())) return std::move(*msg);
    }
    SFN_THROW(sfn::Error, "bad-client: timed out after ", options_.timeout_s, " s");
  }

  void sendGarbage() {
    std::mt19937 rng(7);
    std::vector<std::uint8_t> bytes(512);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    send(std::make_shared<sfn::VectorBytes>(std::move(bytes)), "garbage");
  }

  // A well-formed Update cut in half: the verifier must catch the missing half.
  void sendTruncated(const sfn::TrainTaskMsg& task) {
    const sfn::BytesPtr full = sfn::encode(updateFor(task, task.tensors.clone()));
    send(sfn::copyBytes(full->data(), full->size() / 2), "truncated Update");
  }

  void sendUnknownUnionMember() {
    flatbuffers::FlatBufferBuilder fbb;
    const auto hb = fbw::CreateHeartbeat(fbb, 1);
    fbw::FinishEnvelopeBuffer(fbb, fbw::CreateEnvelope(fbb, sfn::kProtocolVersion,
                                                       static_cast<fbw::Payload>(200), hb.Union()));
    send(sfn::copyBytes(fbb.GetBufferPointer(), fbb.GetSize()), "unknown-union-member Envelope");
  }

  static sfn::UpdateMsg updateFor(const sfn::TrainTaskMsg& task, sfn::NamedTensors tensors) {
    sfn::UpdateMsg u;
    u.round = task.round;
    u.task_id = task.task_id;
    u.samples = 10;
    u.tensors = std::move(tensors);
    u.mean_loss = 1.0;
    u.compute_seconds = 0.1;
    return u;
  }

  // The task's tensors with the first one's leading dimension one element short.
  static sfn::NamedTensors wrongShapes(const sfn::NamedTensors& in) {
    sfn::NamedTensors out;
    bool changed = false;
    for (const auto& t : in) {
      if (!changed && t.tensor.dim() > 0 && t.tensor.size(0) > 1) {
        out.add(t.name, t.tensor.narrow(0, 0, t.tensor.size(0) - 1).clone());
        changed = true;
      } else {
        out.add(t.name, t.tensor.clone());
      }
    }
    SFN_ENFORCE(changed, sfn::Error, "bad-client: no tensor to shorten");
    return out;
  }

  // Every float value set to `value` (integer buffers kept).
  static sfn::NamedTensors filled(const sfn::NamedTensors& in, float value) {
    sfn::NamedTensors out = in.clone();  // the received tensors are read-only views
    for (auto& t : out)
      if (t.tensor.scalar_type() == at::kFloat) t.tensor.fill_(value);
    return out;
  }

  static sfn::NamedTensors withNaN(const sfn::NamedTensors& in) {
    sfn::NamedTensors out = in.clone();  // the received tensors are read-only views
    for (auto& t : out) {
      if (t.tensor.scalar_type() == at::kFloat && t.tensor.numel() > 0) {
        t.tensor.view({-1})[0] = std::numeric_limits<float>::quiet_NaN();
        return out;
      }
    }
    SFN_THROW(sfn::Error, "bad-client: no float tensor to poison");
  }

  Options options_;
  std::unique_ptr<sfn::ZmqClientTransport> client_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"sfn_bad_client: sends malformed and invalid messages to sfn-server (tests)"};
  app.add_option("--server", o.server, "server endpoint")->required();
  app.add_option("--server-key", o.server_key, "server public key file")->required();
  app.add_option("--key", o.key, "this client's key pair file")->required();
  app.add_option("--name", o.name, "client name")->capture_default_str();
  app.add_option("--samples", o.samples, "sample count to register with")->capture_default_str();
  app.add_option("--mode", o.mode,
                 "malformed: the fixed sequence of bad messages; poison: an all-3e38 Update "
                 "for every task until Bye")
      ->check(CLI::IsMember({"malformed", "poison"}))
      ->capture_default_str();
  app.add_option("--timeout-s", o.timeout_s, "give up waiting for a message after this long")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return BadClient(o).run();
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return 1;
  }
}
