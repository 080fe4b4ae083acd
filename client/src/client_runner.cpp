#include "sfn/client/client_runner.h"
#include "sfn/client/train_task.h"

#include "sfn/core/error.h"
#include "sfn/wire/wire.h"

#include <unistd.h>

#include <algorithm>
#include <exception>
#include <future>
#include <optional>
#include <random>
#include <thread>
#include <utility>

namespace sfn {

namespace {

// sfn::Clock is the round logic's clock interface; the runner's own timing is real time.
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::uint64_t physicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

long long toMs(Steady::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

// A training step on the worker, and what the socket thread needs once it finishes.
struct RunningTask {
  std::uint64_t round = 0;
  std::uint64_t task_id = 0;
  Steady::time_point deadline;  // the server's deadline, as of receipt
  std::future<UpdateMsg> result;
};

}  // namespace

std::string_view toString(ClientState state) {
  switch (state) {
    case ClientState::kConnecting:
      return "connecting";
    case ClientState::kRegistering:
      return "registering";
    case ClientState::kIdle:
      return "idle";
    case ClientState::kTraining:
      return "training";
    case ClientState::kBackoff:
      return "backoff";
    case ClientState::kStopping:
      return "stopping";
  }
  return "unknown";
}

std::string_view toString(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kStopped:
      return "stopped";
    case RunOutcome::kRejected:
      return "rejected";
    case RunOutcome::kServerBye:
      return "server_bye";
    case RunOutcome::kFinished:
      return "finished";
    case RunOutcome::kAuthRefused:
      return "auth_refused";
  }
  return "unknown";
}

void ClientOptions::validate() const {
  if (name.empty()) SFN_THROW(ConfigError, "client name must not be empty");
  if (server.empty()) SFN_THROW(ConfigError, "client ", name, ": server label must not be empty");
  if (device_class.empty()) SFN_THROW(ConfigError, "device class must not be empty");
  if (device.empty()) SFN_THROW(ConfigError, "torch device must not be empty");
  if (poll_interval.count() <= 0) SFN_THROW(ConfigError, "poll_interval must be > 0");
  if (heartbeat_interval.count() <= 0) SFN_THROW(ConfigError, "heartbeat interval must be > 0");
  if (register_timeout.count() <= 0) SFN_THROW(ConfigError, "register_timeout must be > 0");
  if (connect_timeout.count() <= 0) SFN_THROW(ConfigError, "connect_timeout must be > 0");
  if (liveness_timeout.count() < 0) SFN_THROW(ConfigError, "liveness_timeout must be >= 0");
  if (liveness_timeout.count() != 0 && liveness_timeout <= heartbeat_interval)
    SFN_THROW(ConfigError,
              "liveness_timeout must exceed the heartbeat interval (or be 0 to disable)");
  if (backoff_initial.count() <= 0) SFN_THROW(ConfigError, "backoff_initial must be > 0");
  if (backoff_max < backoff_initial)
    SFN_THROW(ConfigError, "backoff_max must be >= backoff_initial");
  if (!(backoff_jitter >= 0.0 && backoff_jitter < 1.0))
    SFN_THROW(ConfigError, "backoff_jitter must be in [0, 1), got ", backoff_jitter);
}

// How one connection ended.
struct ClientRunner::SessionEnd {
  enum class Kind { kStopped, kRejected, kAuthRefused, kFinished, kLost } kind = Kind::kLost;
  bool was_registered = false;  // a Welcome arrived on this connection (resets the backoff)
  bool server_bye = false;      // lost because the server said Bye
  std::string reason;
};

// The state of one connection. The training worker never touches it: it only reads what
// its job owns plus settings_ and data_ (through context_), which no Welcome changes while
// a task runs (tasks are abandoned before registering again).
struct ClientRunner::Session {
  std::unique_ptr<ClientTransport> transport;
  std::optional<RunningTask> running;
  Steady::time_point last_heard;
  Steady::time_point next_heartbeat;
};

ClientRunner::ClientRunner(ClientOptions options, ClientData& data, ClientTransportFactory connect,
                           std::shared_ptr<spdlog::logger> log)
    : options_(std::move(options)),
      data_(data),
      connect_(std::move(connect)),
      log_(std::move(log)) {
  SFN_ENFORCE(log_ != nullptr, ConfigError, "ClientRunner needs a logger");
  SFN_ENFORCE(connect_ != nullptr, ConfigError, "client ", options_.name,
              ": ClientRunner needs a transport factory");
  options_.validate();
  if (options_.cores == 0) options_.cores = std::max(1u, std::thread::hardware_concurrency());
  if (options_.memory_bytes == 0) options_.memory_bytes = physicalMemoryBytes();
}

ClientRunner::~ClientRunner() = default;

void ClientRunner::setState(ClientState next) {
  const ClientState prev = state_.exchange(next);
  if (prev != next)
    log_->debug("client {}: {} -> {}", options_.name, toString(prev), toString(next));
}

bool ClientRunner::sleepUnlessStopped(milliseconds delay, const std::atomic<bool>& stop) const {
  const auto until = Steady::now() + delay;
  while (!stop.load()) {
    const auto now = Steady::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<Steady::duration>(until - now, Steady::duration(options_.poll_interval)));
  }
  return false;
}

bool ClientRunner::sendMessage(ClientTransport& transport, const Message& message) {
  const SendResult r = transport.send(encode(message));
  if (!r.ok())
    log_->warn("client {}: sending {} failed: {} {}", options_.name, messageName(message),
               toString(r.status), r.reason);
  return r.ok();
}

void ClientRunner::sendRegister(ClientTransport& transport) {
  const DataClaim claim = data_.claim();
  RegisterMsg reg;
  reg.client_name = options_.name;
  reg.device_class = options_.device_class;
  reg.cores = options_.cores;
  reg.memory_bytes = options_.memory_bytes;
  reg.samples = claim.samples;
  reg.data = claim.data;
  reg.shard = claim.shard;
  // Before the connection is up the message waits in ZeroMQ's queue; a full queue means
  // the server is unreachable, which the timeout below turns into a reconnect.
  (void)sendMessage(transport, reg);
  if (reg.shard)
    log_->info("client {}: registering with {} (shard {} of {}, device class {})", options_.name,
               options_.server, reg.shard->index, reg.shard->count, reg.device_class);
  else
    log_->info("client {}: registering with {} ({} samples, device class {})", options_.name,
               options_.server, reg.samples, reg.device_class);
}

ClientRunner::RegisterOutcome ClientRunner::registerWith(ClientTransport& transport,
                                                         const std::atomic<bool>& stop) {
  setState(ClientState::kRegistering);
  sendRegister(transport);
  // The answer is timed from when the connection is up: before that the Register waits in
  // the transport's queue, and starting over would only lose this client's place.
  const auto connect_deadline = Steady::now() + options_.connect_timeout;
  std::optional<Steady::time_point> answer_deadline;
  while (!stop.load()) {
    const auto now = Steady::now();
    if (transport.authenticationRefused()) return RegisterOutcome::kAuthRefused;
    if (!answer_deadline && transport.connected())
      answer_deadline = now + options_.register_timeout;
    if (!answer_deadline && now >= connect_deadline) return RegisterOutcome::kUnreachable;
    const auto deadline = answer_deadline ? *answer_deadline : connect_deadline;
    if (now >= deadline) return RegisterOutcome::kTimeout;
    const auto wait = std::min<Steady::duration>(deadline - now, options_.poll_interval);
    std::optional<BytesPtr> bytes = transport.recv(std::chrono::ceil<milliseconds>(wait));
    if (!bytes) continue;
    DecodeResult decoded = decode(*bytes);
    if (!decoded) {
      log_->warn("client {}: dropped a malformed message while registering: {}: {}", options_.name,
                 toString(decoded.error().code), decoded.error().reason);
      continue;
    }
    if (auto* welcome = std::get_if<WelcomeMsg>(&decoded.message())) {
      joinRun(*welcome);
      return RegisterOutcome::kWelcome;
    }
    if (auto* reject = std::get_if<RejectMsg>(&decoded.message())) {
      if (reject->code == RejectCode::kNotRegistered) {
        // The answer to a message sent before this Register (e.g. heartbeats queued while
        // the server was down): transports keep order, so the Register's own answer follows.
        log_->debug("client {}: stale {} ignored while registering", options_.name,
                    toString(reject->code));
        continue;
      }
      log_->error("client {}: registration rejected by the server: {} ({})", options_.name,
                  reject->reason, toString(reject->code));
      return RegisterOutcome::kRejected;
    }
    // Leftovers addressed to a previous registration (a late task, a Bye): not ours now.
    log_->debug("client {}: ignored {} while registering", options_.name,
                messageName(decoded.message()));
  }
  return RegisterOutcome::kStopped;
}

void ClientRunner::joinRun(const WelcomeMsg& welcome) {
  context_.reset();
  settings_ = RunSettings::fromWelcome(welcome);
  data_.prepare(*settings_);
  context_.emplace(ClientContext{settings_->space, data_.dataset(), data_.indices(),
                                 options_.device, options_.compute_clock});
  log_->info(
      "client {}: registered with server '{}' as client id {}: run '{}', SuperNet '{}' "
      "({}x{}x{}, {} classes), training on {} samples",
      options_.name, welcome.server_name, welcome.client_id, settings_->run_id,
      settings_->space.name, settings_->space.in_channels, settings_->space.image_size,
      settings_->space.image_size, settings_->space.num_classes, data_.indices().size());
}

ClientRunner::SessionEnd ClientRunner::runSession(const std::atomic<bool>& stop,
                                                  std::uint64_t& heartbeat_seq) {
  using Kind = SessionEnd::Kind;
  setState(ClientState::kConnecting);
  // A fresh transport per session: after a server restart or a long silence nothing of the
  // old connection (queued messages, half-open handshakes) is worth keeping.
  Session session;
  session.transport = connect_();
  SFN_ENFORCE(session.transport != nullptr, Error, "client ", options_.name,
              ": the transport factory made no transport");
  switch (registerWith(*session.transport, stop)) {
    case RegisterOutcome::kWelcome:
      break;
    case RegisterOutcome::kRejected:
      return {.kind = Kind::kRejected, .reason = "registration rejected"};
    case RegisterOutcome::kAuthRefused:
      return {.kind = Kind::kAuthRefused, .reason = "key refused"};
    case RegisterOutcome::kUnreachable:
      return {.kind = Kind::kLost,
              .reason = "no connection within " + std::to_string(options_.connect_timeout.count()) +
                        " ms"};
    case RegisterOutcome::kTimeout:
      return {.kind = Kind::kLost,
              .reason = "no answer to Register within " +
                        std::to_string(options_.register_timeout.count()) + " ms"};
    case RegisterOutcome::kStopped:
      // Not registered, so there is nobody to say Bye to.
      return {.kind = Kind::kStopped, .reason = "stopped"};
  }
  setState(ClientState::kIdle);
  SessionEnd end = runRegistered(session, stop, heartbeat_seq);
  end.was_registered = true;
  return end;  // the transport's destructor flushes a Bye (bounded by its linger)
}

ClientRunner::SessionEnd ClientRunner::runRegistered(Session& session,
                                                     const std::atomic<bool>& stop,
                                                     std::uint64_t& heartbeat_seq) {
  session.last_heard = Steady::now();
  session.next_heartbeat = session.last_heard + options_.heartbeat_interval;
  while (!stop.load()) {
    finishTask(session);
    if (std::optional<SessionEnd> end = keepAlive(session, heartbeat_seq)) return *end;
    // Short polls while training so the update leaves as soon as the worker is done.
    const auto now = Steady::now();
    Steady::duration wait =
        std::min<Steady::duration>(options_.poll_interval, session.next_heartbeat - now);
    if (session.running) wait = std::min<Steady::duration>(wait, milliseconds(20));
    wait = std::max<Steady::duration>(wait, milliseconds(1));
    std::optional<BytesPtr> bytes = session.transport->recv(std::chrono::ceil<milliseconds>(wait));
    if (!bytes) continue;
    session.last_heard = Steady::now();
    if (std::optional<SessionEnd> end = handleMessage(session, *bytes, stop)) return *end;
  }
  return stopSession(session);
}

ClientRunner::SessionEnd ClientRunner::stopSession(Session& session) {
  abandonTask(session, "stopping");
  setState(ClientState::kStopping);
  (void)sendMessage(*session.transport, ByeMsg{"client stopping"});
  log_->info("client {}: stopped; said Bye", options_.name);
  return {.kind = SessionEnd::Kind::kStopped, .reason = "stopped"};
}

std::optional<ClientRunner::SessionEnd> ClientRunner::keepAlive(Session& session,
                                                                std::uint64_t& heartbeat_seq) {
  const auto now = Steady::now();
  if (now >= session.next_heartbeat) {
    (void)sendMessage(*session.transport, HeartbeatMsg{++heartbeat_seq});
    session.next_heartbeat = now + options_.heartbeat_interval;
  }
  // The server may be silent while training takes long: only an idle client judges it.
  if (!session.running && options_.liveness_timeout.count() > 0 &&
      now - session.last_heard > options_.liveness_timeout)
    return SessionEnd{
        .kind = SessionEnd::Kind::kLost,
        .reason = "server silent for " + std::to_string(toMs(now - session.last_heard)) + " ms"};
  return std::nullopt;
}

// trainLocal cannot be interrupted, and its result is useless once the session is over, so
// waiting here only bounds the worker's lifetime.
void ClientRunner::abandonTask(Session& session, const char* why) {
  if (!session.running) return;
  log_->warn("client {}: round {} task {}: {}; waiting for training to finish, result dropped",
             options_.name, session.running->round, session.running->task_id, why);
  session.running->result.wait();
  session.running.reset();
}

void ClientRunner::finishTask(Session& session) {
  if (!session.running ||
      session.running->result.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
    return;
  RunningTask task = std::move(*session.running);
  session.running.reset();
  setState(ClientState::kIdle);
  try {
    const UpdateMsg update = task.result.get();
    if (Steady::now() > task.deadline)
      log_->warn("client {}: round {} task {}: finished after the server's deadline", options_.name,
                 task.round, task.task_id);
    if (sendMessage(*session.transport, update)) {
      updates_sent_.fetch_add(1);
      log_->info("client {}: round {} task {}: sent update ({} samples, loss {:.4f}, {:.2f} s)",
                 options_.name, task.round, task.task_id, update.samples, update.mean_loss,
                 update.compute_seconds);
    }
  } catch (const std::exception& e) {
    // A failed step costs the server one update, not the client its life.
    log_->error("client {}: round {} task {}: training failed: {}", options_.name, task.round,
                task.task_id, e.what());
  }
}

void ClientRunner::startTask(Session& session, TrainTaskMsg&& msg) {
  if (session.running) {
    log_->warn("client {}: round {} task {}: refused, still training round {} task {}",
               options_.name, msg.round, msg.task_id, session.running->round,
               session.running->task_id);
    return;
  }
  const std::string subnet = msg.subnet;
  std::optional<TrainTask> task;
  try {
    task = TrainTask::accept(std::move(msg), settings_->space, options_.device);
  } catch (const ConfigError& e) {
    log_->error("client {}: bad task ({}); skipped", options_.name, e.what());
    return;
  }
  log_->info("client {}: round {} task {}: training {} for {} epoch(s) on {} samples",
             options_.name, task->round, task->task_id, subnet, task->options.epochs,
             data_.indices().size());
  RunningTask rt;
  rt.round = task->round;
  rt.task_id = task->task_id;
  rt.deadline = session.last_heard + milliseconds(task->deadline_ms);
  // The task's tensors are views into the received message: moving them into the job keeps
  // the message alive exactly until the job is done.
  auto job = [this, task = std::move(*task)]() { return runTrainTask(task, *context_); };
  rt.result = options_.train_executor ? options_.train_executor(std::move(job))
                                      : std::async(std::launch::async, std::move(job));
  session.running = std::move(rt);
  setState(ClientState::kTraining);
}

std::optional<ClientRunner::SessionEnd> ClientRunner::handleMessage(Session& session,
                                                                    const BytesPtr& bytes,
                                                                    const std::atomic<bool>& stop) {
  using Kind = SessionEnd::Kind;
  DecodeResult decoded = decode(bytes);
  if (!decoded) {
    log_->warn("client {}: dropped a malformed message: {}: {}", options_.name,
               toString(decoded.error().code), decoded.error().reason);
    return std::nullopt;
  }
  Message& msg = decoded.message();
  if (auto* task = std::get_if<TrainTaskMsg>(&msg)) {
    startTask(session, std::move(*task));
  } else if (auto* bye = std::get_if<ByeMsg>(&msg)) {
    log_->info("client {}: server said Bye ({}): {}", options_.name, toString(bye->code),
               bye->reason);
    abandonTask(session, "server said Bye");
    const bool finished = bye->code == ByeCode::kFinished && !options_.stay;
    return SessionEnd{.kind = finished ? Kind::kFinished : Kind::kLost,
                      .server_bye = true,
                      .reason = "server said Bye (" + bye->reason + ")"};
  } else if (auto* reject = std::get_if<RejectMsg>(&msg)) {
    if (reject->code != RejectCode::kNotRegistered) {
      log_->warn("client {}: unexpected Reject {} ({}) while registered; ignored", options_.name,
                 toString(reject->code), reject->reason);
      return std::nullopt;
    }
    // After a restart the server no longer knows us and answers anything with a Reject;
    // registering again on the same transport is all it takes.
    log_->warn("client {}: the server does not know this client ({}); registering again",
               options_.name, reject->reason);
    abandonTask(session, "server forgot this client");
    switch (registerWith(*session.transport, stop)) {
      case RegisterOutcome::kWelcome:
        setState(ClientState::kIdle);
        break;
      case RegisterOutcome::kRejected:
        return SessionEnd{.kind = Kind::kRejected, .reason = "registration rejected"};
      case RegisterOutcome::kAuthRefused:
        return SessionEnd{.kind = Kind::kAuthRefused, .reason = "key refused"};
      case RegisterOutcome::kUnreachable:
      case RegisterOutcome::kTimeout:
        return SessionEnd{.kind = Kind::kLost, .reason = "no answer to Register"};
      case RegisterOutcome::kStopped:
        break;  // the loop's stop check says Bye
    }
  } else if (std::holds_alternative<WelcomeMsg>(msg)) {
    log_->debug("client {}: duplicate Welcome ignored", options_.name);
  } else {
    log_->warn("client {}: unexpected {} from the server; ignored", options_.name,
               messageName(msg));
  }
  return std::nullopt;
}

RunOutcome ClientRunner::run(const std::atomic<bool>& stop) {
  std::mt19937_64 rng(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}());
  std::uniform_real_distribution<double> jitter(1.0 - options_.backoff_jitter,
                                                1.0 + options_.backoff_jitter);
  std::uint64_t heartbeat_seq = 0;  // continues across sessions: the server sees one stream
  milliseconds delay = options_.backoff_initial;
  while (!stop.load()) {
    SessionEnd end = runSession(stop, heartbeat_seq);
    if (end.kind == SessionEnd::Kind::kStopped) break;
    if (end.kind == SessionEnd::Kind::kRejected) {
      setState(ClientState::kStopping);
      return RunOutcome::kRejected;
    }
    if (end.kind == SessionEnd::Kind::kAuthRefused) {
      setState(ClientState::kStopping);
      log_->error("client {}: refused by the server: this client's key is not on its allowlist",
                  options_.name);
      return RunOutcome::kAuthRefused;
    }
    if (end.kind == SessionEnd::Kind::kFinished) {
      setState(ClientState::kStopping);
      log_->info("client {}: the server finished its run; exiting", options_.name);
      return RunOutcome::kFinished;
    }
    if (end.server_bye && options_.stop_on_server_bye) {
      setState(ClientState::kStopping);
      log_->info("client {}: {}; stopping", options_.name, end.reason);
      return RunOutcome::kServerBye;
    }
    // A session that got as far as a Welcome proves the server was healthy: start the
    // backoff over. Consecutive failures double it up to the cap.
    if (end.was_registered) delay = options_.backoff_initial;
    setState(ClientState::kBackoff);
    const auto sleep =
        milliseconds(static_cast<long long>(static_cast<double>(delay.count()) * jitter(rng)));
    log_->warn("client {}: connection lost ({}); reconnecting in {} ms", options_.name, end.reason,
               sleep.count());
    if (!sleepUnlessStopped(sleep, stop)) break;
    delay = std::min(delay * 2, options_.backoff_max);
  }
  setState(ClientState::kStopping);
  return RunOutcome::kStopped;
}

}  // namespace sfn
