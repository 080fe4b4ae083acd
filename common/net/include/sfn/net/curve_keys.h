// CURVE keys (Z85 text) and the files that hold them: key pairs written by keygen and
// allowlists of client public keys.
//
// File formats (kept readable by every earlier release):
//   key pair:    # comment lines
//                public-key = "<40 Z85 characters>"      (quotes optional)
//                secret-key = "<40 Z85 characters>"      (absent in a public key file)
//   allowlist:   public key files concatenated, bare keys one per line, '#' comments.
// These are not TOML: an allowlist repeats public-key and holds bare keys, and Z85 uses
// '#', '=' and quotes in its alphabet, so a strict line reader parses them instead.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

using CurveKey = std::array<std::uint8_t, 32>;

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty when only the public half is known
};

// A fresh key pair (zmq_curve_keypair). Throws Error if libzmq lacks CURVE support.
CurveKeyPair generateCurveKeyPair();
// True if `key` is 40 characters of Z85 (i.e. a 32-byte CURVE key).
bool isValidCurveKey(std::string_view key);
// The 32 bytes of a Z85 key; nullopt unless isValidCurveKey.
std::optional<CurveKey> decodeCurveKey(std::string_view z85);
// Like decodeCurveKey, but ConfigError "<what> is not a 40-character Z85 CURVE key".
CurveKey requireCurveKey(std::string_view z85, std::string_view what);
// The Z85 text of a key.
std::string encodeCurveKey(const CurveKey& key);

// Writes "public-key = ..." and "secret-key = ..." lines, creating the file with mode 0600
// (and tightening an existing file to 0600 before anything is written). Throws IoError.
void writeKeyPairFile(const std::filesystem::path& path, const CurveKeyPair& keys);
// Writes only "public-key = ..." (mode 0644): the half given to the other side.
void writePublicKeyFile(const std::filesystem::path& path, std::string_view public_key);
// Reads a file written by either function above (secret_key empty if absent). A key file is
// named by the operator, so one that is missing or malformed, or holds a secret key yet is
// readable by group/others, is a ConfigError naming the file; IoError if unreadable.
CurveKeyPair readKeyFile(const std::filesystem::path& path);
// Reads an allowlist: one key per line, bare or as "public-key = ...", '#' comments. Public
// key files can thus simply be concatenated. Throws ConfigError naming the file (missing)
// or the bad line, IoError if unreadable.
std::vector<std::string> readPublicKeys(const std::filesystem::path& path);

}  // namespace sfn
