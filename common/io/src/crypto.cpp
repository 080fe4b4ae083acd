#include "sfn/io/crypto.h"

#include "sfn/io/atomic_file_writer.h"
#include "sfn/core/error.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>

namespace sfn {
namespace {

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct FileClose {
  void operator()(std::FILE* p) const { std::fclose(p); }
};
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using FilePtr = std::unique_ptr<std::FILE, FileClose>;

// Key files are a few hundred bytes; the cap keeps a wrong path (a dataset, /dev/zero)
// from being slurped into memory.
constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;
constexpr std::size_t kFileChunk = 1 << 16;

// Drains OpenSSL's thread-local error queue into one line. Draining also matters for
// correctness: a stale entry would otherwise be blamed on the next, unrelated failure.
std::string opensslErrors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string("no OpenSSL error reported") : out;
}

[[noreturn]] void failOpenssl(const char* what) {
  SFN_THROW(Error, "OpenSSL ", what, " failed: ", opensslErrors());
}

std::string systemError(int err) { return std::generic_category().message(err); }

// Clears its bytes on destruction: used for buffers that held private key material.
struct WipedBytes {
  std::vector<std::uint8_t> bytes;
  ~WipedBytes() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

FilePtr openForReading(const std::filesystem::path& path, const char* what) {
  // "e" (O_CLOEXEC) keeps the descriptor out of child processes started meanwhile.
  FilePtr file(std::fopen(path.c_str(), "rbe"));
  if (!file) SFN_THROW(IoError, what, " '", path.string(), "': cannot open: ", systemError(errno));
  return file;
}

void readSmallFile(const std::filesystem::path& path, const char* what, WipedBytes& out) {
  const FilePtr file = openForReading(path, what);
  out.bytes.resize(kMaxKeyFileBytes + 1);
  const std::size_t n = std::fread(out.bytes.data(), 1, out.bytes.size(), file.get());
  if (std::ferror(file.get()))
    SFN_THROW(IoError, what, " '", path.string(), "': read failed: ", systemError(errno));
  if (n > kMaxKeyFileBytes)
    SFN_THROW(IoError, what, " '", path.string(), "': larger than ", kMaxKeyFileBytes,
              " bytes, not a key file");
  out.bytes.resize(n);
}

// Parses a PEM key from memory. OpenSSL's default password callback would prompt on the
// terminal for an encrypted key, which must never happen in a server; this one declines.
int noPassword(char*, int, int, void*) { return 0; }

EvpPkeyPtr readPemKey(const std::filesystem::path& path, const char* what, bool isPrivate) {
  WipedBytes text;
  readSmallFile(path, what, text);
  const BioPtr bio(BIO_new_mem_buf(text.bytes.data(), static_cast<int>(text.bytes.size())));
  if (!bio) failOpenssl("BIO_new_mem_buf");
  EvpPkeyPtr key(isPrivate ? PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassword, nullptr)
                           : PEM_read_bio_PUBKEY(bio.get(), nullptr, noPassword, nullptr));
  if (!key)
    SFN_THROW(IoError, what, " '", path.string(), "': not an unencrypted PEM ",
              isPrivate ? "private" : "public", " key (", opensslErrors(), ")");
  if (EVP_PKEY_is_a(key.get(), "ED25519") != 1)
    SFN_THROW(IoError, what, " '", path.string(), "': holds a ", EVP_PKEY_get0_type_name(key.get()),
              " key, expected ED25519");
  return key;
}

void writePemKey(const std::filesystem::path& path, EVP_PKEY* key, bool isPrivate) {
  // The secure-memory BIO clears its buffer when freed, so the PEM text of a private key
  // does not stay behind in the heap.
  const BioPtr bio(BIO_new(isPrivate ? BIO_s_secmem() : BIO_s_mem()));
  if (!bio) failOpenssl("BIO_new");
  const int ok =
      isPrivate ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1) failOpenssl("PEM_write_bio");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  if (size <= 0 || data == nullptr) failOpenssl("BIO_get_mem_data");
  namespace fs = std::filesystem;
  const fs::perms mode =
      isPrivate ? (fs::perms::owner_read | fs::perms::owner_write) : kDefaultFilePerms;
  writeFileAtomically(
      path, {reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)}, mode);
}

EvpPkeyPtr privateKeyObject(const Ed25519PrivateKey& key) {
  EvpPkeyPtr pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.bytes.data(), key.bytes.size()));
  if (!pkey) failOpenssl("EVP_PKEY_new_raw_private_key");
  return pkey;
}

EvpPkeyPtr publicKeyObject(const Ed25519PublicKey& key) {
  EvpPkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.bytes.data(), key.bytes.size()));
  if (!pkey) failOpenssl("EVP_PKEY_new_raw_public_key");
  return pkey;
}

Ed25519PrivateKey rawPrivateKey(EVP_PKEY* pkey) {
  Ed25519PrivateKey key;
  std::size_t len = key.bytes.size();
  if (EVP_PKEY_get_raw_private_key(pkey, key.bytes.data(), &len) != 1 || len != key.bytes.size())
    failOpenssl("EVP_PKEY_get_raw_private_key");
  return key;
}

Ed25519PublicKey rawPublicKey(EVP_PKEY* pkey) {
  Ed25519PublicKey key;
  std::size_t len = key.bytes.size();
  if (EVP_PKEY_get_raw_public_key(pkey, key.bytes.data(), &len) != 1 || len != key.bytes.size())
    failOpenssl("EVP_PKEY_get_raw_public_key");
  return key;
}

// OpenSSL wants a non-null pointer even for zero bytes on some code paths.
const std::uint8_t* dataOrEmpty(ByteView bytes) {
  static constexpr std::uint8_t kEmpty = 0;
  return bytes.empty() ? &kEmpty : bytes.data();
}

}  // namespace

// ---- SHA-256 ---------------------------------------------------------------------------

struct Sha256::Impl {
  EvpMdCtxPtr ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx.reset(EVP_MD_CTX_new());
  if (!impl_->ctx) failOpenssl("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) != 1)
    failOpenssl("EVP_DigestInit_ex");
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(ByteView bytes) {
  if (bytes.empty()) return;
  if (EVP_DigestUpdate(impl_->ctx.get(), bytes.data(), bytes.size()) != 1)
    failOpenssl("EVP_DigestUpdate");
}

Sha256Digest Sha256::finish() {
  Sha256Digest digest;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), digest.data(), &len) != 1 || len != digest.size())
    failOpenssl("EVP_DigestFinal_ex");
  if (EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) != 1)
    failOpenssl("EVP_DigestInit_ex");
  return digest;
}

Sha256Digest sha256(ByteView bytes) {
  Sha256Digest digest;
  unsigned int len = 0;
  if (EVP_Digest(dataOrEmpty(bytes), bytes.size(), digest.data(), &len, EVP_sha256(), nullptr) !=
          1 ||
      len != digest.size())
    failOpenssl("EVP_Digest");
  return digest;
}

Sha256Digest sha256(std::string_view text) { return sha256(asBytes(text)); }
std::string sha256Hex(ByteView bytes) { return toHex(sha256(bytes)); }
std::string sha256Hex(std::string_view text) { return toHex(sha256(asBytes(text))); }

Sha256Digest sha256File(const std::filesystem::path& path) {
  const FilePtr file = openForReading(path, "file to hash");
  Sha256 hasher;
  std::vector<std::uint8_t> buf(kFileChunk);
  for (;;) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), file.get());
    hasher.update(ByteView(buf.data(), n));
    if (n < buf.size()) break;
  }
  if (std::ferror(file.get()))
    SFN_THROW(IoError, "file to hash '", path.string(), "': read failed: ", systemError(errno));
  return hasher.finish();
}

// ---- Ed25519 ---------------------------------------------------------------------------

Ed25519PrivateKey::~Ed25519PrivateKey() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

Ed25519KeyPair generateKeyPair() {
  const EvpPkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!pkey) failOpenssl("EVP_PKEY_Q_keygen(ED25519)");
  return Ed25519KeyPair{rawPrivateKey(pkey.get()), rawPublicKey(pkey.get())};
}

Ed25519PublicKey publicKeyOf(const Ed25519PrivateKey& key) {
  return rawPublicKey(privateKeyObject(key).get());
}

void savePrivateKey(const std::filesystem::path& path, const Ed25519PrivateKey& key) {
  writePemKey(path, privateKeyObject(key).get(), /*isPrivate=*/true);
}

void savePublicKey(const std::filesystem::path& path, const Ed25519PublicKey& key) {
  writePemKey(path, publicKeyObject(key).get(), /*isPrivate=*/false);
}

Ed25519PrivateKey loadPrivateKey(const std::filesystem::path& path) {
  return rawPrivateKey(readPemKey(path, "private key file", /*isPrivate=*/true).get());
}

Ed25519PublicKey loadPublicKey(const std::filesystem::path& path) {
  return rawPublicKey(readPemKey(path, "public key file", /*isPrivate=*/false).get());
}

Ed25519Signature sign(ByteView message, const Ed25519PrivateKey& key) {
  const EvpPkeyPtr pkey = privateKeyObject(key);
  const EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) failOpenssl("EVP_MD_CTX_new");
  // Ed25519 hashes internally, so the digest argument must be null ("pure" mode).
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1)
    failOpenssl("EVP_DigestSignInit");
  Ed25519Signature sig;
  std::size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, dataOrEmpty(message), message.size()) != 1 ||
      len != sig.size())
    failOpenssl("EVP_DigestSign");
  return sig;
}

bool verify(ByteView message, ByteView signature, const Ed25519PublicKey& key) noexcept {
  if (signature.size() != kEd25519SignatureSize) return false;
  const EvpPkeyPtr pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.bytes.data(), key.bytes.size()));
  const EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok = pkey && ctx &&
                  EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
                  EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                                   dataOrEmpty(message), message.size()) == 1;
  // A rejected signature leaves entries in the thread's error queue; they are expected
  // here and must not surface in some later, unrelated error message.
  ERR_clear_error();
  return ok;
}

}  // namespace sfn
