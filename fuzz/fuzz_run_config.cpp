// libFuzzer harness: the run configuration reader (TOML text -> RunConfig, then the
// effective-settings writer and reader). An operator's file is untrusted input: every
// problem must surface as sfn::Error (ConfigError, exit code 2), never as a crash, an abort
// or another exception type.
#include "sfn/core/error.h"
#include "sfn/server/run_config.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sfn::RunConfig cfg;
  try {
    // A base folder that does not exist: relative paths in the text must not reach real files.
    cfg = sfn::RunConfig::parse(text, "fuzz.toml", "/nonexistent-sfn-fuzz");
  } catch (const sfn::Error&) {
    return 0;
  }
  // What parse() accepted, toToml() must write in a form parse() accepts again (a run
  // folder's config.toml is read back on --resume).
  try {
    (void)sfn::RunConfig::parse(cfg.toToml(), "fuzz-effective.toml", "/nonexistent-sfn-fuzz");
  } catch (const sfn::Error&) {
    std::abort();
  }
  return 0;
}
