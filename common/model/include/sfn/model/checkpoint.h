// Durable, atomic checkpoints of (NamedTensors, JSON metadata), written with
// AtomicFileWriter (sfn/io/atomic_file_writer.h).
//
// Checkpoint file format (all integers little-endian):
//   offset 0   8 bytes   magic "SFNCKPT1"
//   offset 8   u32       H, length of the JSON header in bytes
//   offset 12  H bytes   JSON header, UTF-8:
//                          {"format": 1,
//                           "metadata": <caller's JSON>,
//                           "data_bytes": D,
//                           "tensors": [{"name": "...", "dtype": "float32" | "int64",
//                                        "shape": [d0, d1, ...], "offset": o,
//                                        "length": n}, ...]}
//   zero padding up to S = the first multiple of 64 at or after 12 + H
//   offset S   D bytes   data section: each tensor's elements, C order, little-endian,
//                        `length` bytes at S + `offset`; offsets are multiples of 64, so
//                        every tensor starts 64-byte aligned in the file; zero padding
//                        between tensors
//   offset S+D 32 bytes  trailer: SHA-256 of bytes [0, S + D)
// Offsets are relative to S so the header never has to describe its own length. Tensor
// order in the directory is the NamedTensors order and is preserved by a round trip.
#pragma once

#include "sfn/io/atomic_file_writer.h"
#include "sfn/model/named_tensors.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sfn {

struct Checkpoint {
  NamedTensors tensors;
  nlohmann::json metadata;
};

// Writes tensors and metadata to `path` in the format above, atomically and durably
// (AtomicFileWriter). Tensors may live on any device and be non-contiguous; their values
// are copied to CPU as needed. Only float32 and int64 tensors are accepted.
// Throws IoError naming the file on an unsupported dtype, metadata that cannot be
// serialized (e.g. invalid UTF-8) or nests deeper than 255 levels (the reader's limit,
// which keeps recursive JSON code off a crafted file), a header over 4 GiB, or any I/O
// failure.
void writeCheckpoint(const std::filesystem::path& path, const NamedTensors& tensors,
                     const nlohmann::json& metadata);

// Reads and fully verifies a checkpoint. Returned tensors are fresh CPU tensors that own
// their memory. Throws DataError (an IoError; exit code 4) naming the file and the problem
// ("truncated", "bad magic", "digest mismatch", "malformed header: ...") for any file that
// is not exactly what writeCheckpoint produced, IoError if it cannot be opened or read; no
// tensor is allocated before the digest has been checked.
// Memory use is the size of the tensors plus a fixed buffer.
Checkpoint readCheckpoint(const std::filesystem::path& path);

// A directory of numbered checkpoints:
//   ckpt-000042.sfn   round 42 (at least 6 digits, zero-padded)
//   latest            one line: the file name of the newest checkpoint
// Both kinds of file are written with AtomicFileWriter. A crash at any point leaves every
// checkpoint file complete; `latest` lags by at most the one checkpoint being saved.
class CheckpointDir {
 public:
  // `keep` >= 1 checkpoints are retained; throws ConfigError otherwise. Touches nothing
  // on disk until save().
  explicit CheckpointDir(std::filesystem::path dir, std::size_t keep = 3);

  // Creates the directory if needed, writes ckpt-<round>.sfn, points `latest` at it, then
  // deletes all but the `keep` highest-numbered checkpoints (never the one just written)
  // and temporary files left by crashed writers. Returns the checkpoint's path.
  // Throws IoError.
  std::filesystem::path save(std::uint64_t round, const NamedTensors& tensors,
                             const nlohmann::json& metadata);

  // The checkpoint `latest` names, if it is a well-formed checkpoint file name and that
  // file exists; otherwise (pointer missing, dangling or garbage) the highest-numbered
  // checkpoint in the directory; nullopt if there is none or the directory is missing.
  // Does not read the checkpoint itself: readCheckpoint() verifies it.
  std::optional<std::filesystem::path> latest() const;

  // Round numbers of the checkpoint files present, ascending.
  std::vector<std::uint64_t> rounds() const;

  const std::filesystem::path& dir() const { return dir_; }
  static std::string fileName(std::uint64_t round);

 private:
  std::filesystem::path dir_;
  std::size_t keep_;
};

}  // namespace sfn
