// libFuzzer harness: the checkpoint reader. Checkpoints come back from disks and other
// machines (--resume, sfn-search --checkpoint); a damaged or crafted file must be refused
// with DataError/IoError, and no tensor may be allocated from an unverified header.
//
// Each input is read twice: as the whole file, and as the file's body with a correct SHA-256
// trailer appended. Random bytes almost never carry a valid digest, so without the second
// form the fuzzer would never get past the digest check into the header and tensor
// directory parser, which is where a crafted (correctly hashed) file attacks.
#include "sfn/core/error.h"
#include "sfn/io/crypto.h"
#include "sfn/model/checkpoint.h"

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

void readAsCheckpoint(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size,
                      bool append_digest) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (append_digest) {
      sfn::Sha256 sha;
      sha.update(sfn::ByteView(data, size));
      const sfn::Sha256Digest digest = sha.finish();
      out.write(reinterpret_cast<const char*>(digest.data()),
                static_cast<std::streamsize>(digest.size()));
    }
  }
  try {
    (void)sfn::readCheckpoint(path);
  } catch (const sfn::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("sfn-fuzz-checkpoint-" + std::to_string(::getpid()) + ".ckpt");
  readAsCheckpoint(path, data, size, false);
  readAsCheckpoint(path, data, size, true);
  return 0;
}
