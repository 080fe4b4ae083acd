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
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
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

// Everything written to stderr (file descriptor 2: std::cerr and spdlog's stderr sinks)
// while it lives, collected into text().
class StderrCapture {
 public:
  StderrCapture() : saved_(::dup(STDERR_FILENO)) {
    std::fflush(stderr);
    std::FILE* f = std::fopen(dir_.file("stderr").c_str(), "w");
    REQUIRE(f != nullptr);
    ::dup2(::fileno(f), STDERR_FILENO);
    std::fclose(f);
  }
  ~StderrCapture() { restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string text() {
    restore();
    std::ifstream in(dir_.file("stderr"));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::cerr.flush();
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }

  TempDir dir_;
  int saved_;
};

// A LibTorch error's shape: a long first line, then registrations and a backtrace.
const char* const kTorchLike =
    "Could not run 'aten::empty_strided' with arguments from the 'CUDA' backend.\n\n"
    "CPU: registered at ./build/aten/src/ATen/RegisterCPU.cpp:30798 [kernel]\n"
    "Exception raised from reportError at ../aten/src/ATen/core/dispatch/OperatorEntry.cpp:548 "
    "(most recent call first):\nframe #0: c10::Error::Error(...) + 0x9d\n";

void enforcePositive(int n) {
  SFN_ENFORCE(n > 0, sfn::ConfigError, "--count must be > 0, got ", n);
}

}  // namespace

TEST_CASE("SFN_ENFORCE: what() is the message, with the source location and condition kept apart") {
  try {
    enforcePositive(-3);
    FAIL("no exception");
  } catch (const sfn::ConfigError& e) {
    CHECK(std::string(e.what()) == "--count must be > 0, got -3");
    REQUIRE(e.sourceFile() != nullptr);
    CHECK(std::string(e.sourceFile()).find("test_app.cpp") != std::string::npos);
    CHECK(e.sourceLine() > 0);
    CHECK(std::string(e.failedCheck()) == "n > 0");
    CHECK(sfn::describeError(e, false) == "--count must be > 0, got -3");
    const std::string detailed = sfn::describeError(e, true);
    CHECK(detailed.find("--count must be > 0, got -3\n  at ") == 0);
    CHECK(detailed.find("test_app.cpp:") != std::string::npos);
    CHECK(detailed.find("check failed (n > 0)") != std::string::npos);
  }
  const sfn::ConfigError thrown("unknown key 'run.roundz'");
  CHECK(thrown.sourceFile() == nullptr);
  CHECK(sfn::describeError(thrown, true) == "unknown key 'run.roundz'");
}

TEST_CASE("describeError: one line unless detailed (LibTorch's messages are pages long)") {
  const std::runtime_error torch_like(kTorchLike);
  CHECK(sfn::describeError(torch_like, false) ==
        "Could not run 'aten::empty_strided' with arguments from the 'CUDA' backend. "
        "[more with --log-level debug]");
  const std::string full = sfn::describeError(torch_like, true);
  CHECK(full.find("frame #0") != std::string::npos);
  CHECK(full.back() != '\n');
  CHECK(sfn::describeError(std::runtime_error("one line\n\n"), false) == "one line");
}

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

TEST_CASE("AppMain: an error is one line on stderr, in full at --log-level debug") {
  auto throws_torch_like = []() -> ExitCode { throw std::runtime_error(kTorchLike); };
  {
    StderrCapture err;
    CHECK(runWith({}, throws_torch_like) == 1);
    const std::string text = err.text();
    CHECK(text ==
          "sfn-test: Could not run 'aten::empty_strided' with arguments from the 'CUDA' "
          "backend. [more with --log-level debug]\n");
  }
  {
    StderrCapture err;
    CHECK(runWith({"--log-level", "debug"}, throws_torch_like) == 1);
    CHECK(err.text().find("frame #0") != std::string::npos);
  }
  {
    StderrCapture err;
    CHECK(runWith({}, [] { return (enforcePositive(0), ExitCode::kOk); }) == 2);
    CHECK(err.text() == "sfn-test: configuration error: --count must be > 0, got 0\n");
  }
}

TEST_CASE(
    "AppMain: a bad command line is one line naming the flag, and --help lists the exit codes") {
  {
    StderrCapture err;
    CHECK(runWith({"--no-such-flag"}, [] { return ExitCode::kOk; }) == 2);
    const std::string text = err.text();
    CHECK(text.find("sfn-test: usage error: ") == 0);
    CHECK(text.find("--no-such-flag") != std::string::npos);
    CHECK(text.find("(see sfn-test --help)") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  }
  sfn::AppMain app("sfn-test", "test binary", "3 when the test says so.");
  std::ostringstream out;
  std::streambuf* saved = std::cout.rdbuf(out.rdbuf());
  const int rc = runWith(
      {"--help"}, [] { return ExitCode::kOk; }, &app);
  std::cout.rdbuf(saved);
  CHECK(rc == 0);
  const std::string help = out.str();
  CHECK(help.find("Exit codes:") != std::string::npos);
  for (const char* line : {"0  ok", "1  runtime failure", "2  usage or configuration error",
                           "3  authentication refused", "4  data or integrity error",
                           "130  interrupted", "3 when the test says so."})
    CHECK_MESSAGE(help.find(line) != std::string::npos, line);
}

TEST_CASE("AppMain: --log-format json (any case) reports the error as a JSON log line") {
  StderrCapture err;
  CHECK(runWith({"--log-format", "JSON"}, []() -> ExitCode {
          throw sfn::DataError("checkpoint 'c.sfn': digest mismatch");
        }) == 4);
  const std::string text = err.text();
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
  const auto line = nlohmann::json::parse(text);
  CHECK(line["level"] == "error");
  CHECK(line["logger"] == "sfn-test");
  CHECK(line["msg"] == "checkpoint 'c.sfn': digest mismatch (exit 4: data or integrity error)");
}

TEST_CASE(
    "AppMain: the binary's logger is spdlog's default, so library log lines follow the flags") {
  const auto before = spdlog::default_logger();
  sfn::AppMain app("sfn-test", "test binary");
  CHECK(runWith(
            {"--log-format", "json", "--log-level", "warn"}, [] { return ExitCode::kOk; }, &app) ==
        0);
  const auto log = app.logger("info");
  CHECK(spdlog::default_logger() == log);
  CHECK(log->level() == spdlog::level::warn);
  const auto fleet = app.logger("info", "fleet");  // a named one leaves the default alone
  CHECK(fleet->name() == "fleet");
  CHECK(spdlog::default_logger() == log);
  spdlog::set_default_logger(before);
}
