// The documented exit codes of every sfn binary (README, DESIGN.md section 2).
#pragma once

#include <string_view>

namespace sfn {

enum class ExitCode : int {
  kOk = 0,
  kRuntimeFailure = 1,  // anything not covered below (I/O, transport, internal errors)
  kUsage = 2,           // bad command line or configuration
  kAuthRefused = 3,     // the server refused this client's key or registration
  kDataIntegrity = 4,   // malformed data, or a digest or signature that does not match
  // Stopped by SIGINT/SIGTERM before the work was finished (state saved where the binary
  // keeps any: resume with --resume). 128 + SIGINT, as shells report an interrupted job,
  // so `sfn-sim ... && sfn-search ...` never goes on with an unfinished SuperNet.
  kInterrupted = 130,
};

constexpr int toInt(ExitCode code) { return static_cast<int>(code); }

constexpr std::string_view toString(ExitCode code) {
  switch (code) {
    case ExitCode::kOk:
      return "ok";
    case ExitCode::kRuntimeFailure:
      return "runtime failure";
    case ExitCode::kUsage:
      return "usage or configuration error";
    case ExitCode::kAuthRefused:
      return "authentication refused";
    case ExitCode::kDataIntegrity:
      return "data or integrity error";
    case ExitCode::kInterrupted:
      return "interrupted";
  }
  return "unknown";
}

}  // namespace sfn
