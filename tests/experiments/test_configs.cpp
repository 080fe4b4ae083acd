// Every TOML file the project ships parses with the reader that owns it, and the readers
// refuse wrong values by name (sfn/io/toml_reader.h is their common reader).
#include "sfn/core/error.h"
#include "sfn/model/design_space.h"
#include "sfn/model/latency_table.h"
#include "sfn/searcher/search_target.h"
#include "sfn/server/run_config.h"
#include "sfn/simulator/device_profile.h"

#include <doctest/doctest.h>
#include "error_text.h"
#include "temp_dir.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using sfn::ConfigError;

namespace {

const fs::path kSource = SFN_SOURCE_DIR;

std::vector<fs::path> tomlFilesUnder(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".toml") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The latency table a targets file names is measured on the device and not committed: a
// copy of the file gets a stand-in table next to it.
fs::path withStandInTables(const fs::path& targets, const fs::path& dir) {
  const fs::path copy = dir / targets.filename();
  fs::copy_file(targets, copy);
  sfn::LatencyTableInfo info;
  info.device = "stand-in";
  info.torch_threads = 1;
  info.batch_size = 1;
  info.design_space = "fmnist";
  info.warmup = 1;
  info.repeats = 1;
  sfn::LatencyTable table(info);
  for (sfn::LatencyTableEntry e : sfn::LatencyTable::variants(sfn::DesignSpace::preset("fmnist"))) {
    e.ms = 0.1;
    table.setEntry(e);
  }
  table.save((dir / "laptop-lut.json").string());
  return copy;
}

// The message of the ConfigError `f` throws, or "(no error)".
template <typename F>
std::string errorOf(F&& f) {
  return sfn::test::errorText<ConfigError>(std::forward<F>(f));
}

}  // namespace

TEST_CASE("config files: every .toml under experiments/configs parses with its reader") {
  const fs::path configs = kSource / "experiments/configs";
  sfn::test::TempDir dir;
  int run_configs = 0, device_files = 0, target_files = 0;
  for (const fs::path& p : tomlFilesUnder(configs)) {
    CAPTURE(p.string());
    const std::string folder = p.parent_path().filename().string();
    if (folder == "devices") {
      CHECK_FALSE(sfn::loadDeviceProfiles(p.string()).empty());
      ++device_files;
    } else if (folder == "targets") {
      CHECK_FALSE(sfn::loadTargets(withStandInTables(p, dir.path()).string()).empty());
      ++target_files;
    } else {
      CHECK_NOTHROW((void)sfn::RunConfig::load(p.string()));
      ++run_configs;
    }
  }
  CHECK(run_configs >= 3);
  CHECK(device_files >= 5);
  CHECK(target_files >= 1);
}

TEST_CASE("config files: deploy and test run configs parse") {
  for (const fs::path& p :
       {kSource / "deploy/k8s/base/sfn-server.toml", kSource / "tests/simulator/digest.toml"}) {
    CAPTURE(p.string());
    CHECK_NOTHROW((void)sfn::RunConfig::load(p.string()));
  }
}

TEST_CASE("config files: device profiles refuse a wrongly typed value by name") {
  // It used to become the default (gmacs 10) without a word.
  const std::string error = errorOf([] {
    (void)sfn::parseDeviceProfiles("[[device]]\nname = \"slow\"\ngmacs = \"fast\"\n", "dev.toml");
  });
  CHECK(error == "dev.toml: 'device[0].gmacs' must be a number, not a string");
  CHECK(errorOf([] {
          (void)sfn::parseDeviceProfiles("[[device]]\nname = \"a\"\nmacs_budget = 2.5\n", "d.toml");
        }).find("'device[0].macs_budget' must be a whole number") != std::string::npos);
  CHECK(errorOf([] {
          (void)sfn::parseDeviceProfiles("[[device]]\nname = \"a\"\ngmac = 2\n", "d.toml");
        }).find("unknown key 'device[0].gmac' (did you mean 'device[0].gmacs'?)") !=
        std::string::npos);
  CHECK(errorOf([] {
          (void)sfn::parseDeviceProfiles("[[device]]\nshare = 1\n", "d.toml");
        }).find("'device[0].name' is missing") != std::string::npos);
  CHECK(errorOf([] {
          (void)sfn::parseDeviceProfiles("fleet = 1\n[[device]]\nname = \"a\"\n", "d.toml");
        }).find("unknown key 'fleet'") != std::string::npos);
  const auto ok = sfn::parseDeviceProfiles(
      "[[device]]\nname = \"a\"\nmacs_budget = 2.5e6\nbandwidth_mbps = 8\n", "d.toml");
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].macs_budget == 2'500'000);
  CHECK(ok[0].bandwidth_mbps == 8.0);
}

TEST_CASE("config files: run config values are typed, paths follow one rule") {
  CHECK(errorOf([] {
          (void)sfn::RunConfig::parse("[round]\nclients_per_round = \"8\"\n", "r.toml");
        }) == "r.toml: 'round.clients_per_round' must be an integer, not a string");
  CHECK(errorOf([] { (void)sfn::RunConfig::parse("[supernet]\nwidths = 8\n", "r.toml"); }) ==
        "r.toml: 'supernet.widths' must be an array, not an integer");
  CHECK(errorOf([] {
          (void)sfn::RunConfig::parse("[supernet]\nwidth = [8]\n", "r.toml");
        }).find("unknown key 'supernet.width' (did you mean 'supernet.widths'?)") !=
        std::string::npos);
  CHECK(errorOf([] { (void)sfn::RunConfig::parse("run = 3\n", "r.toml"); }) ==
        "r.toml: 'run' must be a table, not an integer");
  // Paths in the file are relative to its folder; paths set on the command line are
  // relative to the working directory.
  const std::string text = "[simulation]\ndevices_file = \"devices/mixed.toml\"\n";
  const sfn::RunConfig from_file = sfn::RunConfig::parse(text, "c.toml", "/srv/conf");
  CHECK(from_file.simulation.devices_file == "/srv/conf/devices/mixed.toml");
  const sfn::RunConfig from_cli = sfn::RunConfig::parse(
      text, "c.toml", "/srv/conf", {"simulation.devices_file=here/devices.toml"});
  CHECK(from_cli.simulation.devices_file == "here/devices.toml");
  CHECK(from_cli.server.key_file.empty());
}
