// Hex, SHA-256, Ed25519 and AtomicFileWriter (the torch-free io layer).
#include "sfn/core/error.h"
#include "sfn/core/hex.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/io/crypto.h"

#include <doctest/doctest.h>
#include "file_bytes.h"
#include "temp_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ByteVec = std::vector<std::uint8_t>;

namespace {

using sfn::test::readBytes;
using sfn::test::TempDir;
using sfn::test::writeBytes;

ByteVec randomBytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  ByteVec out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(gen());
  return out;
}

ByteVec unhex(std::string_view hex) {
  auto bytes = sfn::fromHex(hex);
  REQUIRE(bytes.has_value());
  return *bytes;
}

}  // namespace

// ---- hex and SHA-256 ---------------------------------------------------------------------

TEST_CASE("hex round trip and rejection of bad input") {
  const ByteVec bytes = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  CHECK(sfn::toHex(bytes) == "00017f80abff");
  CHECK(sfn::fromHex("00017f80abff") == bytes);
  CHECK(sfn::fromHex("00017F80ABFF") == bytes);
  CHECK(sfn::fromHex("")->empty());
  CHECK_FALSE(sfn::fromHex("abc").has_value());
  CHECK_FALSE(sfn::fromHex("zz").has_value());
  CHECK_FALSE(sfn::fromHex("0g").has_value());
}

TEST_CASE("SHA-256 known answers") {
  CHECK(sfn::sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sfn::sha256Hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sfn::sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const ByteVec abc = {'a', 'b', 'c'};
  CHECK(sfn::sha256Hex(sfn::ByteView(abc)) == sfn::sha256Hex("abc"));
}

TEST_CASE("incremental SHA-256 equals one-shot for every split") {
  const ByteVec data = randomBytes(300, 1);
  const auto expected = sfn::sha256(sfn::ByteView(data));
  sfn::Sha256 hasher;
  for (std::size_t cut = 0; cut <= data.size(); cut += 7) {
    hasher.update(sfn::ByteView(data).first(cut));
    hasher.update(sfn::ByteView(data).subspan(cut));
    // finish() starts a new message, so the same object serves every split.
    CHECK(hasher.finish() == expected);
  }
  sfn::Sha256 bytewise;
  for (const auto b : data) bytewise.update(sfn::ByteView(&b, 1));
  CHECK(bytewise.finish() == expected);

  sfn::Sha256 moved = std::move(bytewise);
  moved.update("abc");
  CHECK(sfn::toHex(moved.finish()) == sfn::sha256Hex("abc"));
}

TEST_CASE("file digest streams across chunk boundaries") {
  TempDir dir;
  // Larger than the 64 KiB read chunk and not a multiple of it.
  const ByteVec data = randomBytes(3 * 65536 + 123, 2);
  writeBytes(dir.file("blob"), data);
  CHECK(sfn::sha256File(dir.file("blob")) == sfn::sha256(sfn::ByteView(data)));
  writeBytes(dir.file("empty"), {});
  CHECK(sfn::toHex(sfn::sha256File(dir.file("empty"))) == sfn::sha256Hex(""));
  CHECK_THROWS_WITH_AS(sfn::sha256File(dir.file("missing")), doctest::Contains("cannot open"),
                       sfn::IoError);
}

// ---- Ed25519 -----------------------------------------------------------------------------

TEST_CASE("Ed25519 matches RFC 8032 test vector 1") {
  sfn::Ed25519PrivateKey key;
  const ByteVec seed = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  std::copy(seed.begin(), seed.end(), key.bytes.begin());
  const sfn::Ed25519PublicKey pub = sfn::publicKeyOf(key);
  CHECK(sfn::toHex(pub.bytes) ==
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const auto sig = sfn::sign(sfn::ByteView(), key);
  CHECK(sfn::toHex(sig) ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc6"
        "1e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  CHECK(sfn::verify(sfn::ByteView(), sig, pub));
}

TEST_CASE("Ed25519 sign/verify round trip and rejections") {
  const auto pair = sfn::generateKeyPair();
  CHECK(sfn::publicKeyOf(pair.privateKey) == pair.publicKey);
  const std::string message = "{\"arch\":\"d=[1,2,0,1]\",\"sha256\":\"00ff\"}";
  const auto sig = sfn::sign(message, pair.privateKey);
  CHECK(sfn::verify(message, sig, pair.publicKey));

  SUBCASE("flipped message byte") {
    for (std::size_t i = 0; i < message.size(); ++i) {
      std::string bad = message;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      CHECK_FALSE(sfn::verify(bad, sig, pair.publicKey));
    }
  }
  SUBCASE("flipped signature byte") {
    for (std::size_t i = 0; i < sig.size(); ++i) {
      auto bad = sig;
      bad[i] ^= 0x80;
      CHECK_FALSE(sfn::verify(message, bad, pair.publicKey));
    }
  }
  SUBCASE("different key") {
    const auto other = sfn::generateKeyPair();
    CHECK_FALSE(other.publicKey == pair.publicKey);
    CHECK_FALSE(sfn::verify(message, sig, other.publicKey));
    CHECK(sfn::verify(message, sfn::sign(message, other.privateKey), other.publicKey));
  }
  SUBCASE("wrong signature size or garbage key never throws") {
    CHECK_FALSE(sfn::verify(message, sfn::ByteView(sig).first(63), pair.publicKey));
    CHECK_FALSE(sfn::verify(message, sfn::ByteView(), pair.publicKey));
    ByteVec longer(sig.begin(), sig.end());
    longer.push_back(0);
    CHECK_FALSE(sfn::verify(message, longer, pair.publicKey));
    sfn::Ed25519PublicKey garbage;
    garbage.bytes.fill(0xff);
    CHECK_FALSE(sfn::verify(message, sig, garbage));
  }
}

TEST_CASE("Ed25519 key files: PEM round trip, 0600 private key, errors") {
  TempDir dir;
  const auto pair = sfn::generateKeyPair();
  const fs::path priv = dir.file("signing.key");
  const fs::path pub = dir.file("signing.pub");

  // A world-readable file already at the path must be replaced, not reused with its mode.
  writeBytes(priv, {'o', 'l', 'd'});
  fs::permissions(priv, fs::perms::all);
  sfn::savePrivateKey(priv, pair.privateKey);
  sfn::savePublicKey(pub, pair.publicKey);
  CHECK(fs::status(priv).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  struct stat st {};
  REQUIRE(::stat(priv.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK_FALSE(dir.hasEntryContaining(".tmp-"));

  const ByteVec pem = readBytes(priv);
  CHECK(std::string(pem.begin(), pem.end()).starts_with("-----BEGIN PRIVATE KEY-----"));
  const ByteVec pubPem = readBytes(pub);
  CHECK(std::string(pubPem.begin(), pubPem.end()).starts_with("-----BEGIN PUBLIC KEY-----"));

  const auto loaded = sfn::loadPrivateKey(priv);
  CHECK(loaded.bytes == pair.privateKey.bytes);
  CHECK(sfn::loadPublicKey(pub) == pair.publicKey);
  CHECK(sfn::verify("m", sfn::sign("m", loaded), sfn::loadPublicKey(pub)));

  CHECK_THROWS_AS(sfn::loadPrivateKey(dir.file("missing.key")), sfn::IoError);
  CHECK_THROWS_WITH_AS(sfn::loadPrivateKey(pub), doctest::Contains("not an unencrypted PEM"),
                       sfn::IoError);
  CHECK_THROWS_AS(sfn::loadPublicKey(dir.file("missing.pub")), sfn::IoError);
  writeBytes(dir.file("garbage.pub"), randomBytes(100, 3));
  CHECK_THROWS_AS(sfn::loadPublicKey(dir.file("garbage.pub")), sfn::IoError);
  writeBytes(dir.file("huge.pub"), ByteVec(100000, 'A'));
  CHECK_THROWS_WITH_AS(sfn::loadPublicKey(dir.file("huge.pub")), doctest::Contains("larger than"),
                       sfn::IoError);
}

// ---- AtomicFileWriter --------------------------------------------------------------------

TEST_CASE("AtomicFileWriter: abandoned write leaves the old file and no temp file") {
  TempDir dir;
  const fs::path target = dir.file("data");
  sfn::writeFileAtomically(target, ByteVec{1, 2, 3});
  {
    sfn::AtomicFileWriter w(target);
    CHECK(fs::exists(w.tempPath()));
    w.write(ByteVec{9, 9});
  }
  CHECK(readBytes(target) == ByteVec{1, 2, 3});
  CHECK_FALSE(dir.hasEntryContaining(".tmp-"));

  // A stale temp file with our own name (a crashed process with the same pid and tid).
  {
    sfn::AtomicFileWriter probe(target);
    writeBytes(dir.file("stale"), {7});
    fs::path stale = probe.tempPath();
    probe.write(ByteVec{4});
    probe.commit();
    fs::rename(dir.file("stale"), stale);
  }
  sfn::writeFileAtomically(target, ByteVec{5, 6});
  CHECK(readBytes(target) == ByteVec{5, 6});
  CHECK_FALSE(dir.hasEntryContaining(".tmp-"));

  CHECK_THROWS_WITH_AS(sfn::writeFileAtomically(dir.file("no/such/dir/file"), ByteVec{1}),
                       doctest::Contains("create temporary file"), sfn::IoError);
}
