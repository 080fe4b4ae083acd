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

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace sfn {

enum class LogFormat { kText, kJson };
std::string_view toString(LogFormat format);

// "sfn 0.1.0 (git 1a2b3c4)": the version of CMake's project() and the commit built.
std::string versionString();

class AppMain {
 public:
  // Adds --version, --log-level LEVEL and --log-format text|json to the command line;
  // they are accepted before or after a subcommand.
  AppMain(std::string name, std::string description);

  CLI::App& cli() { return cli_; }
  const std::string& name() const { return name_; }

  // Parses argv and runs `body`. Returns the exit code: body's, 0 for --help/--version,
  // 2 for a bad command line, or the code of the exception body threw (ConfigError 2,
  // AuthError 3, DataError 4, Interrupted 130, anything else 1), after printing "name: message" to
  // stderr.
  int run(int argc, char** argv, const std::function<ExitCode()>& body);

  // A stderr logger named `name` (default: the binary's name) in the chosen format. Its
  // level is --log-level if given, else `fallback_level` (e.g. from a config file).
  // Valid after parsing; throws ConfigError for an unknown level.
  std::shared_ptr<spdlog::logger> logger(std::string_view fallback_level = "info",
                                         std::string_view name = {}) const;

  LogFormat logFormat() const { return log_format_; }
  // --log-level as given, or empty.
  const std::string& logLevel() const { return log_level_; }

 private:
  std::string name_;
  CLI::App cli_;
  std::string log_level_;
  LogFormat log_format_ = LogFormat::kText;
};

// Maps an exception to its exit code (see AppMain::run).
ExitCode exitCodeOf(const std::exception& e);

}  // namespace sfn
