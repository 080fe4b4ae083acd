// The app library: exit-code mapping, common options, JSON logs, stop signals, key files.
#include "sfn/app/app_main.h"
#include "sfn/app/json_log_formatter.h"
#include "sfn/app/key_files.h"
#include "sfn/app/stop_signal.h"
#include "sfn/core/error.h"
#include "sfn/net/zmq_transport.h"

#include <doctest/doctest.h>
#include "temp_dir.h"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <sstream>
#include <string>
#include <vector>

namespace {

using sfn::ExitCode;
using sfn::test::TempDir;

// Runs an AppMain over `args` (argv[0] added) with `body`.
int runWith(std::vector<std::string> args, const std::function<ExitCode()>& body,
            sfn::AppMain* app_out = nullptr) {
  sfn::AppMain local("sfn-test", "test binary");
  sfn::AppMain& app = app_out != nullptr ? *app_out : local;
  args.insert(args.begin(), "sfn-test");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return app.run(static_cast<int>(argv.size()), argv.data(), body);
}

}  // namespace

TEST_CASE("AppMain maps each error type to its documented exit code") {
  auto throws = [](auto error) { return [error]() -> ExitCode { throw error; }; };
  CHECK(runWith({}, [] { return ExitCode::kOk; }) == 0);
  CHECK(runWith({}, throws(sfn::ConfigError("key x"))) == 2);
  CHECK(runWith({}, throws(sfn::AuthError("refused"))) == 3);
  CHECK(runWith({}, throws(sfn::DataError("digest mismatch"))) == 4);
  CHECK(runWith({}, throws(sfn::IoError("disk full"))) == 1);
  CHECK(runWith({}, throws(std::runtime_error("boom"))) == 1);
  CHECK(runWith({}, [] { return ExitCode::kAuthRefused; }) == 3);
}

TEST_CASE("AppMain: unknown flags are usage errors, --help and --version exit 0") {
  bool ran = false;
  auto body = [&] {
    ran = true;
    return ExitCode::kOk;
  };
  CHECK(runWith({"--no-such-flag"}, body) == 2);
  CHECK(runWith({"--log-format", "xml"}, body) == 2);
  CHECK(runWith({"--version"}, body) == 0);
  CHECK(runWith({"--help"}, body) == 0);
  CHECK_FALSE(ran);
  CHECK(sfn::versionString().rfind("sfn ", 0) == 0);
  CHECK(sfn::versionString().find("(git ") != std::string::npos);
}

TEST_CASE("AppMain: common options are accepted after a subcommand too") {
  sfn::AppMain app("sfn-test", "test binary");
  auto* sub = app.cli().add_subcommand("keygen", "a subcommand");
  (void)sub;
  CHECK(runWith(
            {"keygen", "--log-level", "debug", "--log-format", "json"},
            [] { return ExitCode::kOk; }, &app) == 0);
  CHECK(app.logLevel() == "debug");
  CHECK((app.logFormat() == sfn::LogFormat::kJson));
  CHECK(app.logger("info")->level() == spdlog::level::debug);
}

TEST_CASE("AppMain: a bad --log-level is a configuration error naming the flag") {
  sfn::AppMain app("sfn-test", "test binary");
  CHECK(runWith(
            {"--log-level", "loud"},
            [&] {
              (void)app.logger();
              return ExitCode::kOk;
            },
            &app) == 2);
}

TEST_CASE("--log-format json writes one parseable JSON object per line") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(sfn::makeJsonLogFormatter());
  spdlog::logger log("unit", sink);
  log.info("round {}: \"quoted\" and a\ttab\nnew line", 3);
  log.warn("second");
  std::istringstream lines(out.str());
  std::string line;
  std::vector<nlohmann::json> parsed;
  while (std::getline(lines, line)) parsed.push_back(nlohmann::json::parse(line));
  REQUIRE(parsed.size() == 2);
  CHECK(parsed[0]["msg"] == "round 3: \"quoted\" and a\ttab\nnew line");
  CHECK(parsed[0]["level"] == "info");
  CHECK(parsed[0]["logger"] == "unit");
  CHECK(parsed[0]["time"].get<std::string>().back() == 'Z');
  CHECK(parsed[1]["level"] == "warning");
}

TEST_CASE("StopSignal: SIGTERM and SIGINT set the flag instead of killing the process") {
  {
    sfn::StopSignal stop;
    CHECK_FALSE(stop.requested());
    REQUIRE(::raise(SIGTERM) == 0);
    CHECK(stop.requested());
    CHECK(stop.signalNumber() == SIGTERM);
  }
  sfn::StopSignal again;  // a fresh one starts cleared
  CHECK_FALSE(again.requested());
  REQUIRE(::raise(SIGINT) == 0);
  CHECK(again.flag().load());
  CHECK_THROWS_AS(sfn::StopSignal(), sfn::Error);  // one at a time
}

TEST_CASE("keygen writes a 0600 secret and a public key, and never replaces either") {
  TempDir dir;
  const auto out = dir.path() / "keys";
  const sfn::KeyPairFiles files = sfn::writeNewKeyPair(out, "server", sfn::KeyType::kCurve);
  struct stat st {};
  REQUIRE(::stat(files.secret.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const sfn::CurveKeyPair keys = sfn::readKeyFile(files.secret);
  CHECK(keys.public_key == files.public_text);
  CHECK(sfn::readKeyFile(files.pub).public_key == files.public_text);
  for (const auto& entry : std::filesystem::directory_iterator(out))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
  CHECK_THROWS_WITH_AS(sfn::writeNewKeyPair(out, "server", sfn::KeyType::kCurve),
                       doctest::Contains("never replaced"), sfn::ConfigError);
  CHECK(sfn::readKeyFile(files.secret).secret_key == keys.secret_key);  // untouched

  const auto signing = sfn::writeNewKeyPair(out, "signing", sfn::KeyType::kEd25519);
  REQUIRE(::stat(signing.secret.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::filesystem::exists(signing.pub));
}
