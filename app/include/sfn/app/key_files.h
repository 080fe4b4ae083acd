// Key pairs written by the `keygen` subcommands of sfn-server, sfn-client, sfn-sim and
// sfn-search.
#pragma once

#include "sfn/core/exit_code.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>
#include <string_view>

namespace sfn {

enum class KeyType {
  kCurve,    // ZeroMQ CURVE (transport encryption and client authentication)
  kEd25519,  // signatures of exported models
};

struct KeyPairFiles {
  std::filesystem::path secret;  // DIR/<stem>.key, mode 0600
  std::filesystem::path pub;     // DIR/<stem>.pub, mode 0644
  std::string public_text;       // the public key as printed (Z85 for CURVE, else empty)
};

// Whether keygen may replace existing key files (its --force flag).
enum class KeyReplace { kNever, kForce };

// Generates a key pair and writes DIR/<stem>.key and DIR/<stem>.pub, each atomically (a
// temporary file, the secret one created with mode 0600, fsynced and renamed over the
// name: a crash leaves the old key or the new one, never half of one, and the secret is
// never readable by others, not even briefly). Creates DIR. Keys are never replaced
// silently: unless `replace` is kForce, throws ConfigError naming the file if either exists
// (and saying --force replaces it). IoError if they cannot be written.
KeyPairFiles writeNewKeyPair(const std::filesystem::path& dir, std::string_view stem, KeyType type,
                             KeyReplace replace = KeyReplace::kNever);

// The --force flag of a keygen subcommand, the same text in every binary.
void addKeygenForceFlag(CLI::App& keygen, bool& force);

// The `keygen` subcommand: writeNewKeyPair, then prints where the files are (and whether
// they replaced older ones) and `note` (what to do with the public key).
ExitCode runKeygen(const std::filesystem::path& dir, std::string_view stem, KeyType type,
                   std::string_view note, bool force = false);

}  // namespace sfn
