// ClientRunner: the life of one federated client (sfn-client) against one server.
//
// Lifecycle (ClientState), one transition per arrow, each logged:
//
//   Connecting --socket made, Register sent--> Registering
//   Registering --Welcome--> Idle
//   Registering --Reject--> (run() returns kExitRejected: the server refused us for good)
//   Registering --no answer within register_timeout--> Backoff
//   Idle --TrainTask--> Training --trained, Update sent--> Idle
//   Idle/Training --Bye from server, or server silent for liveness_timeout--> Backoff
//   Idle --Reject "not registered" (server restarted and forgot us)--> Registering
//   Backoff --delay (backoff_initial doubling to backoff_max, +-jitter)--> Connecting
//   any --stop flag--> Stopping (Bye sent, run() returns 0)
//
// Training runs on a worker thread (std::async) so that the socket thread keeps sending
// heartbeats and watching the stop flag while LibTorch works; the socket itself is used by
// the run() thread only. A training exception is carried back through the future, logged,
// and the task is dropped (the server's round deadline covers it) without ending the client.
//
// The server sends nothing while it has no work for us, so "silence" is measured from the
// last message received; after a long silence we rebuild the socket and re-register, which
// is cheap and idempotent on the server (registration is an upsert keyed by our CURVE key).
#pragma once

#include "sfn/data/dataset.h"
#include "sfn/model/design_space.h"
#include "sfn/train/local_trainer.h"
#include "sfn/net/zmq_transport.h"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>

namespace sfn {

// Runs one local-training job and returns its future. The default (empty) starts a thread
// per job (std::async). A process that runs many runners (sfn-sim --connect) passes one
// shared bounded pool instead, so that workers x torch threads never exceed the cores; the
// job may then also fail with an exception without running (e.g. cancelled at shutdown).
using TrainExecutor = std::function<std::future<TrainResult>(std::function<TrainResult()>)>;

struct ClientOptions {
  std::string name = "client";           // shown in server and client logs
  std::string device_class = "default";  // selects the server's MACs budget for us
  std::uint32_t cores = 0;               // 0 = std::thread::hardware_concurrency()
  std::uint64_t memory_bytes = 0;        // 0 = physical memory of this host
  std::string device = "cpu";            // torch device used for local training

  // Endpoint, CURVE keys (or insecure) and socket settings. `insecure` is for local
  // development only and is logged as a warning on every connect.
  ZmqClientOptions transport;

  std::chrono::milliseconds poll_interval{500};         // one recv wait; bounds stop latency
  std::chrono::milliseconds heartbeat_interval{5'000};  // Heartbeat while registered
  std::chrono::milliseconds register_timeout{10'000};   // Register -> Welcome/Reject
  std::chrono::milliseconds liveness_timeout{120'000};  // silence before reconnecting; 0 = off
  std::chrono::milliseconds backoff_initial{1'000};     // first reconnect delay
  std::chrono::milliseconds backoff_max{30'000};        // cap of the doubling delay
  double backoff_jitter = 0.2;                          // delay * U[1 - j, 1 + j]
  std::uint64_t jitter_seed = 0;  // 0 = random; fixed values make tests reproducible
  TrainExecutor train_executor;   // empty = std::async per training job
  // Return from run() (kExitServerBye) when the server says Bye (training finished or
  // server stopping) instead of reconnecting; a fleet of load-test clients ends with its
  // server this way. Off for sfn-client, which outlives server restarts.
  bool stop_on_server_bye = false;

  // Throws ConfigError naming the offending field.
  void validate() const;
};

enum class ClientState { kConnecting, kRegistering, kIdle, kTraining, kBackoff, kStopping };
std::string_view toString(ClientState state);

// run() exit codes (also sfn-client's process exit codes).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRejected = 3;   // the server refused the registration
inline constexpr int kExitServerBye = 4;  // the server said Bye and stop_on_server_bye is set

class ClientRunner {
 public:
  // `data` and `space` must outlive the runner; `local_indices` index into `data` (the
  // client's shard, never copied). Throws ConfigError for invalid options or an empty
  // shard. `context` may be shared by several runners in one process; null creates one.
  ClientRunner(ClientOptions options, const DesignSpace& space, const Dataset& data,
               IndexList local_indices, std::shared_ptr<spdlog::logger> log,
               std::shared_ptr<zmq::context_t> context = nullptr);
  ~ClientRunner();
  ClientRunner(const ClientRunner&) = delete;
  ClientRunner& operator=(const ClientRunner&) = delete;

  // Runs until `stop` becomes true (then sends Bye and returns kExitOk) or the server
  // rejects the registration (returns kExitRejected) or, with stop_on_server_bye, the
  // server says Bye (returns kExitServerBye). Checks `stop` at least every
  // poll_interval, except while waiting for an unfinished training step to end.
  // Throws only for local failures that retrying cannot fix (bad keys, bad endpoint).
  [[nodiscard]] int run(const std::atomic<bool>& stop);

  // Current state, for tests and status logs (safe to read from any thread).
  ClientState state() const { return state_.load(); }
  // Updates sent since construction (any thread).
  std::uint64_t updatesSent() const { return updates_sent_.load(); }

 private:
  struct SessionEnd;  // how one connection ended (client_runner.cpp)
  enum class RegisterOutcome { kWelcome, kRejected, kTimeout, kStopped };

  // One connection: new socket, registration, then the task loop until it is lost.
  SessionEnd runSession(const std::atomic<bool>& stop, std::uint64_t& heartbeat_seq);
  // Sends Register and waits (bounded by register_timeout) for Welcome or Reject.
  RegisterOutcome registerWith(ClientTransport& transport, const std::atomic<bool>& stop);
  // Encodes and sends; failures are logged and returned (the caller decides).
  bool sendMessage(ClientTransport& transport, const Message& message);
  void setState(ClientState next);
  // Sleeps `delay` in poll_interval slices; returns false if stopped meanwhile.
  bool sleepUnlessStopped(std::chrono::milliseconds delay, const std::atomic<bool>& stop) const;

  ClientOptions options_;
  const DesignSpace& space_;
  const Dataset& data_;
  IndexList indices_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<zmq::context_t> context_;
  std::atomic<ClientState> state_{ClientState::kConnecting};
  std::atomic<std::uint64_t> updates_sent_{0};
};

}  // namespace sfn
