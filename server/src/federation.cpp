#include "sfn/server/federation.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace sfn {

FederationOptions FederationOptions::from(const RunConfig& config) {
  FederationOptions o;
  o.rounds = config.rounds;
  o.checkpoint_every = config.checkpoint_every;
  return o;
}

std::string_view toString(FederationEnd end) {
  return end == FederationEnd::kStopped ? "stopped" : "finished";
}

namespace {

// Serves registrations until enough clients are available; false if `stop` came first.
// Says so every few seconds: a server waiting for clients must not look hung.
bool waitForClients(Coordinator& coordinator, const FederationOptions& options,
                    const std::atomic<bool>& stop, spdlog::logger& log) {
  if (options.min_clients == 0) return true;
  using Steady = std::chrono::steady_clock;
  const auto start = Steady::now();
  auto next_log = start;
  // Only a wait that was logged is reported as over (not every round's instant check).
  const auto enough = [&] {
    if (next_log != start)
      log.info("round {}: {} clients available after {:.1f} s of waiting", coordinator.round(),
               coordinator.availableClients(),
               std::chrono::duration<double>(Steady::now() - start).count());
    return true;
  };
  while (!stop.load(std::memory_order_relaxed)) {
    if (coordinator.availableClients() >= options.min_clients) return enough();
    if (Steady::now() >= next_log) {
      log.info("round {}: waiting for {} clients (have {})", coordinator.round(),
               options.min_clients, coordinator.availableClients());
      next_log = Steady::now() +
                 std::chrono::milliseconds(static_cast<long long>(options.wait_log_s * 1000.0));
    }
    const bool have = coordinator.waitForClients(options.min_clients, options.wait_slice_s);
    if (options.on_wait) options.on_wait();
    if (have) return enough();
  }
  return false;
}

bool checkpointDue(const Coordinator& coordinator, const FederationOptions& options) {
  return options.checkpoint_every > 0 && coordinator.round() % options.checkpoint_every == 0;
}

}  // namespace

FederationResult runFederation(Coordinator& coordinator, RunRecorder& recorder,
                               const FederationOptions& options, const std::atomic<bool>& stop) {
  const auto log = options.log ? options.log : spdlog::default_logger();
  // Writing a checkpoint draws no random numbers: with or without it, training is the same.
  if (options.checkpoint_every > 0 && coordinator.round() == 0 && coordinator.history().empty())
    log->info("checkpoint {}", recorder.checkpoint(coordinator));
  while (coordinator.round() < options.rounds && !stop.load(std::memory_order_relaxed)) {
    if (!waitForClients(coordinator, options, stop, *log)) break;
    if (options.before_round) options.before_round();
    const RoundMetrics metrics = coordinator.runRound();
    recorder.appendMetrics(metrics);
    if (options.after_round) options.after_round(metrics);
    if (checkpointDue(coordinator, options))
      log->info("checkpoint {}", recorder.checkpoint(coordinator));
  }
  FederationResult result;
  result.end =
      coordinator.round() < options.rounds ? FederationEnd::kStopped : FederationEnd::kFinished;
  result.checkpoint = recorder.checkpoint(coordinator);
  return result;
}

}  // namespace sfn
