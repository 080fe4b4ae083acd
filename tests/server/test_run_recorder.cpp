// A run folder keeps its history (issue 13, item 6): nothing in it is truncated or
// repointed unless a run continues it. A new run refuses a folder that holds one; a failed
// resume leaves metrics and `latest` as they were; a resume trims the metrics to the
// checkpoint's round, so every round appears exactly once.
#include "sfn/core/clock.h"
#include "sfn/core/error.h"
#include "sfn/net/inproc_transport.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/run_recorder.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <doctest/doctest.h>
#include "error_text.h"
#include "file_bytes.h"
#include "temp_dir.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace sfn;

namespace {

// A Coordinator whose rounds are recorded as runFederation records them, without training:
// a run folder needs only the rows, the history and the checkpoints.
struct Federation {
  InprocNetwork network;
  std::unique_ptr<ServerTransport> transport = network.server();
  VirtualClock clock;
  Coordinator coord;

  explicit Federation(const std::string& preset = "tiny")
      : coord(CoordinatorOptions{}, SuperNet(DesignSpace::preset(preset), 1), *transport, clock,
              nullptr, std::make_shared<spdlog::logger>("quiet")) {}  // no sinks: silent

  // Rounds up to `rounds`, each appended to the metrics and checkpointed, as runFederation
  // does with checkpoint.every = 1 (the history grows as a round would grow it).
  void run(RunRecorder& recorder, std::int64_t rounds) {
    while (coord.round() < rounds) {
      CoordinatorSnapshot snap = coord.snapshot();
      RoundMetrics m;
      m.round = snap.next_round;
      m.outcome = RoundOutcome::kCompleted;
      m.accepted = 2;
      m.train_loss = 1.0 / static_cast<double>(3 + m.round);  // not a short decimal
      snap.history.push_back(m);
      ++snap.next_round;
      coord.restore(snap);
      recorder.appendMetrics(m);
      (void)recorder.checkpoint(coord);
    }
  }
};

RunRecorder newRecorder(const fs::path& dir) {
  return RunRecorder(dir.string(), {}, 10, nlohmann::json::object());
}

RunRecorder resumingRecorder(const fs::path& dir) {
  return RunRecorder(dir.string(), {}, 10, nlohmann::json::object(), RunStart::kResume);
}

// The round numbers of metrics.jsonl, in file order.
std::vector<std::int64_t> roundsIn(const fs::path& dir) {
  std::vector<std::int64_t> out;
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line).at("round").get<std::int64_t>());
  return out;
}

std::vector<std::string> linesOf(const fs::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The bytes of the files a run folder's history is made of.
std::map<std::string, std::vector<std::uint8_t>> history(const fs::path& dir) {
  std::map<std::string, std::vector<std::uint8_t>> out;
  for (const char* f : {"metrics.jsonl", "metrics.csv", "checkpoints/latest"})
    out[f] = test::readBytes(dir / f);
  return out;
}

// A folder that went through `rounds` rounds, checkpointed after each.
void makeRun(const fs::path& dir, std::int64_t rounds) {
  Federation f;
  RunRecorder recorder = newRecorder(dir);
  f.run(recorder, rounds);
}

}  // namespace

TEST_CASE("run folder: a new run refuses a folder that holds one and leaves it as it was") {
  test::TempDir tmp;
  const fs::path dir = tmp.file("run");
  CHECK_FALSE(RunRecorder::heldRun(dir.string()).has_value());  // missing
  makeRun(dir, 3);
  REQUIRE(roundsIn(dir) == std::vector<std::int64_t>{0, 1, 2});
  CHECK(*RunRecorder::heldRun(dir.string()) == "checkpoints/, metrics.jsonl, metrics.csv");
  const auto before = history(dir);

  // It used to empty metrics.jsonl and point `latest` at a new checkpoint 0.
  const std::string error = test::errorText<ConfigError>([&] { (void)newRecorder(dir); });
  CHECK(error == "run folder '" + dir.string() +
                     "' already holds a run (checkpoints/, metrics.jsonl, metrics.csv): pass "
                     "--resume " +
                     dir.string() + " to continue it, or choose another run folder (-o)");
  CHECK(history(dir) == before);

  // Each piece of history alone is enough.
  const fs::path only_metrics = tmp.file("only-metrics");
  fs::create_directories(only_metrics);
  test::writeBytes(only_metrics / "metrics.jsonl", {'{', '}', '\n'});
  CHECK(*RunRecorder::heldRun(only_metrics.string()) == "metrics.jsonl");
  const fs::path only_summary = tmp.file("only-summary");
  fs::create_directories(only_summary);
  test::writeBytes(only_summary / "summary.json", {'{', '}'});
  CHECK_THROWS_AS((void)newRecorder(only_summary), ConfigError);
}

TEST_CASE("run folder: files of no history do not make a run (the experiment driver's log)") {
  // experiments/run.sh opens sim.log in the folder before sfn-sim starts; a run killed
  // before its first round leaves empty metrics files and config.toml.
  test::TempDir tmp;
  const fs::path dir = tmp.file("run");
  fs::create_directories(dir / "checkpoints");
  test::writeBytes(dir / "sim.log", {'l', 'o', 'g', '\n'});
  test::writeBytes(dir / "config.toml", {'#', '\n'});
  test::writeBytes(dir / "metrics.jsonl", {});
  const std::string header = RoundMetrics::csvHeader({}) + "\n";
  test::writeBytes(dir / "metrics.csv", std::vector<std::uint8_t>(header.begin(), header.end()));
  CHECK_FALSE(RunRecorder::heldRun(dir.string()).has_value());
  {
    Federation f;
    RunRecorder recorder = newRecorder(dir);
    f.run(recorder, 1);
  }
  CHECK(roundsIn(dir) == std::vector<std::int64_t>{0});
  CHECK(test::readBytes(dir / "sim.log") == std::vector<std::uint8_t>{'l', 'o', 'g', '\n'});
}

TEST_CASE("run folder: a failed resume leaves metrics and latest untouched") {
  test::TempDir tmp;
  const fs::path dir = tmp.file("run");
  makeRun(dir, 3);
  const auto before = history(dir);

  SUBCASE("no checkpoint where --resume points") {
    Federation f;
    RunRecorder recorder = resumingRecorder(dir);
    CHECK_THROWS_WITH_AS(recorder.resumeFrom(tmp.file("nothing").string(), f.coord),
                         doctest::Contains("--resume"), ConfigError);
  }
  SUBCASE("the newest checkpoint is damaged") {
    const fs::path newest = dir / "checkpoints" / "ckpt-000003.sfn";
    std::vector<std::uint8_t> bytes = test::readBytes(newest);
    bytes[bytes.size() / 2] ^= 0x5a;
    test::writeBytes(newest, bytes);
    Federation f;
    RunRecorder recorder = resumingRecorder(dir);
    CHECK_THROWS_WITH_AS(recorder.resumeFrom(dir.string(), f.coord),
                         doctest::Contains("ckpt-000003.sfn"), DataError);
  }
  SUBCASE("the checkpoint is of another design space") {
    Federation f("fmnist");
    RunRecorder recorder = resumingRecorder(dir);
    CHECK_THROWS_AS(recorder.resumeFrom(dir.string(), f.coord), ConfigError);
  }
  SUBCASE("the checkpoint is another folder's, and this one holds a run") {
    const fs::path other = tmp.file("other");
    makeRun(other, 1);
    Federation f;
    RunRecorder recorder = resumingRecorder(dir);
    const std::string error =
        test::errorText<ConfigError>([&] { (void)recorder.resumeFrom(other.string(), f.coord); });
    CHECK(error.rfind("run folder '" + dir.string() + "' holds another run", 0) == 0);
    CHECK(f.coord.round() == 0);  // refused before anything was restored
  }
  CHECK(history(dir) == before);
  CHECK(roundsIn(dir) == std::vector<std::int64_t>{0, 1, 2});
}

TEST_CASE("run folder: a recorder that resumes writes nothing before its checkpoint is restored") {
  test::TempDir tmp;
  const fs::path dir = tmp.file("run");
  Federation f;
  RunRecorder recorder = resumingRecorder(dir);
  CHECK_FALSE(fs::exists(dir));
  CHECK_THROWS_AS(recorder.appendMetrics(RoundMetrics{}), Error);
  CHECK_THROWS_AS(recorder.checkpoint(f.coord), Error);
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("run folder: a resume trims metrics to the checkpoint's round; each round appears once") {
  test::TempDir tmp;
  const fs::path dir = tmp.file("run");
  makeRun(dir, 4);
  const std::vector<std::string> jsonl = linesOf(dir / "metrics.jsonl");
  const std::vector<std::string> csv = linesOf(dir / "metrics.csv");
  REQUIRE(jsonl.size() == 4);
  REQUIRE(csv.size() == 5);

  // Back to the checkpoint after round 1 (an operator's choice; a crash gives the same
  // picture: rows written after the newest checkpoint).
  Federation f;
  RunRecorder recorder = resumingRecorder(dir);
  const std::string file = (dir / "checkpoints" / "ckpt-000002.sfn").string();
  CHECK(recorder.resumeFrom(file, f.coord) == file);
  CHECK(f.coord.round() == 2);
  // The rows before the checkpoint, byte for byte; the later ones are gone.
  CHECK(linesOf(dir / "metrics.jsonl") ==
        std::vector<std::string>(jsonl.begin(), jsonl.begin() + 2));
  CHECK(linesOf(dir / "metrics.csv") == std::vector<std::string>(csv.begin(), csv.begin() + 3));
  f.run(recorder, 5);
  CHECK(roundsIn(dir) == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK(linesOf(dir / "metrics.csv").size() == 6);
  CHECK(linesOf(dir / "checkpoints" / "latest") == std::vector<std::string>{"ckpt-000005.sfn"});

  // Into a new folder: the history comes from the checkpoint alone.
  const fs::path copy = tmp.file("copy");
  Federation g;
  RunRecorder into_copy = resumingRecorder(copy);
  (void)into_copy.resumeFrom(dir.string(), g.coord);
  CHECK(g.coord.round() == 5);
  CHECK(linesOf(copy / "metrics.jsonl") == linesOf(dir / "metrics.jsonl"));
  CHECK_FALSE(fs::exists(copy / "checkpoints"));  // nothing written until it checkpoints
}
