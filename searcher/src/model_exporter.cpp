#include "sfn/searcher/model_exporter.h"

#include "sfn/core/error.h"
#include "sfn/core/time_text.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/model/subnet_shapes.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <array>
#include <charconv>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace sfn {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModelFile = "model.pt";
constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kSignatureFile = "manifest.sig";
constexpr const char* kManifestFormat = "sfn-model/1";
// A manifest is a few kilobytes; the cap keeps verifyModelDir from reading an arbitrarily
// large planted file into memory.
constexpr std::uintmax_t kMaxManifestBytes = 16u << 20;
constexpr std::uintmax_t kMaxSignatureBytes = 4096;

// Shortest text that parses back to exactly `v`, always a TorchScript float literal.
std::string floatLiteral(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  SFN_ENFORCE(res.ec == std::errc(), Error, "cannot format ", v);
  std::string s(buf, res.ptr);
  SFN_ENFORCE(s.find_first_of("ni") == std::string::npos, ShapeError,
              "non-finite constant in exported module: ", s);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string intList(c10::ArrayRef<std::int64_t> v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  return s + "]";
}

// Generates the TorchScript forward of one SubNetModuleImpl while copying its tensors into
// a torch::jit::Module. Every layer is read from the module itself (conv strides, padding,
// BN eps, block strides, shortcut presence) rather than recomputed from the design space, so
// the script computes exactly what SubNetModuleImpl::forward computes.
class ScriptBuilder {
 public:
  explicit ScriptBuilder(SubNetModuleImpl& module) : module_(module), out_("SfnSubNet") {
    for (const auto& item : module_.named_modules(/*name_prefix=*/"", /*include_self=*/false))
      modules_.emplace(item.key(), item.value());
    // Every tensor is copied (detached, contiguous, CPU) so the artifact is independent of
    // the module and loads on machines without the training device.
    for (const auto& p : module_.named_parameters(/*recurse=*/true))
      addTensor(p.key(), p.value(), /*is_buffer=*/false);
    for (const auto& b : module_.named_buffers(/*recurse=*/true))
      addTensor(b.key(), b.value(), /*is_buffer=*/true);
  }

  torch::jit::Module build() {
    const DesignSpace& space = module_.space();
    const SubNetConfig& config = module_.config();
    line("def forward(self, x: Tensor) -> Tensor:");
    comment("SubNet " + config.toString(space) + " of design space '" + space.name + "'");
    convBn("stem", "x", "x");
    line("    x = torch.relu(x)");
    for (int s = 0; s < space.numStages(); ++s) {
      for (int b = 0; b <= config.depth.at(s); ++b)
        resBlock("stages." + std::to_string(s) + "." + std::to_string(b));
    }
    line("    x = torch.adaptive_avg_pool2d(x, [1, 1]).flatten(1)");
    auto* head = moduleAs<torch::nn::LinearImpl>("head");
    line("    return torch.linear(x, " + ref("head.weight") + ", " +
         (head->bias.defined() ? ref("head.bias") : std::string("None")) + ")");

    // A tensor the forward does not read means the module holds a layer the generator does
    // not know about: the export would silently compute something else.
    for (const auto& [name, ident] : idents_) {
      SFN_ENFORCE(used_.count(name) || name.ends_with("num_batches_tracked"), ShapeError,
                  "exported forward does not use tensor '", name, "' of SubNet ",
                  config.toString(space));
    }
    out_.define(code_.str());
    out_.eval();
    return out_;
  }

 private:
  void addTensor(const std::string& name, const torch::Tensor& t, bool is_buffer) {
    // Attribute names must be identifiers; '.' -> '_' is unambiguous for sliceSpec names.
    std::string ident = name;
    for (char& c : ident)
      if (c == '.') c = '_';
    SFN_ENFORCE(identSet_.insert(ident).second, ShapeError, "two tensors map to attribute '", ident,
                "'");
    auto copy = t.detach().to(torch::kCPU).contiguous().clone();
    if (is_buffer)
      out_.register_buffer(ident, copy);
    else
      out_.register_parameter(ident, copy, /*is_buffer=*/false);
    idents_.emplace(name, ident);
  }

  std::string ref(const std::string& name) {
    auto it = idents_.find(name);
    SFN_ENFORCE(it != idents_.end(), ShapeError, "SubNet module has no tensor '", name, "'");
    used_.insert(name);
    return "self." + it->second;
  }

  template <typename T>
  T* moduleAs(const std::string& name) {
    auto it = modules_.find(name);
    SFN_ENFORCE(it != modules_.end(), ShapeError, "SubNet module has no submodule '", name, "'");
    auto* m = it->second->as<T>();
    SFN_ENFORCE(m != nullptr, ShapeError, "submodule '", name, "' has an unexpected type");
    return m;
  }

  void line(const std::string& text) { code_ << text << '\n'; }
  void comment(const std::string& text) { code_ << "    # " << text << '\n'; }

  // out = bn(conv(in)); BN in eval mode (running statistics), as BatchNorm2d::forward does
  // when the module is not training.
  void convBn(const std::string& name, const std::string& in, const std::string& out) {
    auto* cb = moduleAs<ConvBnImpl>(name);
    SFN_ENFORCE(cb->conv, ShapeError, "'", name, "' has no conv");
    const auto& opt = cb->conv->options;
    SFN_ENFORCE(c10::holds_alternative<torch::ExpandingArray<2>>(opt.padding()), ShapeError, "'",
                name, ".conv' uses symbolic padding");
    SFN_ENFORCE(c10::holds_alternative<torch::enumtype::kZeros>(opt.padding_mode()), ShapeError,
                "'", name, ".conv' uses a padding mode other than zeros");
    const auto& pad = c10::get<torch::ExpandingArray<2>>(opt.padding());
    const std::string bias = opt.bias() ? ref(name + ".conv.bias") : std::string("None");
    line("    " + out + " = torch.conv2d(" + in + ", " + ref(name + ".conv.weight") + ", " + bias +
         ", " + intList(*opt.stride()) + ", " + intList(*pad) + ", " + intList(*opt.dilation()) +
         ", " + std::to_string(opt.groups()) + ")");
    if (cb->bn) {
      const auto& bo = cb->bn->options;
      SFN_ENFORCE(bo.affine() && bo.track_running_stats(), ShapeError, "'", name,
                  ".bn' must be affine with running statistics");
      const std::string p = name + ".bn.";
      line("    " + out + " = torch.batch_norm(" + out + ", " + ref(p + "weight") + ", " +
           ref(p + "bias") + ", " + ref(p + "running_mean") + ", " + ref(p + "running_var") +
           ", False, 0.0, " + floatLiteral(bo.eps()) + ", True)");
    }
  }

  // Mirrors ResBlockImpl::forward: relu(relu(conv2(relu(conv1(x)))) + shortcut(x)).
  void resBlock(const std::string& name) {
    auto* block = moduleAs<ResBlockImpl>(name);
    comment(name);
    convBn(name + ".conv1", "x", "y");
    line("    y = torch.relu(y)");
    convBn(name + ".conv2", "y", "y");
    line("    y = torch.relu(y)");
    if (block->shortcut) {
      std::string in = "x";
      if (block->stride != 1) {
        const std::array<std::int64_t, 2> kernel{block->stride, block->stride};
        const std::string k = intList(kernel);
        line("    sc = torch.avg_pool2d(x, " + k + ", " + k + ", [0, 0], True, True, None)");
        in = "sc";
      }
      convBn(name + ".shortcut", in, "sc");
      line("    x = torch.relu(y + sc)");
    } else {
      line("    x = torch.relu(y + x)");
    }
  }

  SubNetModuleImpl& module_;
  torch::jit::Module out_;
  std::unordered_map<std::string, std::shared_ptr<torch::nn::Module>> modules_;
  std::map<std::string, std::string> idents_;  // tensor name -> attribute name
  std::set<std::string> identSet_;
  std::set<std::string> used_;
  std::ostringstream code_;
};

nlohmann::json optionalNumber(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// Refuses a folder holding anything but the files of an earlier export, so an export never
// mixes with unrelated files (which verifyModelDir would then report as tampering).
void prepareDir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  SFN_ENFORCE(!ec, IoError, "cannot create export folder '", dir.string(), "': ", ec.message());
  SFN_ENFORCE(fs::is_directory(dir, ec), IoError, "export folder '", dir.string(),
              "' is not a directory");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    SFN_ENFORCE(name == kModelFile || name == kManifestFile || name == kSignatureFile, IoError,
                "refusing to export into '", dir.string(), "': it holds '", name,
                "', which is not part of an exported model");
  }
  SFN_ENFORCE(!ec, IoError, "cannot list export folder '", dir.string(), "': ", ec.message());
}

// ---- verification ------------------------------------------------------------------------

enum class FileKind { kRegular, kMissing, kOther };

FileKind kindOf(const fs::path& p, std::string& what) {
  std::error_code ec;
  // symlink_status: a link is reported as such, never followed out of the folder.
  const auto st = fs::symlink_status(p, ec);
  if (st.type() == fs::file_type::not_found) return FileKind::kMissing;
  if (ec) {
    what = ec.message();
    return FileKind::kOther;
  }
  switch (st.type()) {
    case fs::file_type::regular:
      return FileKind::kRegular;
    case fs::file_type::directory:
      what = "a directory";
      break;
    case fs::file_type::symlink:
      what = "a symbolic link";
      break;
    default:
      what = "a special file";
  }
  return FileKind::kOther;
}

// Collects findings in the order the header promises: signature, digests, then the folder's
// listing. Every check reports and carries on, so one run names all problems.
class ModelDirVerifier {
 public:
  ModelDirVerifier(fs::path dir, const Ed25519PublicKey& key) : dir_(std::move(dir)), key_(key) {}

  VerifyReport run() {
    std::error_code ec;
    if (!fs::is_directory(dir_, ec)) {
      problem("'" + dir_.string() + "' is not a directory (or does not exist)");
      return std::move(report_);
    }
    const auto manifest = readSmall(kManifestFile, kMaxManifestBytes);
    if (manifest && saysUnsigned(*manifest) && !fs::exists(dir_ / kSignatureFile, ec)) {
      problem(std::string("the model is unsigned: it was exported without a signing key (") +
              kManifestFile + " says \"signed\": false, and there is no " + kSignatureFile +
              "), so nothing shows who made it; export it with sfn-search --key to verify it");
    } else {
      const auto signature = readSmall(kSignatureFile, kMaxSignatureBytes);
      if (manifest && signature) checkSignature(*manifest, *signature);
    }
    std::set<std::string> expected = {kManifestFile, kSignatureFile, kModelFile};
    if (manifest) checkFiles(*manifest, expected);
    checkListing(expected);
    return std::move(report_);
  }

 private:
  void problem(std::string text) { report_.problems.push_back(std::move(text)); }

  static bool saysUnsigned(const std::string& manifest_text) {
    const auto j = nlohmann::json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
    return j.is_object() && j.contains("signed") && j["signed"] == false;
  }

  // The size of the regular file `name` in the folder; nullopt, with the problem reported,
  // if it is missing (`missing_note` says why it should be there), not a regular file or
  // unreadable.
  std::optional<std::uintmax_t> regularFileSize(const std::string& name,
                                                const std::string& missing_note) {
    const fs::path p = dir_ / name;
    std::string what;
    switch (kindOf(p, what)) {
      case FileKind::kMissing:
        problem(name + " is missing" + missing_note);
        return std::nullopt;
      case FileKind::kOther:
        problem(name + " is not a regular file (" + what + ")");
        return std::nullopt;
      case FileKind::kRegular:
        break;
    }
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec) {
      problem(name + " cannot be read: " + ec.message());
      return std::nullopt;
    }
    return size;
  }

  std::optional<std::string> readSmall(const std::string& name, std::uintmax_t max_bytes) {
    const fs::path p = dir_ / name;
    const std::optional<std::uintmax_t> found = regularFileSize(name, "");
    if (!found) return std::nullopt;
    const std::uintmax_t size = *found;
    if (size > max_bytes) {
      problem(name + " is " + std::to_string(size) + " bytes, more than the " +
              std::to_string(max_bytes) + " such a file can hold");
      return std::nullopt;
    }
    std::ifstream in(p, std::ios::binary);
    std::string bytes(static_cast<std::size_t>(size), '\0');
    if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())) ||
        in.peek() != std::ifstream::traits_type::eof()) {
      problem(name + " cannot be read (or changed while being read)");
      return std::nullopt;
    }
    return bytes;
  }

  void checkSignature(const std::string& manifest, std::string sig_text) {
    while (!sig_text.empty() && (sig_text.back() == '\n' || sig_text.back() == '\r'))
      sig_text.pop_back();
    const auto sig = fromHex(sig_text);
    if (!sig || sig->size() != kEd25519SignatureSize) {
      problem(std::string(kSignatureFile) + " is not an Ed25519 signature (expected " +
              std::to_string(2 * kEd25519SignatureSize) + " hex characters on one line)");
      return;
    }
    if (!verify(asBytes(manifest), *sig, key_))
      problem(std::string(kSignatureFile) + " is not a valid signature of " + kManifestFile +
              " under the given public key: the manifest or the signature was changed, or the "
              "key is not the one the model was signed with");
  }

  // Digest and size of every file the manifest lists. Only plain names of files beside the
  // manifest are accepted, so a manifest can never point the check outside the folder.
  void checkFiles(const std::string& manifest_text, std::set<std::string>& expected) {
    const auto manifest = nlohmann::json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
    if (manifest.is_discarded() || !manifest.is_object()) {
      problem(std::string(kManifestFile) + " is not a valid JSON object");
      return;
    }
    const auto files = manifest.find("files");
    if (files == manifest.end() || !files->is_object()) {
      problem(std::string(kManifestFile) + " has no \"files\" object");
      return;
    }
    if (!files->contains(kModelFile))
      problem(std::string(kManifestFile) + " does not list " + kModelFile);
    for (const auto& [name, entry] : files->items()) {
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
          name.find('\0') != std::string::npos || name == kManifestFile || name == kSignatureFile) {
        problem(std::string(kManifestFile) + " lists \"" + name +
                "\", which is not the name of a file beside it");
        continue;
      }
      expected.insert(name);
      const auto sha = entry.is_object() ? entry.find("sha256") : entry.end();
      const auto bytes = entry.is_object() ? entry.find("bytes") : entry.end();
      if (!entry.is_object() || sha == entry.end() || !sha->is_string() || bytes == entry.end() ||
          !bytes->is_number_unsigned()) {
        problem(std::string(kManifestFile) + " entry for " + name +
                " lacks a \"sha256\" string or a \"bytes\" count");
        continue;
      }
      checkFile(name, sha->get<std::string>(), bytes->get<std::uintmax_t>());
    }
  }

  void checkFile(const std::string& name, const std::string& sha, std::uintmax_t bytes) {
    const fs::path p = dir_ / name;
    const std::optional<std::uintmax_t> size =
        regularFileSize(name, std::string(" (") + kManifestFile + " lists it)");
    if (!size) return;
    if (*size != bytes) {
      problem(name + " has " + std::to_string(*size) + " bytes, " + kManifestFile + " says " +
              std::to_string(bytes) + ": the file was changed");
      return;
    }
    std::string actual;
    try {
      actual = toHex(sha256File(p));
    } catch (const std::exception& e) {
      problem(name + " cannot be read: " + e.what());
      return;
    }
    const auto want = fromHex(sha);
    if (!want || toHex(*want) != actual)
      problem(name + " does not match its SHA-256 in " + kManifestFile + ": the file was changed");
  }

  void checkListing(const std::set<std::string>& expected) {
    std::error_code ec;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!expected.count(name))
        problem("unexpected file " + name + " in the model folder (not listed in " + kManifestFile +
                ")");
    }
    if (ec) problem("cannot list '" + dir_.string() + "': " + ec.message());
  }

  fs::path dir_;
  const Ed25519PublicKey& key_;
  VerifyReport report_;
};

}  // namespace

torch::jit::Module toTorchScript(SubNetModuleImpl& module) {
  torch::NoGradGuard no_grad;
  return ScriptBuilder(module).build();
}

namespace {

std::string serializeScript(SubNetModuleImpl& module, const fs::path& dir) {
  std::ostringstream os(std::ios::binary);
  toTorchScript(module).save(os);
  SFN_ENFORCE(os.good(), IoError, "cannot serialize TorchScript module for '",
              (dir / kModelFile).string(), "'");
  return os.str();
}

// What manifest.json says about the model; `model_bytes` is model.pt as it will be written.
nlohmann::json manifestJson(const SubNetModuleImpl& module, const Cost& cost, const ModelInfo& info,
                            ByteView model_bytes, bool is_signed) {
  const DesignSpace& space = module.space();
  const SubNetConfig& config = module.config();
  return {
      {"format", kManifestFormat},
      {"signed", is_signed},
      {"sfn_version", SFN_VERSION},
      {"created_at", utcNow()},
      {"target", info.target},
      {"constraints", info.constraints.is_null() ? nlohmann::json::object() : info.constraints},
      {"architecture",
       {{"preset", space.name},
        {"design_space_toml", space.toToml()},
        {"subnet", config.toString(space)},
        {"depth", config.depth},
        {"bn", std::string(toString(space.bn_mode))}}},
      {"macs", cost.macs},
      {"params", cost.params},
      {"accuracy", {{"val", info.val_accuracy}, {"test", info.test_accuracy}}},
      {"latency",
       {{"device", info.latency_device},
        {"predicted_ms", optionalNumber(info.predicted_latency_ms)},
        {"predicted_on", info.predicted_on},
        {"measured_ms", optionalNumber(info.measured_latency_ms)},
        {"measured_on", info.measured_on}}},
      {"input",
       {{"shape", {1, space.in_channels, space.image_size, space.image_size}},
        {"dtype", "float32"},
        {"layout", "NCHW"},
        {"normalization",
         {{"mean", space.norm_mean},
          {"std", space.norm_std},
          {"formula", "x = (pixel / 255 - mean[c]) / std[c]"}}}}},
      {"output", {{"shape", {1, space.num_classes}}, {"meaning", "logits"}}},
      {"source", info.source},
      {"files",
       {{kModelFile, {{"sha256", sha256Hex(model_bytes)}, {"bytes", model_bytes.size()}}}}},
  };
}

// `key` nullptr: unsigned (exportUnsignedModel).
nlohmann::json writeExport(SubNetModuleImpl& module, const ModelInfo& info, const fs::path& dir,
                           const Ed25519PrivateKey* key) {
  const DesignSpace& space = module.space();
  const SubNetConfig& config = module.config();
  const Cost cost = computeCost(space, config);
  // The manifest states what the file is; numbers that disagree with the SubNet are a
  // caller bug, not something to sign.
  SFN_ENFORCE(info.macs == 0 || info.macs == cost.macs, ConfigError, "ModelInfo.macs ", info.macs,
              " != ", cost.macs, " computed for SubNet ", config.toString(space));
  SFN_ENFORCE(info.params == 0 || info.params == cost.params, ConfigError, "ModelInfo.params ",
              info.params, " != ", cost.params, " computed for SubNet ", config.toString(space));

  prepareDir(dir);
  const std::string model_bytes = serializeScript(module, dir);
  const ByteView model_view = asBytes(model_bytes);
  const nlohmann::json manifest = manifestJson(module, cost, info, model_view, key != nullptr);
  std::string manifest_text;
  try {
    manifest_text = manifest.dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    SFN_THROW(IoError, "cannot serialize '", (dir / kManifestFile).string(), "': ", e.what());
  }

  // model.pt first and the signature last: an interrupted export leaves a folder that fails
  // verification instead of one that verifies with a stale model. Unsigned: an earlier
  // signature goes first, so it never sits beside files it does not sign.
  if (key == nullptr) {
    std::error_code ec;
    fs::remove(dir / kSignatureFile, ec);
    SFN_ENFORCE(!ec, IoError, "cannot remove '", (dir / kSignatureFile).string(),
                "': ", ec.message());
  }
  writeFileAtomically(dir / kModelFile, model_view);
  writeFileAtomically(dir / kManifestFile, asBytes(manifest_text));
  if (key != nullptr)
    writeFileAtomically(dir / kSignatureFile, asBytes(toHex(sign(manifest_text, *key)) + "\n"));
  return manifest;
}

}  // namespace

nlohmann::json exportModel(SubNetModuleImpl& module, const ModelInfo& info, const fs::path& dir,
                           const Ed25519PrivateKey& key) {
  return writeExport(module, info, dir, &key);
}

nlohmann::json exportUnsignedModel(SubNetModuleImpl& module, const ModelInfo& info,
                                   const fs::path& dir) {
  return writeExport(module, info, dir, nullptr);
}

VerifyReport verifyModelDir(const fs::path& dir, const Ed25519PublicKey& key) {
  try {
    return ModelDirVerifier(dir, key).run();
  } catch (const std::exception& e) {
    // Only allocation failures or library bugs can get here; still a report, not a crash.
    VerifyReport r;
    r.problems.push_back("verification of '" + dir.string() + "' failed: " + e.what());
    return r;
  }
}

}  // namespace sfn
