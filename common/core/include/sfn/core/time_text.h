// Wall-clock time as text, for records people read (manifests, latency tables).
#pragma once

#include <string>

namespace sfn {

// The current UTC time as ISO 8601 to the second, e.g. "2026-11-28T20:48:46Z".
std::string utcNow();

}  // namespace sfn
