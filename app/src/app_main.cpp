#include "sfn/app/app_main.h"

#include "sfn/app/json_log_formatter.h"
#include "sfn/core/error.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <iostream>

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

std::shared_ptr<spdlog::logger> makeLogger(const std::string& name, LogFormat format) {
  auto log = std::make_shared<spdlog::logger>(
      name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (format == LogFormat::kJson)
    log->set_formatter(makeJsonLogFormatter());
  else
    log->set_pattern(kTextPattern);
  return log;
}

std::string_view trimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// A command-line error in one line that says where to look, e.g. "sfn-server: usage
// error: The following argument was not expected: --bogus (see sfn-server --help)".
std::string usageMessage(const std::string& name, const CLI::Error& e) {
  std::string what = e.what();
  for (char& c : what)
    if (c == '\n') c = ' ';
  return name + ": usage error: " + std::string(trimRight(what)) + " (see " + name + " --help)\n";
}

// Whether argv asks for JSON logs. Read before parsing, so that an error in parsing itself
// (a bad flag) is reported in the format the caller's log reader expects.
bool jsonRequested(int argc, char** argv) {
  auto isJson = [](std::string_view v) {
    std::string lower(v);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower == "json";
  };
  constexpr std::string_view kFlag = "--log-format";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == kFlag && i + 1 < argc && isJson(argv[i + 1])) return true;
    if (arg.starts_with(kFlag) && arg.size() > kFlag.size() && arg[kFlag.size()] == '=' &&
        isJson(arg.substr(kFlag.size() + 1)))
      return true;
  }
  return false;
}

}  // namespace

std::string_view toString(LogFormat format) { return format == LogFormat::kJson ? "json" : "text"; }

std::string versionString() {
  return std::string("sfn ") + SFN_VERSION + " (git " + SFN_GIT_HASH + ")";
}

std::string exitCodeHelp() {
  std::string out = "Exit codes:";
  for (const ExitCode code :
       {ExitCode::kOk, ExitCode::kRuntimeFailure, ExitCode::kUsage, ExitCode::kAuthRefused,
        ExitCode::kDataIntegrity, ExitCode::kInterrupted}) {
    const std::string number = std::to_string(toInt(code));
    out +=
        "\n  " + std::string(3 - number.size(), ' ') + number + "  " + std::string(toString(code));
  }
  return out;
}

std::string describeError(const std::exception& e, bool detailed) {
  std::string_view what = e.what();
  while (!what.empty() && what.front() == '\n') what.remove_prefix(1);
  const std::size_t eol = what.find('\n');
  std::string out(trimRight(what.substr(0, eol)));
  if (detailed) {
    if (eol != std::string_view::npos) out += trimRight(what.substr(eol));
    const auto* error = dynamic_cast<const Error*>(&e);
    if (error != nullptr && error->sourceFile() != nullptr)
      out += joinMessage("\n  at ", error->sourceFile(), ':', error->sourceLine(),
                         ": check failed (", error->failedCheck(), ")");
  } else if (eol != std::string_view::npos &&
             what.find_first_not_of(" \t\r\n", eol) != std::string_view::npos) {
    out += " [more with --log-level debug]";
  }
  return out;
}

AppMain::AppMain(std::string name, std::string description, std::string_view exit_notes)
    : name_(std::move(name)), cli_(std::move(description), name_) {
  cli_.set_version_flag("--version", versionString(), "print the version and exit");
  cli_.add_option("--log-level", log_level_,
                  "trace, debug, info, warn, error, critical or off (default: the config's "
                  "log_level, else info); debug also reports errors in full");
  cli_.add_option("--log-format", log_format_text_,
                  "text (default) or json: one JSON object a line")
      ->check(CLI::IsMember({"text", "json"}, CLI::ignore_case));
  cli_.footer(exitCodeHelp() + (exit_notes.empty() ? "" : "\n" + std::string(exit_notes)));
  cli_.failure_message(
      [n = name_](const CLI::App*, const CLI::Error& e) { return usageMessage(n, e); });
}

void AppMain::addHiddenAlias(std::string alias, std::string name) {
  aliases_.emplace_back(std::move(alias), std::move(name));
}

int AppMain::run(int argc, char** argv, const std::function<ExitCode()>& body) {
  // Options of the main command are accepted after a subcommand too.
  for (CLI::App* sub : cli_.get_subcommands({})) sub->fallthrough();
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& arg : args) {
    if (arg == "--") break;
    for (const auto& [alias, name] : aliases_)
      if (arg == alias || arg.starts_with(alias + "=")) arg = name + arg.substr(alias.size());
  }
  std::vector<char*> args_c;
  for (std::string& arg : args) args_c.push_back(arg.data());
  try {
    cli_.parse(static_cast<int>(args_c.size()), args_c.data());
  } catch (const CLI::ParseError& e) {
    // CLI11's own codes (104-109 and the like) are not ours: every bad command line is 2.
    if (e.get_exit_code() != 0 && jsonRequested(argc, argv)) {
      // Without "name: " and the newline: the log line names the binary and ends itself.
      std::string message = usageMessage(name_, e).substr(name_.size() + 2);
      message.pop_back();
      makeLogger(name_, LogFormat::kJson)
          ->error("{} (exit {}: {})", message, toInt(ExitCode::kUsage), toString(ExitCode::kUsage));
      return toInt(ExitCode::kUsage);
    }
    const int rc = cli_.exit(e);  // prints help, the version, or the error
    return rc == 0 ? toInt(ExitCode::kOk) : toInt(ExitCode::kUsage);
  }
  std::string format = log_format_text_;  // IsMember matched it ignoring case
  for (char& c : format) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  log_format_ = format == "json" ? LogFormat::kJson : LogFormat::kText;
  try {
    return toInt(body());
  } catch (const std::exception& e) {
    const ExitCode code = exitCodeOf(e);
    reportError(e, code);
    return toInt(code);
  } catch (...) {
    const ExitCode code = ExitCode::kRuntimeFailure;
    reportError(std::runtime_error("unknown error (not a std::exception)"), code);
    return toInt(code);
  }
}

void AppMain::reportError(const std::exception& e, ExitCode code) const {
  const std::string message =
      (code == ExitCode::kUsage ? "configuration error: " : "") + describeError(e, debugLevel());
  if (log_format_ == LogFormat::kJson) {
    // Not through logger(): its level may be off, or --log-level may be the error.
    makeLogger(name_, log_format_)->error("{} (exit {}: {})", message, toInt(code), toString(code));
    return;
  }
  std::cerr << name_ << ": " << message << std::endl;
}

std::shared_ptr<spdlog::logger> AppMain::logger(std::string_view fallback_level,
                                                std::string_view name) const {
  const std::string logger_name(name.empty() ? std::string_view(name_) : name);
  auto log = makeLogger(logger_name, log_format_);
  log->set_level(parseLevel(log_level_.empty() ? fallback_level : std::string_view(log_level_)));
  if (name.empty()) spdlog::set_default_logger(log);
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
