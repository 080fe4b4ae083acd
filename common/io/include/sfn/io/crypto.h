// SHA-256 digests and Ed25519 signatures, all through OpenSSL's EVP API.
//
// Used for checkpoint trailers, file digests in exported-model manifests and manifest
// signatures. Nothing here keeps global state; every call is safe from any thread.
//
// Key file format: PEM, the same files `openssl genpkey -algorithm ed25519` writes and
// Python's `cryptography` reads.
//   private key: PKCS#8 "-----BEGIN PRIVATE KEY-----", unencrypted, file mode 0600.
//   public key:  SubjectPublicKeyInfo "-----BEGIN PUBLIC KEY-----", file mode 0644.
// In memory a key is its raw 32 bytes (RFC 8032 seed / encoded point).
#pragma once

#include "sfn/core/bytes.h"
#include "sfn/core/hex.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

// ---- SHA-256 ---------------------------------------------------------------------------

inline constexpr std::size_t kSha256Size = 32;
using Sha256Digest = std::array<std::uint8_t, kSha256Size>;

// Incremental SHA-256 for data that arrives in pieces (files, streamed checkpoints).
// Move-only; a moved-from object may only be destroyed or assigned to. Throws sfn::Error
// only if OpenSSL itself fails (out of memory).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(ByteView bytes);
  void update(std::string_view text) { update(asBytes(text)); }
  // Returns the digest of everything passed to update() and starts a new, empty message.
  Sha256Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Sha256Digest sha256(ByteView bytes);
Sha256Digest sha256(std::string_view text);
std::string sha256Hex(ByteView bytes);
std::string sha256Hex(std::string_view text);
// Streams the file in fixed-size chunks, so memory use does not depend on its size.
// Throws IoError naming the file if it cannot be opened or read.
Sha256Digest sha256File(const std::filesystem::path& path);

// ---- Ed25519 ---------------------------------------------------------------------------

inline constexpr std::size_t kEd25519KeySize = 32;
inline constexpr std::size_t kEd25519SignatureSize = 64;
using Ed25519Signature = std::array<std::uint8_t, kEd25519SignatureSize>;

struct Ed25519PublicKey {
  std::array<std::uint8_t, kEd25519KeySize> bytes{};
  bool operator==(const Ed25519PublicKey&) const = default;
};

// The 32-byte private seed. Its memory is wiped when the object is destroyed so copies
// of the key do not linger in freed heap or stack memory.
struct Ed25519PrivateKey {
  std::array<std::uint8_t, kEd25519KeySize> bytes{};

  Ed25519PrivateKey() = default;
  Ed25519PrivateKey(const Ed25519PrivateKey&) = default;
  Ed25519PrivateKey& operator=(const Ed25519PrivateKey&) = default;
  ~Ed25519PrivateKey();
};

struct Ed25519KeyPair {
  Ed25519PrivateKey privateKey;
  Ed25519PublicKey publicKey;
};

// A fresh key pair from OpenSSL's CSPRNG. Throws sfn::Error if OpenSSL fails.
Ed25519KeyPair generateKeyPair();
// The public key belonging to a private key.
Ed25519PublicKey publicKeyOf(const Ed25519PrivateKey& key);

// Write the key as PEM, atomically and durably (temporary file, fsync, rename, fsync of
// the directory), replacing any existing file. The private key file is created with mode
// 0600 from the start, so it is never readable by others, not even briefly.
// Throw IoError naming the file and the failing step.
void savePrivateKey(const std::filesystem::path& path, const Ed25519PrivateKey& key);
void savePublicKey(const std::filesystem::path& path, const Ed25519PublicKey& key);
// Read a PEM key file. Throw IoError if the file cannot be read, is not PEM, is an
// encrypted private key, or holds a key of another algorithm.
Ed25519PrivateKey loadPrivateKey(const std::filesystem::path& path);
Ed25519PublicKey loadPublicKey(const std::filesystem::path& path);

// Signs the message (pure Ed25519, no pre-hashing). Throws sfn::Error only if OpenSSL
// fails internally.
Ed25519Signature sign(ByteView message, const Ed25519PrivateKey& key);
inline Ed25519Signature sign(std::string_view message, const Ed25519PrivateKey& key) {
  return sign(asBytes(message), key);
}
// True only if `signature` is a valid signature of `message` under `key`. A wrong size,
// a forged or corrupted signature, or an invalid public key all give false.
bool verify(ByteView message, ByteView signature, const Ed25519PublicKey& key) noexcept;
inline bool verify(std::string_view message, ByteView signature,
                   const Ed25519PublicKey& key) noexcept {
  return verify(asBytes(message), signature, key);
}

}  // namespace sfn
