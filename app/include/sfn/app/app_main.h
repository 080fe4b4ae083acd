// The main() plumbing every sfn binary shares: the common command-line options, logger
// set-up, and the mapping of errors to the documented exit codes.
//
//   int main(int argc, char** argv) {
//     sfn::AppMain app("sfn-server", "SuperFedNAS aggregation server");
//     app.cli().add_option(...);
//     return app.run(argc, argv, [&] { ...; return sfn::ExitCode::kOk; });
//   }
#pragma once

#include "sfn/core/exit_code.h"

#include <CLI/CLI.hpp>
#include <spdlog/logger.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sfn {

enum class LogFormat { kText, kJson };
std::string_view toString(LogFormat format);

// "sfn 0.1.0 (git 1a2b3c4)": the version of CMake's project() and the commit built.
std::string versionString();

class AppMain {
 public:
  // Adds --version, --log-level LEVEL and --log-format text|json to the command line;
  // they are accepted before or after a subcommand. --help ends with the table of exit
  // codes, then `exit_notes` (what a code means for this binary, if anything special).
  AppMain(std::string name, std::string description, std::string_view exit_notes = {});

  CLI::App& cli() { return cli_; }
  // Accepts `alias` (e.g. "--run-dir", a flag's former name) as `name` ("--out"), also as
  // "alias=value", without listing it in --help. (A CLI11 option in the hidden group ""
  // leaves a blank line in --help.)
  void addHiddenAlias(std::string alias, std::string name);
  const std::string& name() const { return name_; }

  // Parses argv and runs `body`. Returns the exit code: body's, 0 for --help/--version,
  // 2 for a bad command line, or the code of the exception body threw (ConfigError 2,
  // AuthError 3, DataError 4, Interrupted 130, anything else 1), after printing
  // "name: message" (describeError) to stderr, or a JSON log line with --log-format json.
  int run(int argc, char** argv, const std::function<ExitCode()>& body);

  // A stderr logger named `name` (default: the binary's name) in the chosen format. Its
  // level is --log-level if given, else `fallback_level` (e.g. from a config file). The
  // binary's own logger (no `name`) also becomes spdlog's default logger, so that library
  // code logging through spdlog::warn() follows --log-format and --log-level too.
  // Valid after parsing; throws ConfigError for an unknown level.
  std::shared_ptr<spdlog::logger> logger(std::string_view fallback_level = "info",
                                         std::string_view name = {}) const;

  LogFormat logFormat() const { return log_format_; }
  // --log-level as given, or empty.
  const std::string& logLevel() const { return log_level_; }
  // --log-level debug or trace: errors are reported in full, with their source location.
  bool debugLevel() const { return log_level_ == "debug" || log_level_ == "trace"; }

 private:
  std::string name_;
  CLI::App cli_;
  void reportError(const std::exception& e, ExitCode code) const;

  std::vector<std::pair<std::string, std::string>> aliases_;  // alias -> name
  std::string log_level_;
  std::string log_format_text_ = "text";  // as given; log_format_ once parsed
  LogFormat log_format_ = LogFormat::kText;
};

// The exit codes as the last lines of every binary's --help.
std::string exitCodeHelp();

// The message an operator reads about `e`: the first line of what() (LibTorch appends
// pages of dispatcher tables and a backtrace to its messages), with a hint when more was
// cut. `detailed` (--log-level debug) keeps every line and adds, for a failed SFN_ENFORCE,
// the source file, line and condition, which are never shown otherwise.
std::string describeError(const std::exception& e, bool detailed);

// Maps an exception to its exit code (see AppMain::run).
ExitCode exitCodeOf(const std::exception& e);

}  // namespace sfn
