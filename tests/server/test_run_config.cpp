// Run configuration values that used to be accepted but wrong (issue 13, item 7): integers
// beyond their type, thread counts beyond the machine, log levels and devices that do not
// exist, and settings that contradict each other. Each is a ConfigError naming the key.
#include "sfn/core/error.h"
#include "sfn/server/run_config.h"

#include <torch/cuda.h>

#include <doctest/doctest.h>
#include "error_text.h"

#include <string>
#include <utility>
#include <vector>

using sfn::ConfigError;
using sfn::RunConfig;

namespace {

// The message of the ConfigError `f` throws, or "(no error)".
template <typename F>
std::string errorOf(F&& f) {
  return sfn::test::errorText<ConfigError>(std::forward<F>(f));
}

// The message of parsing an empty config with these overrides.
std::string overrideError(std::vector<std::string> overrides) {
  return errorOf([&] { (void)RunConfig::parse("", "r.toml", ".", overrides); });
}

}  // namespace

TEST_CASE("run config: an integer beyond its key's type is refused by name, never wrapped") {
  // The three: 2^32 + 2 ran as 2, 2^32 + 1 as 1.
  CHECK(overrideError({"server.min_clients=4294967298"}) ==
        "r.toml: 'server.min_clients' is out of range (4294967298): must be in "
        "[-2147483648, 2147483647]");
  CHECK(overrideError({"round.clients_per_round=4294967297"}) ==
        "r.toml: 'round.clients_per_round' is out of range (4294967297): must be in "
        "[-2147483648, 2147483647]");
  CHECK(overrideError({"train.epochs=4294967297"}) ==
        "r.toml: 'train.epochs' is out of range (4294967297): must be in "
        "[-2147483648, 2147483647]");
  // In the file as on the command line; an unsigned key refuses a negative value.
  CHECK(errorOf([] {
          (void)RunConfig::parse("[train]\nepochs = 4294967297\n", "f.toml");
        }).find("'train.epochs' is out of range (4294967297)") != std::string::npos);
  CHECK(overrideError({"run.seed=-1"}) ==
        "r.toml: 'run.seed' is out of range (-1): must be in [0, 18446744073709551615]");
  // Beyond 64 bits TOML has no integer at all: still an out-of-range error, not a string.
  CHECK(overrideError({"run.rounds=99999999999999999999"})
            .find("'run.rounds' is out of range (99999999999999999999)") != std::string::npos);
  // In range, the same keys read as given.
  const RunConfig ok = RunConfig::parse(
      "", "r.toml", ".", {"server.min_clients=3", "round.clients_per_round=7", "train.epochs=2"});
  CHECK(ok.server.min_clients == 3);
  CHECK(ok.coordinator.clients_per_round == 7);
  CHECK(ok.coordinator.train.epochs == 2);
}

TEST_CASE("run config: run.log_level takes spdlog's level names only") {
  // "verbose" used to turn logging off without a word.
  CHECK(overrideError({"run.log_level=verbose"}) ==
        "run.log_level must be one of trace, debug, info, warning, error, critical, off (got "
        "\"verbose\")");
  CHECK(overrideError({"run.log_level=\"\""}).find("run.log_level must be one of") !=
        std::string::npos);
  for (const char* level : {"trace", "debug", "info", "warn", "warning", "error", "off"}) {
    CAPTURE(level);
    CHECK(RunConfig::parse("", "r.toml", ".", {std::string("run.log_level=") + level}).log_level ==
          level);
  }
}

TEST_CASE("run config: run.device must be a device this LibTorch build can use") {
  CHECK(overrideError({"run.device=gpu"}) ==
        "run.device \"gpu\" is not a torch device (\"cpu\", \"cuda\" or \"cuda:N\")");
  CHECK(overrideError({"run.device=\"meta\""}) ==
        "run.device \"meta\": sfn runs on \"cpu\" or a CUDA device");
  // One line naming the key, not torch's pages from the first training step.
  const std::string cuda = overrideError({"run.device=\"cuda:0\""});
  if (torch::cuda::is_available()) {
    CHECK(cuda == "(no error)");
  } else {
    CHECK(cuda ==
          "run.device \"cuda:0\": this LibTorch build has no CUDA or sees no CUDA device; use "
          "\"cpu\"");
    CHECK(cuda.find('\n') == std::string::npos);
  }
  // No machine has that many: refused on CUDA builds too.
  CHECK(overrideError({"run.device=\"cuda:4096\""}).rfind("run.device \"cuda:4096\"", 0) == 0);
  CHECK(RunConfig::parse("", "r.toml", ".", {"run.device=cpu"}).device == "cpu");
}

TEST_CASE("run config: thread counts must fit the machine's cores") {
  const RunConfig c =
      RunConfig::parse("", "r.toml", ".", {"run.torch_threads=10000", "simulation.workers=4"});
  // sfn-server: 10,000 torch threads started ~170 threads a second and never listened.
  CHECK(errorOf([&] { c.checkServerStart(2); }) ==
        "run.torch_threads = 10000 exceeds the 2 cores of this machine");
  CHECK(errorOf([&] { c.checkServerStart(10000); }) == "(no error)");
  // sfn-sim and its --connect fleet: workers x torch threads (default 2 threads each).
  CHECK(errorOf([&] { c.checkFleetStart(7); }) ==
        "simulation.workers x simulation.torch_threads = 8 exceeds the 7 cores of this machine");
  CHECK(errorOf([&] { c.checkFleetStart(8); }) == "(no error)");
  CHECK(errorOf([&] { c.checkSimulationStart(7); }).find("= 8 exceeds the 7 cores") !=
        std::string::npos);
  // A machine that reports no core count (0) counts as one core.
  CHECK(errorOf([&] {
          RunConfig::parse("", "r.toml", ".", {"run.torch_threads=2"}).checkServerStart(0);
        }) == "run.torch_threads = 2 exceeds the 1 cores of this machine");
}

TEST_CASE("run config: settings that contradict each other are refused at start-up") {
  // More clients per round than the simulation has: every round was abandoned, exit 0.
  const RunConfig c = RunConfig::parse(
      "", "r.toml", ".",
      {"simulation.clients=4", "round.clients_per_round=6", "simulation.torch_threads=1"});
  CHECK(errorOf([&] { c.checkSimulationStart(64); }) ==
        "round.clients_per_round = 6 exceeds simulation.clients = 4: no round could select "
        "that many clients");
  // A fleet of real clients (--connect) does not run rounds itself.
  CHECK(errorOf([&] { c.checkFleetStart(64); }) == "(no error)");
  const RunConfig equal = RunConfig::parse(
      "", "r.toml", ".",
      {"simulation.clients=6", "round.clients_per_round=6", "simulation.torch_threads=1"});
  CHECK(errorOf([&] { equal.checkSimulationStart(64); }) == "(no error)");
  // A quorum above clients_per_round could never be met.
  CHECK(overrideError({"round.clients_per_round=4", "round.quorum=5"}) ==
        "round.quorum must be in [0, clients_per_round] (got 5)");
  CHECK(RunConfig::parse("", "r.toml", ".", {"round.clients_per_round=4", "round.quorum=4"})
            .coordinator.quorum == 4);
  // server.min_clients below 1 (what --min-clients -5 used to set, silently ignored).
  CHECK(overrideError({"server.min_clients=-5"}) == "server.min_clients must be >= 1 (got -5)");
}
