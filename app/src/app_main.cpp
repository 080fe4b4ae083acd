#include "sfn/app/app_main.h"

#include "sfn/app/json_log_formatter.h"
#include "sfn/core/error.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <iostream>
#include <map>

#include "sfn_version.h"

namespace sfn {
namespace {

constexpr const char* kTextPattern = "%Y-%m-%d %H:%M:%S.%e %^%l%$ %v";

spdlog::level::level_enum parseLevel(std::string_view text) {
  const auto level = spdlog::level::from_str(std::string(text));
  // from_str answers "off" for anything it does not know.
  if (level == spdlog::level::off && text != "off")
    SFN_THROW(ConfigError, "--log-level: unknown level '", text,
              "' (trace, debug, info, warn, error, critical, off)");
  return level;
}

}  // namespace

std::string_view toString(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }

std::string versionString() {
  return std::string("sfn ") + SFN_VERSION + " (git " + SFN_GIT_HASH + ")";
}

AppMain::AppMain(std::string name, std::string description)
    : name_(std::move(name)), cli_(std::move(description), name_) {
  cli_.set_version_flag("--version", versionString(), "print the version and exit");
  cli_.add_option("--log-level", log_level_,
                  "trace, debug, info, warn, error, critical or off (default: the config's "
                  "log_level, else info)");
  const std::map<std::string, LogFormat> formats{{"text", LogFormat::kText},
                                                 {"json", LogFormat::kJson}};
  cli_.add_option("--log-format", log_format_, "text (default) or json: one JSON object a line")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case));
}

int AppMain::run(int argc, char** argv, const std::function<ExitCode()>& body) {
  // Options of the main command are accepted after a subcommand too.
  for (CLI::App* sub : cli_.get_subcommands({})) sub->fallthrough();
  try {
    cli_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli_.exit(e);  // prints help, the version, or the error
    return rc == 0 ? toInt(ExitCode::kOk) : toInt(ExitCode::kUsage);
  }
  try {
    return toInt(body());
  } catch (const std::exception& e) {
    const ExitCode code = exitCodeOf(e);
    std::cerr << name_ << ": " << (code == ExitCode::kUsage ? "configuration error: " : "")
              << e.what() << std::endl;
    return toInt(code);
  }
}

std::shared_ptr<spdlog::logger> AppMain::logger(std::string_view fallback_level,
                                                std::string_view name) const {
  const std::string logger_name(name.empty() ? std::string_view(name_) : name);
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto log = std::make_shared<spdlog::logger>(logger_name, std::move(sink));
  log->set_level(parseLevel(log_level_.empty() ? fallback_level : std::string_view(log_level_)));
  if (log_format_ == LogFormat::kJson)
    log->set_formatter(makeJsonLogFormatter());
  else
    log->set_pattern(kTextPattern);
  return log;
}

ExitCode exitCodeOf(const std::exception& e) {
  if (dynamic_cast<const ConfigError*>(&e) != nullptr) return ExitCode::kUsage;
  if (dynamic_cast<const AuthError*>(&e) != nullptr) return ExitCode::kAuthRefused;
  if (dynamic_cast<const DataError*>(&e) != nullptr) return ExitCode::kDataIntegrity;
  if (dynamic_cast<const Interrupted*>(&e) != nullptr) return ExitCode::kInterrupted;
  return ExitCode::kRuntimeFailure;
}

}  // namespace sfn
