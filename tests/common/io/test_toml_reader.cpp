// The strict TOML reader behind every config file: typed reads, unknown keys, required keys,
// relative paths and command-line overrides.
#include "sfn/io/toml_reader.h"

#include "sfn/core/error.h"

#include <doctest/doctest.h>
#include "error_text.h"
#include "temp_dir.h"

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

using sfn::ConfigError;
using sfn::TomlReader;
using sfn::test::TempDir;

namespace {

// The message of the ConfigError `f` throws, or "(no error)".
template <typename F>
std::string errorOf(F&& f) {
  return sfn::test::errorText<ConfigError>(std::forward<F>(f));
}

}  // namespace

TEST_CASE("toml config reader: typed values, and wrong types name file, key and both types") {
  TomlReader root = TomlReader::parse(R"(
count = 3
budget = 2.5e6
ratio = 1
name = "x"
flag = true
list = [1, 2, 3]
[round]
clients_per_round = "ten"
fraction = 0.5
widths = [8, "16"]
)",
                                      "run.toml");
  int count = 0;
  std::int64_t budget = 0;
  double ratio = 0;
  std::string name;
  bool flag = false;
  std::vector<int> list;
  CHECK(root.get("count", count));
  CHECK(root.get("budget", budget));  // a whole float is an integer
  CHECK(root.get("ratio", ratio));    // an integer is a number
  CHECK(root.get("name", name));
  CHECK(root.get("flag", flag));
  CHECK(root.get("list", list));
  CHECK(count == 3);
  CHECK(budget == 2'500'000);
  CHECK(ratio == 1.0);
  CHECK(name == "x");
  CHECK(flag);
  CHECK(list == std::vector<int>{1, 2, 3});

  // Never silently the default: each of these is an error naming file, key and types.
  TomlReader round = root.table("round");
  int k = 7;
  CHECK(errorOf([&] { round.get("clients_per_round", k); }) ==
        "run.toml: 'round.clients_per_round' must be an integer, not a string");
  CHECK(k == 7);
  CHECK(errorOf([&] { round.get("fraction", k); }) ==
        "run.toml: 'round.fraction' must be a whole number");
  std::string s;
  CHECK(errorOf([&] { round.get("fraction", s); }) ==
        "run.toml: 'round.fraction' must be a string, not a floating-point number");
  std::vector<int> widths;
  CHECK(errorOf([&] { round.get("widths", widths); }) ==
        "run.toml: 'round.widths[1]' must be an integer, not a string");
  CHECK(errorOf([&] { (void)root.table("count"); }) ==
        "run.toml: 'count' must be a table, not an integer");
  bool b = false;
  CHECK(errorOf([&] { root.get("count", b); }).find("must be true or false, not an integer") !=
        std::string::npos);
}

TEST_CASE("toml config reader: integers must fit their type") {
  TomlReader t = TomlReader::parse("big = 3000000000\nneg = -1\nhuge = 1e30\n", "n.toml");
  int i = 0;
  std::uint64_t u = 0;
  std::int64_t l = 0;
  // The key and the target type's range are named; the value is never wrapped (2^32 + 2
  // used to run as 2).
  i = 5;
  CHECK(errorOf([&] { t.get("big", i); }) ==
        "n.toml: 'big' is out of range (3000000000): must be in [-2147483648, 2147483647]");
  CHECK(i == 5);
  CHECK(t.get("big", l));
  CHECK(l == 3'000'000'000);
  CHECK(errorOf([&] { t.get("neg", u); }) ==
        "n.toml: 'neg' is out of range (-1): must be in [0, 18446744073709551615]");
  CHECK(errorOf([&] { t.get("huge", l); }) ==
        "n.toml: 'huge' is out of range (1e+30): must be in [-9223372036854775808, "
        "9223372036854775807]");
  std::vector<int> v;
  TomlReader list = TomlReader::parse("widths = [8, 4294967298]\n", "l.toml");
  CHECK(errorOf([&] { list.get("widths", v); }) ==
        "l.toml: 'widths[1]' is out of range (4294967298): must be in [-2147483648, 2147483647]");
  // The edges of the range fit.
  TomlReader edges = TomlReader::parse("lo = -2147483648\nhi = 2147483647\n", "e.toml");
  CHECK(edges.require<int>("lo") == -2147483648);
  CHECK(edges.require<int>("hi") == 2147483647);
}

TEST_CASE("toml config reader: an override beyond 64 bits is out of range, not a string") {
  TomlReader root = TomlReader::parse("", "o.toml");
  // TOML has no integer that large: it used to become the string "999...", whose error
  // said "must be an integer, not a string".
  CHECK(errorOf([&] { root.applyOverride("train.epochs=99999999999999999999"); }) ==
        "override 'train.epochs=99999999999999999999': 'train.epochs' is out of range "
        "(99999999999999999999): must be in [-9223372036854775808, 9223372036854775807]");
  CHECK(errorOf([&] {
          root.applyOverride("run.seed=-1_000_000_000_000_000_000_000");
        }).find("'run.seed' is out of range") != std::string::npos);
  // Bare words stay strings, digits inside included.
  root.applyOverride("run.name=run42");
  root.applyOverride("run.tag=42abc");
  TomlReader run = root.table("run");
  CHECK(run.require<std::string>("name") == "run42");
  CHECK(run.require<std::string>("tag") == "42abc");
}

TEST_CASE("toml config reader: unknown keys are rejected by name, with a hint") {
  TomlReader root = TomlReader::parse("[round]\nclient_per_round = 3\nquorum = 2\n", "t.toml");
  TomlReader round = root.table("round");
  int v = 0;
  round.get("clients_per_round", v);
  round.get("quorum", v);
  CHECK(errorOf([&] { round.rejectUnknown(); }) ==
        "t.toml: unknown key 'round.client_per_round' (did you mean 'round.clients_per_round'?)");
  CHECK_NOTHROW(root.rejectUnknown());  // [round] was asked for

  TomlReader other = TomlReader::parse("zzz = 1\n[[device]]\nname = \"a\"\nspeed = 2\n", "d.toml");
  std::vector<TomlReader> devices = other.tables("device");
  REQUIRE(devices.size() == 1);
  CHECK(devices[0].require<std::string>("name") == "a");
  CHECK(errorOf([&] { devices[0].rejectUnknown(); }) == "d.toml: unknown key 'device[0].speed'");
  CHECK(errorOf([&] { other.rejectUnknown(); }) == "d.toml: unknown key 'zzz'");
}

TEST_CASE("toml config reader: required and optional keys, absent tables") {
  TomlReader root = TomlReader::parse("[[target]]\nmax_macs = 5\n", "targets.toml");
  std::vector<TomlReader> targets = root.tables("target");
  REQUIRE(targets.size() == 1);
  CHECK(errorOf([&] { (void)targets[0].require<std::string>("name"); }) ==
        "targets.toml: 'target[0].name' is missing");
  CHECK(targets[0].optional<std::int64_t>("max_macs") == 5);
  CHECK_FALSE(targets[0].optional<std::int64_t>("max_params").has_value());
  TomlReader absent = root.table("run");
  CHECK_FALSE(absent.exists());
  int keep = 4;
  CHECK_FALSE(absent.get("rounds", keep));
  CHECK(keep == 4);
  CHECK_NOTHROW(absent.rejectUnknown());
  CHECK(root.tables("nothing").empty());
  CHECK(errorOf([] {
          (void)TomlReader::parse("[[target]\n", "bad.toml");
        }).rfind("bad.toml:1:", 0) == 0);
}

TEST_CASE("toml config reader: relative paths resolve against the file's folder") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("conf"));
  {
    std::ofstream f(dir.file("conf/run.toml"));
    f << "[sim]\ndevices = \"devices/mixed.toml\"\nabsolute = \"/etc/x\"\nempty = \"\"\n"
         "key = \"keys/a.key\"\n";
  }
  TomlReader root = TomlReader::load(dir.file("conf/run.toml").string(), "config file");
  // A value set on the command line names a path relative to the working directory.
  root.applyOverride("sim.key=\"cli/b.key\"");
  TomlReader sim = root.table("sim");
  std::string devices, absolute, empty = "unchanged", key;
  CHECK(sim.getPath("devices", devices));
  CHECK(sim.getPath("absolute", absolute));
  CHECK(sim.getPath("empty", empty));
  CHECK(sim.getPath("key", key));
  CHECK(devices == (dir.path() / "conf/devices/mixed.toml").string());
  CHECK(absolute == "/etc/x");
  CHECK(empty.empty());
  CHECK(key == "cli/b.key");
  CHECK_THROWS_AS((void)TomlReader::load(dir.file("missing.toml").string(), "config file"),
                  sfn::IoError);
}

TEST_CASE("toml config reader: command-line overrides") {
  TomlReader root = TomlReader::parse("[round]\nclients_per_round = 10\n", "o.toml");
  root.applyOverride("round.clients_per_round=5");
  root.applyOverride("round.policy=random");  // a bare word is a string
  root.applyOverride("new.table.value=[1, 2]");
  TomlReader round = root.table("round");
  CHECK(round.require<int>("clients_per_round") == 5);
  CHECK(round.require<std::string>("policy") == "random");
  CHECK(root.table("new").table("table").require<std::vector<int>>("value") ==
        std::vector<int>{1, 2});
  CHECK(errorOf([&] { root.applyOverride("no_equals"); }).find("expected table.key=value") !=
        std::string::npos);
  CHECK(errorOf([&] {
          root.applyOverride("round.clients_per_round.x=1");
        }).find("clients_per_round is not a table") != std::string::npos);
}
