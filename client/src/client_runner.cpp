#include "sfn/client/client_runner.h"
#include "sfn/client/train_task.h"

#include "sfn/core/error.h"
#include "sfn/train/local_trainer.h"
#include "sfn/model/subnet_config.h"
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

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::uint64_t physicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

long long toMs(Clock::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

// The Coordinator's answer to any message from a peer it does not know (sfn::Coordinator::
// handle). The protocol has no reject codes, so this reason text is what tells "you were
// forgotten, register again" apart from a refused registration.
constexpr std::string_view kNotRegisteredReason = "not registered";

// What a training step needs to become an Update once the worker finishes.
struct RunningTask {
  std::uint64_t round = 0;
  std::uint64_t task_id = 0;
  Clock::time_point deadline;  // the server's deadline, as of receipt
  std::future<TrainResult> result;
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

void ClientOptions::validate() const {
  SFN_ENFORCE(!name.empty(), ConfigError, "client name must not be empty");
  SFN_ENFORCE(!device_class.empty(), ConfigError, "device class must not be empty");
  SFN_ENFORCE(!device.empty(), ConfigError, "torch device must not be empty");
  SFN_ENFORCE(poll_interval.count() > 0, ConfigError, "poll_interval must be > 0");
  SFN_ENFORCE(heartbeat_interval.count() > 0, ConfigError, "heartbeat interval must be > 0");
  SFN_ENFORCE(register_timeout.count() > 0, ConfigError, "register_timeout must be > 0");
  SFN_ENFORCE(liveness_timeout.count() >= 0, ConfigError, "liveness_timeout must be >= 0");
  SFN_ENFORCE(liveness_timeout.count() == 0 || liveness_timeout > heartbeat_interval, ConfigError,
              "liveness_timeout must exceed the heartbeat interval (or be 0 to disable)");
  SFN_ENFORCE(backoff_initial.count() > 0, ConfigError, "backoff_initial must be > 0");
  SFN_ENFORCE(backoff_max >= backoff_initial, ConfigError,
              "backoff_max must be >= backoff_initial");
  SFN_ENFORCE(backoff_jitter >= 0.0 && backoff_jitter < 1.0, ConfigError,
              "backoff_jitter must be in [0, 1), got ", backoff_jitter);
  transport.validate();
}

// How one connection ended.
struct ClientRunner::SessionEnd {
  enum class Kind { kStopped, kRejected, kLost } kind = Kind::kLost;
  bool was_registered = false;  // a Welcome arrived on this connection (resets the backoff)
  bool server_bye = false;      // lost because the server said Bye
  std::string reason;
};

ClientRunner::ClientRunner(ClientOptions options, const DesignSpace& space, const Dataset& data,
                           IndexList local_indices, std::shared_ptr<spdlog::logger> log,
                           std::shared_ptr<zmq::context_t> context)
    : options_(std::move(options)),
      space_(space),
      data_(data),
      indices_(std::move(local_indices)),
      log_(std::move(log)),
      context_(std::move(context)) {
  SFN_ENFORCE(log_ != nullptr, ConfigError, "ClientRunner needs a logger");
  options_.validate();
  SFN_ENFORCE(!indices_.empty(), ConfigError, "client ", options_.name, " has no local samples");
  if (options_.cores == 0) options_.cores = std::max(1u, std::thread::hardware_concurrency());
  if (options_.memory_bytes == 0) options_.memory_bytes = physicalMemoryBytes();
  // One context for every reconnect: sockets come and go, the I/O thread stays.
  if (!context_) context_ = makeZmqContext();
}

ClientRunner::~ClientRunner() = default;

void ClientRunner::setState(ClientState next) {
  const ClientState prev = state_.exchange(next);
  if (prev != next)
    log_->debug("client {}: {} -> {}", options_.name, toString(prev), toString(next));
}

bool ClientRunner::sleepUnlessStopped(milliseconds delay, const std::atomic<bool>& stop) const {
  const auto until = Clock::now() + delay;
  while (!stop.load()) {
    const auto now = Clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - now, Clock::duration(options_.poll_interval)));
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

ClientRunner::RegisterOutcome ClientRunner::registerWith(ClientTransport& transport,
                                                         const std::atomic<bool>& stop) {
  setState(ClientState::kRegistering);
  RegisterMsg reg;
  reg.client_name = options_.name;
  reg.device_class = options_.device_class;
  reg.cores = options_.cores;
  reg.memory_bytes = options_.memory_bytes;
  reg.samples = indices_.size();
  // Before the connection is up the message waits in ZeroMQ's queue; a full queue means
  // the server is unreachable, which the timeout below turns into a reconnect.
  (void)sendMessage(transport, reg);
  log_->info("client {}: registering with {} ({} samples, device class {})", options_.name,
             options_.transport.server_endpoint, reg.samples, reg.device_class);

  const auto deadline = Clock::now() + options_.register_timeout;
  while (!stop.load()) {
    const auto now = Clock::now();
    if (now >= deadline) return RegisterOutcome::kTimeout;
    const auto wait = std::min<Clock::duration>(deadline - now, options_.poll_interval);
    std::optional<BytesPtr> bytes = transport.recv(std::chrono::ceil<milliseconds>(wait));
    if (!bytes) continue;
    DecodeResult decoded = decode(*bytes);
    if (!decoded) {
      log_->warn("client {}: dropped a malformed message while registering: {}: {}", options_.name,
                 toString(decoded.error().code), decoded.error().reason);
      continue;
    }
    if (auto* welcome = std::get_if<WelcomeMsg>(&decoded.message())) {
      log_->info("client {}: registered with server '{}' as client id {}", options_.name,
                 welcome->server_name, welcome->client_id);
      return RegisterOutcome::kWelcome;
    }
    if (auto* reject = std::get_if<RejectMsg>(&decoded.message())) {
      if (reject->reason == kNotRegisteredReason) {
        // The answer to a message sent before this Register (e.g. heartbeats queued while
        // the server was down): ZeroMQ keeps order, so the Register's own answer follows.
        log_->debug("client {}: stale '{}' ignored while registering", options_.name,
                    reject->reason);
        continue;
      }
      log_->error("client {}: registration rejected by the server: {}", options_.name,
                  reject->reason);
      return RegisterOutcome::kRejected;
    }
    // Leftovers addressed to a previous registration (a late task, a Bye): not ours now.
    log_->debug("client {}: ignored {} while registering", options_.name,
                messageName(decoded.message()));
  }
  return RegisterOutcome::kStopped;
}

ClientRunner::SessionEnd ClientRunner::runSession(const std::atomic<bool>& stop,
                                                  std::uint64_t& heartbeat_seq) {
  using Kind = SessionEnd::Kind;
  setState(ClientState::kConnecting);
  if (options_.transport.insecure)
    log_->warn(
        "client {}: *** --insecure: traffic to {} is NOT encrypted and the server is NOT "
        "authenticated; local development only ***",
        options_.name, options_.transport.server_endpoint);
  // A fresh socket per session: after a server restart or a long silence nothing of the old
  // connection (queued messages, half-open handshakes) is worth keeping.
  std::unique_ptr<ZmqClientTransport> transport = makeZmqClient(options_.transport, context_);

  SessionEnd end;
  switch (registerWith(*transport, stop)) {
    case RegisterOutcome::kWelcome:
      end.was_registered = true;
      break;
    case RegisterOutcome::kRejected:
      return {.kind = Kind::kRejected, .reason = "registration rejected"};
    case RegisterOutcome::kTimeout:
      return {.kind = Kind::kLost,
              .reason = "no answer to Register within " +
                        std::to_string(options_.register_timeout.count()) + " ms"};
    case RegisterOutcome::kStopped:
      // Not registered, so there is nobody to say Bye to.
      return {.kind = Kind::kStopped, .reason = "stopped"};
  }
  setState(ClientState::kIdle);

  // The training worker only reads space_, data_ and indices_ (all outlive it) plus what
  // the lambda owns; it never touches the socket.
  std::optional<RunningTask> running;
  auto last_heard = Clock::now();
  auto next_heartbeat = last_heard + options_.heartbeat_interval;

  // Waits for an unfinished training step: trainLocal cannot be interrupted, and its result
  // is useless once the session is over, so this only bounds the worker's lifetime.
  auto abandonTask = [&](const char* why) {
    if (!running) return;
    log_->warn("client {}: round {} task {}: {}; waiting for training to finish, result dropped",
               options_.name, running->round, running->task_id, why);
    running->result.wait();
    running.reset();
  };

  while (true) {
    if (stop.load()) {
      abandonTask("stopping");
      setState(ClientState::kStopping);
      (void)sendMessage(*transport, ByeMsg{"client stopping"});
      log_->info("client {}: stopped; said Bye", options_.name);
      end.kind = Kind::kStopped;
      end.reason = "stopped";
      return end;  // the transport's destructor flushes the Bye (bounded by its linger)
    }

    auto now = Clock::now();
    if (running && running->result.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      RunningTask task = std::move(*running);
      running.reset();
      setState(ClientState::kIdle);
      try {
        TrainResult r = task.result.get();
        if (Clock::now() > task.deadline)
          log_->warn("client {}: round {} task {}: finished after the server's deadline",
                     options_.name, task.round, task.task_id);
        UpdateMsg update;
        update.round = task.round;
        update.task_id = task.task_id;
        update.samples = static_cast<std::uint64_t>(r.samples);
        update.tensors = std::move(r.slice);
        update.mean_loss = r.mean_loss;
        update.compute_seconds = r.compute_seconds;
        if (sendMessage(*transport, update)) {
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
      now = Clock::now();
    }

    if (now >= next_heartbeat) {
      (void)sendMessage(*transport, HeartbeatMsg{++heartbeat_seq});
      next_heartbeat = now + options_.heartbeat_interval;
    }
    // The server may be silent while training takes long: only an idle client judges it.
    if (!running && options_.liveness_timeout.count() > 0 &&
        now - last_heard > options_.liveness_timeout) {
      end.reason = "server silent for " + std::to_string(toMs(now - last_heard)) + " ms";
      return end;
    }

    // Short polls while training so the update leaves as soon as the worker is done.
    Clock::duration wait = std::min<Clock::duration>(options_.poll_interval, next_heartbeat - now);
    if (running) wait = std::min<Clock::duration>(wait, milliseconds(20));
    wait = std::max<Clock::duration>(wait, milliseconds(1));
    std::optional<BytesPtr> bytes = transport->recv(std::chrono::ceil<milliseconds>(wait));
    if (!bytes) continue;
    last_heard = Clock::now();
    DecodeResult decoded = decode(*bytes);
    if (!decoded) {
      log_->warn("client {}: dropped a malformed message: {}: {}", options_.name,
                 toString(decoded.error().code), decoded.error().reason);
      continue;
    }
    Message& msg = decoded.message();

    if (auto* task = std::get_if<TrainTaskMsg>(&msg)) {
      if (running) {
        log_->warn("client {}: round {} task {}: refused, still training round {} task {}",
                   options_.name, task->round, task->task_id, running->round, running->task_id);
        continue;
      }
      SubNetConfig config;
      TrainOptions topts;
      try {
        config = SubNetConfig::parse(task->subnet, space_);
        topts = trainOptionsFrom(task->hyper, options_.device);
      } catch (const ConfigError& e) {
        log_->error("client {}: round {} task {}: bad task ({}); skipped", options_.name,
                    task->round, task->task_id, e.what());
        continue;
      }
      log_->info("client {}: round {} task {}: training {} for {} epoch(s) on {} samples",
                 options_.name, task->round, task->task_id, task->subnet, topts.epochs,
                 indices_.size());
      RunningTask rt;
      rt.round = task->round;
      rt.task_id = task->task_id;
      rt.deadline = last_heard + milliseconds(task->deadline_ms);
      // The tensors are views into the received message; moving them into the worker keeps
      // the message alive exactly until training has copied them into its module.
      auto job = [this, config = std::move(config), topts = std::move(topts),
                  init = std::move(task->tensors)]() {
        return trainLocal(space_, config, init, data_, indices_, topts);
      };
      rt.result = options_.train_executor ? options_.train_executor(std::move(job))
                                          : std::async(std::launch::async, std::move(job));
      running = std::move(rt);
      setState(ClientState::kTraining);
    } else if (auto* bye = std::get_if<ByeMsg>(&msg)) {
      log_->info("client {}: server said Bye: {}", options_.name, bye->reason);
      abandonTask("server said Bye");
      end.reason = "server said Bye (" + bye->reason + ")";
      end.server_bye = true;
      return end;
    } else if (auto* reject = std::get_if<RejectMsg>(&msg)) {
      // After a restart the server no longer knows us and answers anything with a Reject;
      // registering again on the same socket is all it takes.
      log_->warn("client {}: server rejected a message ({}); registering again", options_.name,
                 reject->reason);
      abandonTask("server forgot this client");
      switch (registerWith(*transport, stop)) {
        case RegisterOutcome::kWelcome:
          setState(ClientState::kIdle);
          break;
        case RegisterOutcome::kRejected:
          end.kind = Kind::kRejected;
          end.reason = "registration rejected";
          return end;
        case RegisterOutcome::kTimeout:
          end.reason = "no answer to Register";
          return end;
        case RegisterOutcome::kStopped:
          break;  // the loop's stop check says Bye
      }
    } else if (std::holds_alternative<WelcomeMsg>(msg)) {
      log_->debug("client {}: duplicate Welcome ignored", options_.name);
    } else {
      log_->warn("client {}: unexpected {} from the server; ignored", options_.name,
                 messageName(msg));
    }
  }
}

int ClientRunner::run(const std::atomic<bool>& stop) {
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
      return kExitRejected;
    }
    if (end.server_bye && options_.stop_on_server_bye) {
      setState(ClientState::kStopping);
      log_->info("client {}: {}; stopping", options_.name, end.reason);
      return kExitServerBye;
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
  return kExitOk;
}

}  // namespace sfn
