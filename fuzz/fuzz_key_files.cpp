// libFuzzer harness: CURVE key files and allowlists (readKeyFile, readPublicKeys). They are
// named by the operator and may be damaged or hostile; every problem must come out as
// sfn::Error naming the file.
//
// The readers take a path, so each input is written to a private file first (mode 0600, as
// a real secret key file must be; a world-readable secret key is refused before parsing).
#include "sfn/core/error.h"
#include "sfn/net/curve_keys.h"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

std::filesystem::path inputFile() {
  return std::filesystem::temp_directory_path() /
         ("sfn-fuzz-keys-" + std::to_string(::getpid()) + ".key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path path = inputFile();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  try {
    const sfn::CurveKeyPair pair = sfn::readKeyFile(path);
    // Whatever the reader accepts is a valid key: the transport decodes it without checks.
    if (!sfn::isValidCurveKey(pair.public_key)) std::abort();
    if (!pair.secret_key.empty() && !sfn::isValidCurveKey(pair.secret_key)) std::abort();
  } catch (const sfn::Error&) {
  }
  try {
    for (const std::string& key : sfn::readPublicKeys(path))
      if (!sfn::isValidCurveKey(key)) std::abort();
  } catch (const sfn::Error&) {
  }
  return 0;
}
