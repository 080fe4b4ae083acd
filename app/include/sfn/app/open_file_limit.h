// The open-file limit of this process (RLIMIT_NOFILE).
//
// sfn-server holds one descriptor per client connection, and sfn-sim --connect two per
// client (four while it connects), so thousands of clients need more than the soft limit many
// systems start a process with (often 1,024). Raising the soft limit up to the hard one needs
// no privilege, so both binaries do it at start-up and check what they need against it.
#pragma once

#include <cstdint>

namespace sfn {

// Lifts the soft limit to the hard limit (best effort) and returns the soft limit in force.
std::uint64_t raiseOpenFileLimit();

}  // namespace sfn
