// Typed exceptions with context, and SFN_ENFORCE for our own invariants.
//
// Bad input from the network is never reported through these: wire decoding returns
// error values. Exceptions are for configuration mistakes, I/O failures and broken
// invariants inside sfn. what() is the message an operator reads (it names the key, flag
// or file); an SFN_ENFORCE failure also records the source location and the failed
// condition, apart from what(), for developers (AppMain prints them at --log-level debug).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sfn {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  explicit Error(const char* message) : std::runtime_error(message) {}
  // `file` and `check` are string literals (__FILE__, #cond): stored, never copied, so
  // copying an exception cannot throw.
  Error(const std::string& message, const char* file, int line, const char* check)
      : std::runtime_error(message), file_(file), line_(line), check_(check) {}

  // Where an SFN_ENFORCE failed and what it checked; null and 0 for SFN_THROW errors.
  const char* sourceFile() const noexcept { return file_; }
  int sourceLine() const noexcept { return line_; }
  const char* failedCheck() const noexcept { return check_; }

 private:
  const char* file_ = nullptr;
  int line_ = 0;
  const char* check_ = nullptr;
};

// A configuration value (TOML, CLI, SubNet text) is invalid; the message names the key.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A file or device could not be read or written, or its contents are malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

// The contents of a file, dataset or message are malformed or fail an integrity check (a
// digest or signature mismatch, a corrupt checkpoint, labels outside the classes). An
// IoError too, so callers that handle unreadable files keep working.
class DataError : public IoError {
 public:
  using IoError::IoError;
};

// The other side refused our credentials (a key not on the server's allowlist).
class AuthError : public Error {
 public:
  using Error::Error;
};

// Work was abandoned because a stop was requested (SIGINT/SIGTERM); exit code 130.
class Interrupted : public Error {
 public:
  using Error::Error;
};

// A peer violated the protocol in a way the caller chose to raise rather than reject.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

// Tensor names/shapes do not match what the SubNet or SuperNet requires.
class ShapeError : public Error {
 public:
  using Error::Error;
};

namespace detail {
inline void appendAll(std::ostringstream&) {}
template <typename T, typename... Rest>
void appendAll(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  appendAll(os, rest...);
}
}  // namespace detail

// Concatenates any streamable pieces.
template <typename... Args>
std::string joinMessage(const Args&... args) {
  std::ostringstream os;
  detail::appendAll(os, args...);
  return os.str();
}

}  // namespace sfn

// SFN_ENFORCE(cond, ErrorType, "context ", x, ...) throws ErrorType whose what() is the
// context pieces (say what is wrong in the user's terms: the condition is not shown), with
// file, line and the failed condition kept apart (Error::sourceFile and failedCheck).
#define SFN_ENFORCE(cond, ErrorType, ...)                                          \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      throw ErrorType(::sfn::joinMessage(__VA_ARGS__), __FILE__, __LINE__, #cond); \
    }                                                                              \
  } while (0)

// SFN_THROW(ErrorType, "context ", x, ...) throws ErrorType with just the message: these
// errors reach users (a config key, a file, a client), who need no source locations.
#define SFN_THROW(ErrorType, ...) throw ErrorType(::sfn::joinMessage(__VA_ARGS__))
