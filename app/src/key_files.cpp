#include "sfn/app/key_files.h"

#include "sfn/core/error.h"
#include "sfn/io/crypto.h"
#include "sfn/net/zmq_transport.h"

#include <iostream>

namespace sfn {

namespace fs = std::filesystem;

KeyPairFiles writeNewKeyPair(const fs::path& dir, std::string_view stem, KeyType type,
                             KeyReplace replace) {
  KeyPairFiles files;
  files.secret = dir / (std::string(stem) + ".key");
  files.pub = dir / (std::string(stem) + ".pub");
  for (const fs::path& p : {files.secret, files.pub})
    if (replace == KeyReplace::kNever && fs::exists(p))
      SFN_THROW(ConfigError, "'", p.string(),
                "' exists; keys are never replaced silently: pass --force to replace it, or "
                "choose another --out");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) SFN_THROW(IoError, "cannot create key folder '", dir.string(), "': ", ec.message());
  if (type == KeyType::kCurve) {
    const CurveKeyPair keys = generateCurveKeyPair();
    writeKeyPairFile(files.secret, keys);
    writePublicKeyFile(files.pub, keys.public_key);
    files.public_text = keys.public_key;
  } else {
    const Ed25519KeyPair keys = generateKeyPair();
    savePrivateKey(files.secret, keys.privateKey);
    savePublicKey(files.pub, keys.publicKey);
  }
  return files;
}

void addKeygenForceFlag(CLI::App& keygen, bool& force) {
  keygen.add_flag("--force", force,
                  "replace existing key files (each atomically: the old key or the new one, "
                  "never a mix); without it an existing key is never overwritten");
}

ExitCode runKeygen(const fs::path& dir, std::string_view stem, KeyType type, std::string_view note,
                   bool force) {
  const bool existed = fs::exists(dir / (std::string(stem) + ".key"));
  const KeyPairFiles files =
      writeNewKeyPair(dir, stem, type, force ? KeyReplace::kForce : KeyReplace::kNever);
  if (existed) std::cout << "--force: replaced the key pair in " << dir.string() << '\n';
  std::cout << "secret key: " << files.secret.string() << " (mode 0600)\n"
            << "public key: " << files.pub.string() << " (" << note << ")\n";
  if (!files.public_text.empty()) std::cout << files.public_text << '\n';
  std::cout.flush();
  return ExitCode::kOk;
}

}  // namespace sfn
