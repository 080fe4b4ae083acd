// libFuzzer harness: the strict TOML reader behind every sfn configuration file (run configs,
// presets, device profiles, search targets). It parses the input, then reads every key of
// every table with every supported type, as the configuration loaders do, and asks for the
// unknown-key check. Every problem must come out as sfn::Error (ConfigError, exit code 2).
#include "sfn/core/error.h"
#include "sfn/io/toml_reader.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

template <typename T>
void tryRead(sfn::TomlReader& r, const std::string& key) {
  try {
    (void)r.optional<T>(key);
  } catch (const sfn::Error&) {
  }
}

void walk(sfn::TomlReader& r, int depth) {
  if (depth > 6) return;
  for (const std::string& key : r.keys()) {
    tryRead<bool>(r, key);
    tryRead<int>(r, key);
    tryRead<std::int64_t>(r, key);
    tryRead<std::uint64_t>(r, key);
    tryRead<double>(r, key);
    tryRead<std::string>(r, key);
    tryRead<std::vector<std::int64_t>>(r, key);
    tryRead<std::vector<double>>(r, key);
    tryRead<std::vector<std::string>>(r, key);
    try {
      std::string path;
      (void)r.getPath(key, path);
    } catch (const sfn::Error&) {
    }
    try {
      sfn::TomlReader sub = r.table(key);
      walk(sub, depth + 1);
    } catch (const sfn::Error&) {
    }
    try {
      for (sfn::TomlReader& sub : r.tables(key)) walk(sub, depth + 1);
    } catch (const sfn::Error&) {
    }
  }
  try {
    r.rejectUnknown();
  } catch (const sfn::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The first line doubles as a command-line override ("table.key=value"), the other way
  // operators hand the reader text.
  const std::string override_line(text.substr(0, text.find('\n')));
  try {
    sfn::TomlReader r = sfn::TomlReader::parse(text, "fuzz.toml", "/nonexistent-sfn-fuzz");
    try {
      r.applyOverride(override_line);
    } catch (const sfn::Error&) {
    }
    walk(r, 0);
  } catch (const sfn::Error&) {
  }
  return 0;
}
