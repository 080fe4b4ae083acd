// Typed exceptions with context, and SFN_ENFORCE for our own invariants.
//
// Bad input from the network is never reported through these: wire decoding returns
// error values. Exceptions are for configuration mistakes, I/O failures and broken
// invariants inside sfn, and they carry file:line plus whatever context the caller adds.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sfn {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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

// Builds "file:line: what" from any streamable pieces.
template <typename... Args>
std::string formatMessage(const char* file, int line, const Args&... args) {
  std::ostringstream os;
  os << file << ':' << line << ": ";
  detail::appendAll(os, args...);
  return os.str();
}

}  // namespace sfn

// SFN_ENFORCE(cond, ErrorType, "context ", x, ...) throws ErrorType with file, line,
// the failed condition and the context pieces.
#define SFN_ENFORCE(cond, ErrorType, ...)                                                       \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      throw ErrorType(                                                                          \
          ::sfn::formatMessage(__FILE__, __LINE__, "check failed (" #cond "): ", __VA_ARGS__)); \
    }                                                                                           \
  } while (0)

// SFN_THROW(ErrorType, "context ", x, ...) throws ErrorType with just the message: these
// errors reach users (a config key, a file, a client), who need no source locations.
#define SFN_THROW(ErrorType, ...) throw ErrorType(::sfn::joinMessage(__VA_ARGS__))
