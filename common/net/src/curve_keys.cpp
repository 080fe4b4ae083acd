#include "sfn/net/curve_keys.h"

#include "sfn/core/bytes.h"
#include "sfn/core/error.h"
#include "sfn/core/text.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/io/text_file.h"

#include <zmq.h>

#include <sstream>
#include <utility>

namespace sfn {
namespace {

constexpr std::size_t kZ85KeyChars = 40;
constexpr auto kSecretFilePerms =
    std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;

// Splits "name = value" at the first '=' (names never contain one; Z85 values may), and
// strips optional quotes around the value. A line without '=' has an empty name.
std::pair<std::string_view, std::string_view> splitLine(std::string_view line) {
  const auto eq = line.find('=');
  if (eq == std::string_view::npos) return {{}, trim(line)};
  std::string_view value = trim(line.substr(eq + 1));
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
    value = value.substr(1, value.size() - 2);
  return {trim(line.substr(0, eq)), value};
}

std::vector<std::string> readLines(const std::filesystem::path& path, const char* what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec)
    SFN_THROW(ConfigError, what, " ", path, " does not exist");
  std::istringstream in(readTextFile(path.string(), what));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  return lines;
}

// Like ssh: a secret others can read is refused rather than used.
void requirePrivate(const std::filesystem::path& path) {
  std::error_code ec;
  const auto perms = std::filesystem::status(path, ec).permissions();
  if (ec) SFN_THROW(IoError, "cannot stat key file ", path, ": ", ec.message());
  using std::filesystem::perms;
  if ((perms & (perms::group_all | perms::others_all)) != perms::none)
    SFN_THROW(ConfigError, "secret key file ", path, " is accessible by group/others (mode ",
              std::oct, static_cast<unsigned>(perms & perms::mask), "); chmod 600 it");
}

}  // namespace

CurveKeyPair generateCurveKeyPair() {
  SFN_ENFORCE(zmq_has("curve") != 0, Error, "libzmq was built without CURVE support");
  std::array<char, kZ85KeyChars + 1> pub{};
  std::array<char, kZ85KeyChars + 1> sec{};
  SFN_ENFORCE(zmq_curve_keypair(pub.data(), sec.data()) == 0, Error,
              "zmq_curve_keypair failed: ", zmq_strerror(zmq_errno()));
  return {std::string(pub.data(), kZ85KeyChars), std::string(sec.data(), kZ85KeyChars)};
}

std::optional<CurveKey> decodeCurveKey(std::string_view z85) {
  if (z85.size() != kZ85KeyChars) return std::nullopt;
  const std::string text(z85);  // zmq_z85_decode wants a terminated string
  CurveKey key;
  if (zmq_z85_decode(key.data(), text.c_str()) == nullptr) return std::nullopt;
  return key;
}

bool isValidCurveKey(std::string_view key) { return decodeCurveKey(key).has_value(); }

CurveKey requireCurveKey(std::string_view z85, std::string_view what) {
  auto key = decodeCurveKey(z85);
  if (!key) SFN_THROW(ConfigError, what, " is not a 40-character Z85 CURVE key");
  return *key;
}

std::string encodeCurveKey(const CurveKey& key) {
  std::array<char, kZ85KeyChars + 1> text{};
  if (zmq_z85_encode(text.data(), key.data(), key.size()) == nullptr) return {};
  return std::string(text.data(), kZ85KeyChars);
}

// Key files are written atomically (a crash never leaves half a key) and a secret key file
// is created with its final mode, so it is never readable by others, not even briefly.
void writeKeyPairFile(const std::filesystem::path& path, const CurveKeyPair& keys) {
  requireCurveKey(keys.public_key, "public key");
  requireCurveKey(keys.secret_key, "secret key");
  const std::string text = "# sfn CURVE key pair (Z85). Keep secret.\npublic-key = \"" +
                           keys.public_key + "\"\nsecret-key = \"" + keys.secret_key + "\"\n";
  writeFileAtomically(path, asBytes(text), kSecretFilePerms);
}

void writePublicKeyFile(const std::filesystem::path& path, std::string_view public_key) {
  requireCurveKey(public_key, "public key");
  const std::string text =
      "# sfn CURVE public key (Z85)\npublic-key = \"" + std::string(public_key) + "\"\n";
  writeFileAtomically(path, asBytes(text), kDefaultFilePerms);
}

CurveKeyPair readKeyFile(const std::filesystem::path& path) {
  CurveKeyPair keys;
  int line_no = 0;
  for (const std::string& line : readLines(path, "key file")) {
    ++line_no;
    const std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    const auto [key, value] = splitLine(t);
    std::string* dst = key == "public-key"   ? &keys.public_key
                       : key == "secret-key" ? &keys.secret_key
                                             : nullptr;
    if (dst == nullptr || !isValidCurveKey(value))
      SFN_THROW(ConfigError, "key file ", path, " line ", line_no,
                ": expected public-key/secret-key = <40-character Z85 key>");
    *dst = std::string(value);
  }
  if (keys.public_key.empty()) SFN_THROW(ConfigError, "key file ", path, " has no public-key");
  if (!keys.secret_key.empty()) requirePrivate(path);
  return keys;
}

std::vector<std::string> readPublicKeys(const std::filesystem::path& path) {
  std::vector<std::string> keys;
  int line_no = 0;
  for (const std::string& line : readLines(path, "allowlist")) {
    ++line_no;
    const std::string_view t = trim(line);
    // Z85 keys may contain '=' and start with '#', so a whole-line key is recognized
    // before comments and "name = value" lines (a comment with a space is never a key).
    if (isValidCurveKey(t)) {
      keys.emplace_back(t);
      continue;
    }
    if (t.empty() || t.front() == '#') continue;
    const auto [key, value] = splitLine(t);
    if (key != "public-key" || !isValidCurveKey(value))
      SFN_THROW(ConfigError, "allowlist ", path, " line ", line_no,
                ": expected a 40-character Z85 public key");
    keys.emplace_back(value);
  }
  return keys;
}

}  // namespace sfn
