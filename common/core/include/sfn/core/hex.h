// Hex encoding of bytes (digests, keys, fingerprints).
#pragma once

#include "sfn/core/bytes.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

// Lowercase hex, two characters per byte.
std::string toHex(ByteView bytes);
// Accepts upper- or lowercase; nullopt on odd length or a non-hex character, so callers
// pick the error type that fits their input (config, file, network).
std::optional<std::vector<std::uint8_t>> fromHex(std::string_view hex);

}  // namespace sfn
