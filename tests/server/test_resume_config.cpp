// No silent loss of state (issue 11): a run folder's config.toml records the effective
// settings (RunConfig::toToml), and --resume refuses a change to anything the run computes
// with, naming the key with the run's value and the new one (RunRecorder::resumeConfig).
#include "sfn/core/error.h"
#include "sfn/server/run_config.h"
#include "sfn/server/run_recorder.h"

#include <doctest/doctest.h>
#include "error_text.h"
#include "temp_dir.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using sfn::ConfigError;
using sfn::RunConfig;
using sfn::RunRecorder;
using sfn::test::TempDir;

namespace fs = std::filesystem;

namespace {

void writeText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// Every "table.key" of a TOML document (a table's keys, recursively; arrays are values).
void keysOf(const toml::table& t, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& [key, node] : t) {
    const std::string name = prefix + std::string(key.str());
    if (const toml::table* sub = node.as_table())
      keysOf(*sub, name + ".", out);
    else
      out.push_back(name);
  }
}

// A run folder whose config.toml is `config_text`, with a checkpoint file to resume from
// (resumeConfig only needs to find it; its contents are resumeFrom's business).
struct RunFolder {
  explicit RunFolder(const std::string& config_text) {
    writeText(dir.file("run") / "config.toml", config_text);
    writeText(checkpoint(), "not read here");
  }
  fs::path checkpoint() const { return dir.file("run") / "checkpoints" / "ckpt-000002.sfn"; }
  TempDir dir;
};

RunConfig given(const std::vector<std::string>& overrides) {
  return RunConfig::parse("", "given.toml", ".", overrides);
}

// The ConfigError resumeConfig throws for `now` against a run recorded with `was`.
std::string refusal(const RunConfig& was, const RunConfig& now) {
  const RunFolder run(was.toToml());
  return sfn::test::errorText<ConfigError>(
      [&] { (void)RunRecorder::resumeConfig(run.checkpoint().string(), now, "."); });
}

}  // namespace

TEST_CASE("config.toml: toToml writes every key of the default config and parses back the same") {
  const std::string path = std::string(SFN_SOURCE_DIR) + "/experiments/configs/fmnist-default.toml";
  const RunConfig cfg =
      RunConfig::load(path, {"robust.clip_norm=0.5", "devices.phone.macs_budget=7"});
  const std::string text = cfg.toToml();
  // TOML, not the file as given: no comments, every table.
  CHECK(text.find('#') == std::string::npos);
  const toml::table written = toml::parse(text);
  std::vector<std::string> written_keys;
  keysOf(written, "", written_keys);
  std::vector<std::string> default_keys;
  keysOf(toml::parse_file(path), "", default_keys);
  for (const std::string& key : default_keys) {
    if (key == "supernet.preset") continue;  // the whole design space is written instead
    CHECK_MESSAGE(std::find(written_keys.begin(), written_keys.end(), key) != written_keys.end(),
                  key);
  }
  // Keys the default file leaves out are written too: defaults, derived values, [robust].
  for (const char* key :
       {"train.lr_decay_rounds", "weighting.bT", "weighting.decay_rounds", "robust.probe_samples",
        "server.min_clients", "http.listen", "supernet.widths", "devices.phone.macs_budget"})
    CHECK_MESSAGE(std::find(written_keys.begin(), written_keys.end(), key) != written_keys.end(),
                  key);
  // Paths are absolute, so the record reads the same from any folder.
  const std::string devices = written["simulation"]["devices_file"].value_or(std::string());
  CHECK(fs::path(devices).is_absolute());
  CHECK(fs::path(devices).filename() == "mixed.toml");
  // Parsed back (from another folder) it is the same configuration.
  const RunConfig again = RunConfig::parse(text, "config.toml", "/");
  CHECK(again.toToml() == text);
  CHECK(again.coordinator.robust.clip_norm == 0.5);
  CHECK(again.coordinator.device_macs_budget.at("phone") == 7);
  CHECK(again.space.toToml() == cfg.space.toToml());
  CHECK(again.coordinator.eval_subnets == cfg.coordinator.eval_subnets);
}

TEST_CASE("resume: a changed seed, data or SuperNet setting is refused, naming key, old and new") {
  const RunConfig was = given({"run.seed=3"});
  CHECK(refusal(was, given({"run.seed=3"})) == "(no error)");
  const std::string seed = refusal(was, given({"run.seed=4"}));
  CHECK(seed.find("run.seed = 3 -> 4") != std::string::npos);
  CHECK(seed.find("Only these may change on --resume: run.rounds") != std::string::npos);
  CHECK(seed.find("config.toml") != std::string::npos);
  // Every changed key is named, not only the first.
  const std::string many =
      refusal(was, given({"run.seed=3", "data.alpha=0.5", "supernet.stem_width=8", "train.lr=0.2",
                          "round.clients_per_round=4"}));
  for (const char* change : {"data.alpha = 1.0 -> 0.5", "supernet.stem_width = 16 -> 8",
                             "train.lr = 0.1 -> 0.2", "round.clients_per_round = 10 -> 4"})
    CHECK_MESSAGE(many.find(change) != std::string::npos, change);
  CHECK(refusal(was, given({"run.seed=3", "supernet.preset=\"tiny\""})).find("supernet.") !=
        std::string::npos);
  CHECK(refusal(was, given({"run.seed=3", "data.dataset=\"synthetic\""}))
            .find("data.dataset = 'fmnist' -> 'synthetic'") != std::string::npos);
}

TEST_CASE("resume: the listed safe settings may change, and are reported") {
  const RunConfig was = given({});
  const RunFolder run(was.toToml());
  const sfn::ResumedConfig r = RunRecorder::resumeConfig(
      run.checkpoint().string(),
      given({"run.rounds=40", "eval.every=5", "checkpoint.every=1", "run.log_level=\"warn\"",
             "server.bind=\"tcp://127.0.0.1:6000\"", "http.listen=\"off\"", "simulation.workers=3",
             "round.deadline_s=10"}),
      ".");
  CHECK(r.config.rounds == 40);
  CHECK(r.config.coordinator.eval_every == 5);
  CHECK(r.config.http.listen == "off");
  CHECK(std::find(r.notes.begin(), r.notes.end(), "changed on resume: run.rounds = 20 -> 40") !=
        r.notes.end());
  // More rounds continue the schedule the run began (it held its final values after it).
  CHECK(r.config.coordinator.weighting.decay_rounds == was.coordinator.weighting.decay_rounds);
  CHECK(r.config.coordinator.lr_schedule.decay_rounds == 20);
  // A schedule key set explicitly to another value is a change like any other.
  CHECK(refusal(was, given({"weighting.decay_rounds=5"}))
            .find("weighting.decay_rounds = 16.0 -> 5.0") != std::string::npos);
  const auto& safe = RunRecorder::resumeSafeKeys();
  CHECK(std::find(safe.begin(), safe.end(), "run.seed") == safe.end());
  CHECK(RunRecorder::resumeSafeKeyText().find("run.rounds, ") == 0);
}

TEST_CASE("resume: a config.toml of the old form (file as given + override comments) still works") {
  // What RunRecorder::writeConfig wrote before the effective settings were recorded.
  const std::string legacy =
      "# my config\n[run]\nseed = 1\n[simulation]\ndevices_file = \"devices/mixed.toml\"\n"
      "# override: run.seed=5\n# override: round.clients_per_round=4\n";
  const RunFolder run(legacy);
  TempDir cfg_dir;
  writeText(cfg_dir.file("c.toml"),
            "[run]\nseed = 1\n[simulation]\ndevices_file = "
            "\"devices/mixed.toml\"\n");
  auto resume = [&](std::vector<std::string> overrides) {
    const RunConfig now = RunConfig::load(cfg_dir.file("c.toml").string(), overrides);
    return sfn::test::errorText<ConfigError>([&] {
      (void)RunRecorder::resumeConfig(run.checkpoint().string(), now, cfg_dir.path().string());
    });
  };
  // The same settings: the override lines were applied, the relative path resolved against
  // the folder of -c.
  CHECK(resume({"run.seed=5", "round.clients_per_round=4"}) == "(no error)");
  CHECK(resume({"round.clients_per_round=4"}).find("run.seed = 5 -> 1") != std::string::npos);
}

TEST_CASE("resume: a run folder without config.toml resumes, saying its settings are unchecked") {
  TempDir dir;
  writeText(dir.file("ckpt.sfn"), "x");
  const sfn::ResumedConfig r =
      RunRecorder::resumeConfig(dir.file("ckpt.sfn").string(), given({"run.seed=9"}), ".");
  CHECK(r.config.seed == 9);
  REQUIRE(r.notes.size() == 1);
  CHECK(r.notes[0].find("not checked") != std::string::npos);
}
