// ClientRunner: the life of one federated client (sfn-client) against one server.
//
// Lifecycle (ClientState), one transition per arrow, each logged:
//
//   Connecting --transport made, Register sent--> Registering
//   Registering --Welcome--> Idle
//   Registering --Reject--> (run() returns kRejected: the server refused us for good)
//   Registering --handshake refused (our key is not on the allowlist)--> (kAuthRefused)
//   Registering --no connection within connect_timeout, or no answer within
//                register_timeout of the connection coming up--> Backoff
//   Idle --TrainTask--> Training --trained, Update sent--> Idle
//   Idle/Training --Bye(finished) from server--> (kFinished; Backoff with stay)
//   Idle/Training --other Bye from server, or server silent for liveness_timeout--> Backoff
//   Idle --Reject kNotRegistered (server restarted and forgot us)--> Registering
//   Backoff --delay (backoff_initial doubling to backoff_max, +-jitter)--> Connecting
//   any --stop flag--> Stopping (Bye sent, run() returns kStopped)
//
// Each Welcome carries the run's settings (client_data.h): the runner makes its ClientData
// ready for them (normalisation, shard) before the first task; a DataError from that ends
// run() (the client cannot train for this run).
//
// A task is handled by the client's one task handler (train_task.h), the same code the
// simulator's virtual clients run: TrainTask::accept on receipt (a bad task is refused at
// once), runTrainTask on a worker thread (std::async, or ClientOptions::train_executor) so
// that the socket thread keeps sending heartbeats and watching the stop flag while LibTorch
// works; the transport itself is used by the run() thread only. A training exception is
// carried back through the future, logged, and the task is dropped (the server's round
// deadline covers it) without ending the client.
//
// The runner knows no transport backend: it asks a factory for a new ClientTransport per
// session (ZeroMQ in sfn-client and sfn-sim --connect, see zmq_client_factory.h; in-process
// in tests).
//
// The server sends nothing while it has no work for us, so "silence" is measured from the
// last message received; after a long silence we rebuild the transport and re-register,
// which is cheap and idempotent on the server (registration is an upsert keyed by our
// transport identity, the CURVE key over ZeroMQ).
#pragma once

#include "sfn/client/client_data.h"
#include "sfn/client/train_task.h"
#include "sfn/core/clock.h"
#include "sfn/data/dataset.h"
#include "sfn/model/design_space.h"
#include "sfn/net/transport.h"
#include "sfn/wire/wire.h"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sfn {

// Makes the transport of one session (a new connection to the server). Called once per
// session on the run() thread; may throw for failures that retrying cannot fix.
using ClientTransportFactory = std::function<std::unique_ptr<ClientTransport>()>;

// Runs one local-training job and returns its future. The default (empty) starts a thread
// per job (std::async). A process that runs many runners (sfn-sim --connect) passes one
// shared bounded pool instead, so that workers x torch threads never exceed the cores; the
// job may then also fail with an exception without running (e.g. cancelled at shutdown).
using TrainExecutor = std::function<std::future<UpdateMsg>(std::function<UpdateMsg()>)>;

struct ClientOptions {
  std::string name = "client";           // shown in server and client logs
  std::string device_class = "default";  // selects the server's MACs budget for us
  std::uint32_t cores = 0;               // 0 = std::thread::hardware_concurrency()
  std::uint64_t memory_bytes = 0;        // 0 = physical memory of this host
  std::string device = "cpu";            // torch device used for local training

  std::string server = "server";  // how logs name the server (e.g. its endpoint)
  // Measures the Updates' compute_seconds (ClientContext::clock); null = wall time.
  const Clock* compute_clock = nullptr;

  std::chrono::milliseconds poll_interval{500};         // one recv wait; bounds stop latency
  std::chrono::milliseconds heartbeat_interval{5'000};  // Heartbeat while registered
  std::chrono::milliseconds register_timeout{10'000};   // connection up -> Welcome/Reject
  // Register sent -> connection up (TCP and handshake; ClientTransport::connected). Long,
  // because a server welcoming a fleet of thousands may take a while to accept this one.
  std::chrono::milliseconds connect_timeout{60'000};
  std::chrono::milliseconds liveness_timeout{120'000};  // silence before reconnecting; 0 = off
  std::chrono::milliseconds backoff_initial{1'000};     // first reconnect delay
  std::chrono::milliseconds backoff_max{30'000};        // cap of the doubling delay
  double backoff_jitter = 0.2;                          // delay * U[1 - j, 1 + j]
  std::uint64_t jitter_seed = 0;  // 0 = random; fixed values make tests reproducible
  TrainExecutor train_executor;   // empty = std::async per training job
  // Return from run() (kServerBye) when the server says Bye (training finished or
  // server stopping) instead of reconnecting; a fleet of load-test clients ends with its
  // server this way. Off for sfn-client, which outlives server restarts.
  bool stop_on_server_bye = false;
  // Stay after the server's Bye(finished) and reconnect for its next run; off: run() returns
  // kFinished (sfn-client exits 0).
  bool stay = false;

  // Throws ConfigError naming the offending field.
  void validate() const;
};

enum class ClientState { kConnecting, kRegistering, kIdle, kTraining, kBackoff, kStopping };
std::string_view toString(ClientState state);

// How run() ended.
enum class RunOutcome {
  kStopped,      // the stop flag was set (Bye sent if registered)
  kRejected,     // the server refused the registration
  kServerBye,    // the server said Bye and stop_on_server_bye is set
  kFinished,     // the server said the run is finished (and stay is off)
  kAuthRefused,  // the server refused this client's key (not on its allowlist)
};
std::string_view toString(RunOutcome outcome);

class ClientRunner {
 public:
  // `data` must outlive the runner. `connect` makes each session's transport. Throws
  // ConfigError for invalid options or a missing factory or logger.
  ClientRunner(ClientOptions options, ClientData& data, ClientTransportFactory connect,
               std::shared_ptr<spdlog::logger> log);
  ~ClientRunner();
  ClientRunner(const ClientRunner&) = delete;
  ClientRunner& operator=(const ClientRunner&) = delete;

  // Runs until `stop` becomes true (then sends Bye and returns kStopped), the server
  // rejects the registration (kRejected) or the key (kAuthRefused), the run is finished
  // (kFinished, unless stay) or, with stop_on_server_bye, the server says Bye (kServerBye).
  // Checks `stop` at least every poll_interval, except while waiting for an unfinished
  // training step to end. Throws only for failures that retrying cannot fix: the factory's
  // (bad keys, bad endpoint), DataError when the data does not fit the run's settings.
  [[nodiscard]] RunOutcome run(const std::atomic<bool>& stop);

  // Current state, for tests and status logs (safe to read from any thread).
  ClientState state() const { return state_.load(); }
  // Updates sent since construction (any thread).
  std::uint64_t updatesSent() const { return updates_sent_.load(); }

 private:
  struct SessionEnd;  // how one connection ended (client_runner.cpp)
  struct Session;     // the state of one connection (client_runner.cpp)
  enum class RegisterOutcome {
    kWelcome,
    kRejected,
    kAuthRefused,
    kUnreachable,  // no connection within connect_timeout
    kTimeout,      // connected, but no answer within register_timeout
    kStopped,
  };

  // One connection: new transport, registration, then runRegistered until it is lost.
  SessionEnd runSession(const std::atomic<bool>& stop, std::uint64_t& heartbeat_seq);
  // The task loop of a registered session.
  SessionEnd runRegistered(Session& session, const std::atomic<bool>& stop,
                           std::uint64_t& heartbeat_seq);
  // Sends Register and waits for Welcome or Reject: up to connect_timeout for the
  // connection, then up to register_timeout for the answer.
  RegisterOutcome registerWith(ClientTransport& transport, const std::atomic<bool>& stop);
  void sendRegister(ClientTransport& transport);
  // Takes the run's settings from a Welcome and makes the data ready for them.
  void joinRun(const WelcomeMsg& welcome);
  // Decodes one message from the server and acts on it; returns how the session ended if
  // the message ended it.
  std::optional<SessionEnd> handleMessage(Session& session, const BytesPtr& bytes,
                                          const std::atomic<bool>& stop);
  // Checks a TrainTask and starts training it (or refuses it with a logged reason).
  void startTask(Session& session, TrainTaskMsg&& msg);
  // Sends the Update of a training step that has finished, if any.
  void finishTask(Session& session);
  // Waits for an unfinished training step and drops its result (the session is over).
  void abandonTask(Session& session, const char* why);
  // Heartbeat when due; the session's end if an idle client heard nothing for too long.
  std::optional<SessionEnd> keepAlive(Session& session, std::uint64_t& heartbeat_seq);
  // Says Bye and ends the session on the stop flag.
  SessionEnd stopSession(Session& session);
  // Encodes and sends; failures are logged and returned (the caller decides).
  bool sendMessage(ClientTransport& transport, const Message& message);
  void setState(ClientState next);
  // Sleeps `delay` in poll_interval slices; returns false if stopped meanwhile.
  bool sleepUnlessStopped(std::chrono::milliseconds delay, const std::atomic<bool>& stop) const;

  ClientOptions options_;
  ClientData& data_;
  ClientTransportFactory connect_;
  std::shared_ptr<spdlog::logger> log_;
  // The run joined by the last Welcome; context_ refers to settings_->space and data_.
  std::optional<RunSettings> settings_;
  std::optional<ClientContext> context_;
  std::atomic<ClientState> state_{ClientState::kConnecting};
  std::atomic<std::uint64_t> updates_sent_{0};
};

}  // namespace sfn
