// Extraction of one SubNet as a standalone, signed deployment artifact, and its verification.
//
// An exported model is a folder:
//   model.pt       TorchScript module (torch::jit::Module built with register_parameter and
//                  define() of a TorchScript forward). Loads with torch::jit::load in plain
//                  LibTorch and with Python's torch.jit.load; needs no sfn code. Input
//                  [N, C, H, W] float32, already normalized; output logits [N, classes].
//   manifest.json  what the model is (ModelInfo below), input shape and normalization, the
//                  sfn version and the SHA-256 of every other file in the folder.
//   manifest.sig   Ed25519 signature of the exact bytes of manifest.json, hex, one line.
// The folder holds exactly these three files; verifyModelDir() treats any other as tampering.
// An unsigned export (exportUnsignedModel: sfn-search without --key) has no manifest.sig and
// its manifest says "signed": false; verifyModelDir() fails it, saying it is unsigned.
#pragma once

#include "sfn/io/crypto.h"
#include "sfn/model/design_space.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_module.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}

namespace sfn {

// What the searcher knows about the exported SubNet; copied into manifest.json.
struct ModelInfo {
  std::string target;          // deployment target name, e.g. "phone-low"
  nlohmann::json constraints;  // the target's budgets as given (max_macs, max_params, ...)
  std::int64_t macs = 0;
  std::int64_t params = 0;
  double val_accuracy = 0.0;
  double test_accuracy = 0.0;
  std::optional<double> predicted_latency_ms;  // from the device's latency table
  std::optional<double> measured_latency_ms;   // measured on this machine at export
  std::string latency_device;                  // the target's device name
  // Where each figure was measured, e.g. {"device": "laptop"} from the latency table, and
  // {"host": ..., "cpu": ...} for the export machine; copied into manifest "latency".
  nlohmann::json predicted_on;
  nlohmann::json measured_on;
  // Checkpoint file name and SHA-256, training round, run info: no host paths.
  nlohmann::json source;
};

// Builds the TorchScript module of `module` (weights copied, eval mode). With trainable BN
// the caller must have re-estimated the statistics (SubNetModuleImpl::reestimateBn) first;
// the exported module folds nothing and keeps BN as in the SubNetModule.
torch::jit::Module toTorchScript(SubNetModuleImpl& module);

// Writes model.pt, manifest.json and manifest.sig into `dir` (created; must not hold other
// files, else IoError). Every file is written atomically. Returns the manifest as written.
// Throws IoError naming the file on any I/O failure.
nlohmann::json exportModel(SubNetModuleImpl& module, const ModelInfo& info,
                           const std::filesystem::path& dir, const Ed25519PrivateKey& key);
// The same without a signature: manifest.sig is removed first if an earlier export left
// one, and the manifest says "signed": false.
nlohmann::json exportUnsignedModel(SubNetModuleImpl& module, const ModelInfo& info,
                                   const std::filesystem::path& dir);

// Result of checking an exported folder; ok() when problems is empty.
struct VerifyReport {
  std::vector<std::string> problems;  // one clear sentence each, naming the file
  bool ok() const { return problems.empty(); }
};

// Checks the signature over manifest.json with `key`, then the SHA-256 of every file the
// manifest lists, and that no file is missing and no extra file is present. An unsigned
// model is a problem ("unsigned"), its digests are still checked. Never throws for a bad
// folder: every finding is a problem in the report.
VerifyReport verifyModelDir(const std::filesystem::path& dir, const Ed25519PublicKey& key);

}  // namespace sfn
