#include "sfn/simulator/fleet_keys.h"

#include "sfn/core/bytes.h"
#include "sfn/core/error.h"
#include "sfn/io/atomic_file_writer.h"

#include <cstdio>
#include <string>

namespace sfn {

std::filesystem::path fleetKeyPath(const std::filesystem::path& dir, std::size_t index) {
  char name[40];
  std::snprintf(name, sizeof name, "client-%06zu.key", index);
  return dir / name;
}

FleetKeys loadOrCreateFleetKeys(const std::filesystem::path& dir, std::size_t clients) {
  if (clients == 0) SFN_THROW(ConfigError, "a fleet needs at least one client");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) SFN_THROW(IoError, "cannot create key folder '", dir.string(), "': ", ec.message());
  FleetKeys out;
  out.keys.reserve(clients);
  for (std::size_t i = 0; i < clients; ++i) {
    const auto path = fleetKeyPath(dir, i);
    if (std::filesystem::exists(path)) {
      CurveKeyPair keys = readKeyFile(path);
      if (keys.secret_key.empty())
        SFN_THROW(ConfigError, "'", path.string(),
                  "' holds no secret key (expected a key pair written by sfn-sim keygen)");
      out.keys.push_back(std::move(keys));
    } else {
      CurveKeyPair keys = generateCurveKeyPair();
      writeKeyPairFile(path, keys);
      out.keys.push_back(std::move(keys));
      ++out.generated;
    }
  }
  // Keys beyond `clients` left by an earlier, larger fleet stay allowlisted: a smaller run
  // must not shrink the list the server may be restarted with.
  std::vector<std::string> extra;
  for (std::size_t i = clients; std::filesystem::exists(fleetKeyPath(dir, i)); ++i)
    extra.push_back(readKeyFile(fleetKeyPath(dir, i)).public_key);
  // Written atomically, so a server never reads half a list.
  out.allowlist = dir / "allow";
  std::string text = "# " + std::to_string(clients + extra.size()) + " sfn-sim fleet clients (" +
                     dir.string() + "); pass to sfn-server --allow\n";
  for (const auto& k : out.keys) text += k.public_key + '\n';
  for (const auto& k : extra) text += k + '\n';
  writeFileAtomically(out.allowlist, asBytes(text));
  return out;
}

}  // namespace sfn
