// CURVE key pairs of a fleet of real ZeroMQ clients (sfn-sim --connect), kept in one folder:
//
//   DIR/client-000000.key ...   one key pair per client (mode 0600, sfn-client's format)
//   DIR/allow                   every public key of the folder, one per line: the file the
//                               server operator passes to `sfn-server --allow`
//
// Keys are reused across runs (the server's allowlist stays valid); only missing ones are
// generated. The server reads its allowlist at start, so a fleet that needed new keys must
// be allowlisted (server restarted with the new file) before its clients can register.
#pragma once

#include "sfn/net/curve_keys.h"

#include <cstddef>
#include <filesystem>
#include <vector>

namespace sfn {

struct FleetKeys {
  std::vector<CurveKeyPair> keys;   // client i uses keys[i]
  std::filesystem::path allowlist;  // DIR/allow, rewritten on every call
  std::size_t generated = 0;        // key pairs created by this call (0 = all reused)
};

// The file of client `index`'s key pair in `dir`.
std::filesystem::path fleetKeyPath(const std::filesystem::path& dir, std::size_t index);

// Reads the key pairs of clients [0, clients) from `dir`, generating (and writing) the
// missing ones, then writes DIR/allow with all of their public keys. Creates `dir`.
// Throws IoError for unreadable or malformed key files, ConfigError if clients == 0.
FleetKeys loadOrCreateFleetKeys(const std::filesystem::path& dir, std::size_t clients);

}  // namespace sfn
