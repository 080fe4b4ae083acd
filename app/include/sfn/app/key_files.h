// Key pairs written by the `keygen` subcommands of sfn-server, sfn-client, sfn-sim and
// sfn-search.
#pragma once

#include "sfn/core/exit_code.h"

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

// Generates a key pair and writes DIR/<stem>.key and DIR/<stem>.pub, each atomically (a
// crash leaves no half-written key) and the secret one readable by its owner only from the
// start. Creates DIR. Keys are never replaced silently: throws ConfigError naming the file
// if either exists, IoError if they cannot be written.
KeyPairFiles writeNewKeyPair(const std::filesystem::path& dir, std::string_view stem, KeyType type);

// The `keygen` subcommand: writeNewKeyPair, then prints where the files are and `note`
// (what to do with the public key).
ExitCode runKeygen(const std::filesystem::path& dir, std::string_view stem, KeyType type,
                   std::string_view note);

}  // namespace sfn
