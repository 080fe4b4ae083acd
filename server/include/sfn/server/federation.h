// The federation loop, written once for sfn-server and sfn-sim: run a round, record its
// metrics, checkpoint every checkpoint.every rounds, until run.rounds are done or a stop is
// requested. What differs between the two binaries is an option, not a second loop:
// sfn-server waits for `min_clients` before each round; sfn-sim registers its whole fleet
// up front and waits for nobody (min_clients 0).
#pragma once

#include "sfn/server/coordinator.h"
#include "sfn/server/round_metrics.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"

#include <spdlog/logger.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace sfn {

struct FederationOptions {
  std::int64_t rounds = 0;   // run.rounds: the loop ends when coordinator.round() reaches it
  int checkpoint_every = 0;  // checkpoint.every (0: only the final checkpoint)
  // Before each round, serve registrations until this many clients are available (0: do
  // not wait). The wait is cut into slices of `wait_slice_s` so a stop is seen promptly.
  std::size_t min_clients = 0;
  double wait_slice_s = 1.0;
  double wait_log_s = 5.0;  // "waiting for N clients (have M)" this often while waiting
  // Called on the loop's thread right before each round and after its metrics are
  // recorded (progress displays). Either may be empty.
  std::function<void()> before_round;
  std::function<void(const RoundMetrics&)> after_round;
  // Called on the loop's thread after each slice of waiting for clients (about every
  // wait_slice_s), e.g. to publish who has registered so far. May be empty.
  std::function<void()> on_wait;
  std::shared_ptr<spdlog::logger> log;  // checkpoint lines; null: spdlog's default logger

  // rounds and checkpoint.every from `config`; no waiting for clients.
  static FederationOptions from(const RunConfig& config);
};

enum class FederationEnd {
  kFinished,  // all rounds done
  kStopped,   // the stop flag was set before the last round
};
std::string_view toString(FederationEnd end);

struct FederationResult {
  FederationEnd end = FederationEnd::kFinished;
  std::string checkpoint;  // the final checkpoint's path
};

// Runs the federation from coordinator.round() on:
//   - a starting checkpoint when no round has run yet and checkpoint.every > 0, so every
//     round's change can be audited against the SubNets it trained (round 0 included);
//   - per round: wait for clients (if asked), runRound(), recorder.appendMetrics(), and a
//     checkpoint every `checkpoint_every` rounds;
//   - a final checkpoint, whether the rounds finished or `stop` was set.
// `stop` is polled before each round and between client waits; a round in progress runs
// to its end (its own deadline bounds it). Throws what the Coordinator or the recorder
// throw; no checkpoint is written after such an error.
FederationResult runFederation(Coordinator& coordinator, RunRecorder& recorder,
                               const FederationOptions& options, const std::atomic<bool>& stop);

}  // namespace sfn
