// keygen --force (issue 11, "no silent loss of state"): an existing key is replaced only
// when asked, and then atomically: the new pair whole, the secret 0600, no temporary left.
#include "sfn/app/key_files.h"
#include "sfn/core/error.h"
#include "sfn/io/crypto.h"
#include "sfn/net/curve_keys.h"

#include <doctest/doctest.h>
#include "temp_dir.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string readAll(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned modeOf(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("keygen: without --force an existing key stays; with it, a new pair replaces it") {
  sfn::test::TempDir dir;
  const auto out = dir.path() / "keys";
  for (const sfn::KeyType type : {sfn::KeyType::kCurve, sfn::KeyType::kEd25519}) {
    const std::string stem = type == sfn::KeyType::kCurve ? "server" : "signing";
    const sfn::KeyPairFiles first = sfn::writeNewKeyPair(out, stem, type);
    const std::string secret = readAll(first.secret);
    const std::string pub = readAll(first.pub);
    CHECK_THROWS_WITH_AS(sfn::writeNewKeyPair(out, stem, type),
                         doctest::Contains("pass --force to replace it"), sfn::ConfigError);
    CHECK(readAll(first.secret) == secret);

    const sfn::KeyPairFiles second = sfn::writeNewKeyPair(out, stem, type, sfn::KeyReplace::kForce);
    CHECK(second.secret == first.secret);
    CHECK(readAll(second.secret) != secret);
    CHECK(readAll(second.pub) != pub);
    CHECK(modeOf(second.secret) == 0600);
    CHECK_FALSE(dir.hasEntryContaining(".tmp-"));
    // The two halves belong together.
    if (type == sfn::KeyType::kCurve)
      CHECK(sfn::readKeyFile(second.secret).public_key == sfn::readKeyFile(second.pub).public_key);
    else
      CHECK(sfn::publicKeyOf(sfn::loadPrivateKey(second.secret)) == sfn::loadPublicKey(second.pub));
  }
}
