// Reader for the IDX format (MNIST family), plain or gzip-compressed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;  // unsigned-byte element type only (type code 0x08)
};

// Reads `path`; a ".gz" suffix or the gzip magic selects decompression. Throws IoError
// naming the file and what is wrong (missing, truncated, bad magic, size mismatch).
IdxArray readIdx(const std::string& path);

}  // namespace sfn
