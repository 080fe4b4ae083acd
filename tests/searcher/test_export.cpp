// Exported models: TorchScript equivalence with the in-library SubNet (in C++ and in
// Debian's python3-torch), manifest contents, signature and tamper detection.
#include "sfn/io/crypto.h"
#include "sfn/data/dataset.h"
#include "sfn/core/error.h"
#include "sfn/searcher/model_exporter.h"
#include "sfn/core/rng.h"
#include "sfn/model/subnet_shapes.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>
#include <torch/torch.h>

// After torch: Debian's LibTorch pulls in glog, whose CHECK would otherwise replace
// doctest's whenever the precompiled header is not force-included first.
#include <doctest/doctest.h>
#include "temp_dir.h"

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;
using namespace sfn;

namespace {

using sfn::test::TempDir;

std::string readText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeText(const fs::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  REQUIRE(out.good());
}

void writeFloats(const fs::path& p, const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU).to(torch::kFloat32).contiguous();
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(c.data_ptr<float>()),
            static_cast<std::streamsize>(c.numel() * sizeof(float)));
  REQUIRE(out.good());
}

// Real Fashion-MNIST test images, normalized by the data layer exactly as training saw them.
struct Images {
  torch::Tensor eval;                // the batch the logits are compared on
  std::vector<torch::Tensor> stats;  // disjoint batches for BN re-estimation
};

Images loadImages() {
  const Dataset test = loadFashionMnist(defaultFashionMnistDir(), /*train=*/false);
  REQUIRE(test.size() == 10000);
  Images im;
  im.eval = test.images.narrow(0, 0, 64);
  for (int i = 0; i < 4; ++i) im.stats.push_back(test.images.narrow(0, 1000 + 128 * i, 128));
  return im;
}

DesignSpace fmnist(BnMode bn) {
  DesignSpace s = DesignSpace::preset("fmnist");
  s.bn_mode = bn;
  return s;
}

// A SubNet with deterministic weights in eval mode. With trainable BN the affine parameters
// are randomized (initialize() leaves them at 1 and 0, which would hide a swapped weight and
// bias) and the statistics re-estimated, as the searcher does before export.
SubNetModule makeModule(const DesignSpace& space, const SubNetConfig& config, std::uint64_t seed,
                        const Images& images) {
  SubNetModule m(space, config);
  m->initialize(seed);
  if (space.bn_mode == BnMode::kTrainable) {
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
    for (auto& p : m->named_parameters()) {
      if (p.key().ends_with(".bn.weight")) p.value().uniform_(0.5, 1.5, gen);
      if (p.key().ends_with(".bn.bias")) p.value().normal_(0.0, 0.1, gen);
    }
    m->reestimateBn(images.stats);
  }
  m->eval();
  return m;
}

ModelInfo infoFor(const DesignSpace& space, const SubNetConfig& config) {
  ModelInfo info;
  info.target = "phone-low";
  info.constraints = {{"max_macs", 5000000}, {"max_latency_ms", 20.0}};
  const Cost cost = computeCost(space, config);
  info.macs = cost.macs;
  info.params = cost.params;
  info.val_accuracy = 0.71;
  info.test_accuracy = 0.70;
  info.predicted_latency_ms = 3.5;
  info.measured_latency_ms = 4.25;
  info.latency_device = "phone-low";
  info.source = {{"checkpoint", "runs/x/checkpoints/ckpt-000060.sfn"}, {"round", 60}};
  return info;
}

bool mentions(const VerifyReport& r, std::string_view what) {
  for (const auto& p : r.problems)
    if (p.find(what) != std::string::npos) return true;
  return false;
}

std::string describe(const VerifyReport& r) {
  std::string s;
  for (const auto& p : r.problems) s += "\n  " + p;
  return s.empty() ? "(no problems)" : s;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command (bounded by coreutils `timeout`), collecting stdout and stderr.
CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen(("timeout 300 " + command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) r.output += buf;
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

TEST_CASE("exported TorchScript reproduces the SubNet's logits on Fashion-MNIST") {
  const Images images = loadImages();
  const auto keys = generateKeyPair();
  TempDir tmp;
  int n = 0;
  for (BnMode bn : {BnMode::kFrozen, BnMode::kTrainable}) {
    const DesignSpace space = fmnist(bn);
    Rng rng(42);
    std::vector<std::pair<std::string, SubNetConfig>> configs = {
        {"MaxNet", SubNetConfig::maxNet(space)}, {"MinNet", SubNetConfig::minNet(space)}};
    for (int i = 0; i < 3; ++i) configs.emplace_back("random", SubNetConfig::random(space, rng));

    for (const auto& [kind, config] : configs) {
      CAPTURE(kind);
      const std::string text = config.toString(space);
      CAPTURE(text);
      CAPTURE(toString(bn));
      SubNetModule m = makeModule(space, config, 7 + n, images);
      const fs::path dir = tmp.path() / ("m" + std::to_string(n++));
      exportModel(*m, infoFor(space, config), dir, keys.privateKey);

      torch::jit::Module loaded = torch::jit::load((dir / "model.pt").string());
      loaded.eval();
      torch::NoGradGuard no_grad;
      const torch::Tensor want = m->forward(images.eval);
      const torch::Tensor got = loaded.forward({images.eval}).toTensor();
      REQUIRE(got.sizes() == want.sizes());
      const double diff = (got - want).abs().max().item<double>();
      CAPTURE(diff);
      CHECK(torch::allclose(got, want, /*rtol=*/0.0, /*atol=*/1e-5));
      // The logits must carry signal, or equality would prove little.
      CHECK(want.std().item<double>() > 1e-3);

      // Every parameter and statistic travels; nothing else is in the module.
      std::int64_t want_numel = 0, got_numel = 0;
      for (const auto& t : m->parameters()) want_numel += t.numel();
      for (const auto& t : loaded.parameters()) got_numel += t.numel();
      CHECK(got_numel == want_numel);
    }
  }
}

TEST_CASE("toTorchScript copies the weights: later changes to the module do not leak in") {
  const DesignSpace space = fmnist(BnMode::kFrozen);
  SubNetModule m(space, SubNetConfig::minNet(space));
  m->initialize(3);
  m->eval();
  torch::jit::Module ts = toTorchScript(*m);
  const auto x = torch::randn({2, 1, 28, 28});
  torch::NoGradGuard no_grad;
  const auto before = m->forward(x);
  CHECK(torch::allclose(ts.forward({x}).toTensor(), before, 0.0, 1e-5));
  for (auto& p : m->parameters()) p.mul_(2.0);
  CHECK(torch::allclose(ts.forward({x}).toTensor(), before, 0.0, 1e-5));
  CHECK_FALSE(torch::allclose(m->forward(x), before, 0.0, 1e-5));
}

// One model exported with a fresh key pair, for the manifest and verification cases.
struct ExportedModel {
  ExportedModel(const DesignSpace& s, SubNetModule module, const SubNetConfig& c)
      : space(s), config(c), m(std::move(module)), info(infoFor(space, config)) {
    manifest = exportModel(*m, info, dir, keys.privateKey);
  }

  const DesignSpace space;
  const SubNetConfig config;
  SubNetModule m;
  const ModelInfo info;
  const Ed25519KeyPair keys = generateKeyPair();
  TempDir tmp;
  const fs::path dir = tmp.path() / "model";
  nlohmann::json manifest;
};

// A random SubNet of the frozen-BN fmnist space, with real images for its statistics.
ExportedModel exportRandomFrozen() {
  const DesignSpace space = fmnist(BnMode::kFrozen);
  Rng rng(5);
  const SubNetConfig config = SubNetConfig::random(space, rng);
  return ExportedModel(space, makeModule(space, config, 11, loadImages()), config);
}

// The trainable-BN MinNet (no images needed).
ExportedModel exportMinNet() {
  const DesignSpace space = fmnist(BnMode::kTrainable);
  SubNetModule m(space, SubNetConfig::minNet(space));
  m->initialize(1);
  m->eval();
  return ExportedModel(space, std::move(m), SubNetConfig::minNet(space));
}

TEST_CASE("manifest describes the model") {
  const ExportedModel e = exportRandomFrozen();
  const nlohmann::json& manifest = e.manifest;
  CHECK(nlohmann::json::parse(readText(e.dir / "manifest.json")) == manifest);
  std::set<std::string> names;
  for (const auto& f : fs::directory_iterator(e.dir)) names.insert(f.path().filename().string());
  CHECK(names == std::set<std::string>{"model.pt", "manifest.json", "manifest.sig"});

  const Cost cost = computeCost(e.space, e.config);
  CHECK(manifest.at("macs") == cost.macs);
  CHECK(manifest.at("params") == cost.params);
  CHECK(manifest.at("architecture").at("subnet") == e.config.toString(e.space));
  CHECK(manifest.at("architecture").at("preset") == "fmnist");
  CHECK(
      DesignSpace::fromToml(manifest.at("architecture").at("design_space_toml").get<std::string>())
          .toToml() == e.space.toToml());
  CHECK(manifest.at("input").at("shape") == nlohmann::json({1, 1, 28, 28}));
  CHECK(manifest.at("input").at("normalization").at("mean") == nlohmann::json(e.space.norm_mean));
  CHECK(manifest.at("input").at("normalization").at("std") == nlohmann::json(e.space.norm_std));
  CHECK(manifest.at("accuracy").at("val") == 0.71);
  CHECK(manifest.at("accuracy").at("test") == 0.70);
  CHECK(manifest.at("latency").at("predicted_ms") == 3.5);
  CHECK(manifest.at("latency").at("measured_ms") == 4.25);
  CHECK(manifest.at("target") == "phone-low");
  CHECK(manifest.at("constraints").at("max_macs") == 5000000);
  CHECK(manifest.at("source").at("round") == 60);
  CHECK_FALSE(manifest.at("sfn_version").get<std::string>().empty());
  CHECK(manifest.at("created_at").get<std::string>().ends_with("Z"));
  const auto& entry = manifest.at("files").at("model.pt");
  CHECK(entry.at("sha256") == toHex(sha256File(e.dir / "model.pt")));
  CHECK(entry.at("bytes") == fs::file_size(e.dir / "model.pt"));
  CHECK(manifest.at("files").size() == 1);
}

TEST_CASE("the signature covers the manifest; re-export; what export refuses") {
  ExportedModel e = exportRandomFrozen();
  // manifest.sig: one line of hex, an Ed25519 signature of the exact manifest bytes.
  std::string sig = readText(e.dir / "manifest.sig");
  REQUIRE(sig.ends_with("\n"));
  sig.pop_back();
  const auto sig_bytes = fromHex(sig);
  REQUIRE(sig_bytes.has_value());
  CHECK(verify(readText(e.dir / "manifest.json"), *sig_bytes, e.keys.publicKey));

  const VerifyReport report = verifyModelDir(e.dir, e.keys.publicKey);
  CAPTURE(describe(report));
  CHECK(report.ok());

  // Exporting again into the same folder replaces the model and still verifies.
  exportModel(*e.m, e.info, e.dir, e.keys.privateKey);
  CHECK(verifyModelDir(e.dir, e.keys.publicKey).ok());

  // Cost figures that disagree with the SubNet are a caller bug and are not signed.
  ModelInfo wrong = e.info;
  wrong.macs += 1;
  CHECK_THROWS_AS(exportModel(*e.m, wrong, e.tmp.path() / "wrong", e.keys.privateKey), ConfigError);
  // A folder with unrelated files is refused, and left as it was.
  fs::create_directories(e.tmp.path() / "busy");
  writeText(e.tmp.path() / "busy" / "readme.txt", "x");
  CHECK_THROWS_AS(exportModel(*e.m, e.info, e.tmp.path() / "busy", e.keys.privateKey), IoError);
  CHECK_FALSE(fs::exists(e.tmp.path() / "busy" / "model.pt"));
}

TEST_CASE("verifyModelDir detects a changed, missing or replaced model.pt") {
  const ExportedModel e = exportMinNet();
  REQUIRE(verifyModelDir(e.dir, e.keys.publicKey).ok());
  const fs::path model = e.dir / "model.pt";
  VerifyReport r;
  SUBCASE("one byte of model.pt changed") {
    std::string bytes = readText(model);
    bytes[bytes.size() / 2] ^= 0x01;
    writeText(model, bytes);
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "model.pt does not match its SHA-256"));
  }
  SUBCASE("model.pt truncated") {
    fs::resize_file(model, fs::file_size(model) - 10);
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "model.pt has"));
  }
  SUBCASE("model.pt missing") {
    fs::remove(model);
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "model.pt is missing"));
  }
  SUBCASE("model.pt replaced by a directory") {
    fs::remove(model);
    fs::create_directory(model);
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "model.pt is not a regular file"));
  }
  CAPTURE(describe(r));
  CHECK_FALSE(r.ok());
}

TEST_CASE("verifyModelDir detects a changed manifest or signature and names the file") {
  const ExportedModel e = exportMinNet();
  REQUIRE(verifyModelDir(e.dir, e.keys.publicKey).ok());
  const fs::path manifest = e.dir / "manifest.json";
  const fs::path sig = e.dir / "manifest.sig";
  VerifyReport r;
  SUBCASE("accuracy in manifest.json changed") {
    auto j = nlohmann::json::parse(readText(manifest));
    j["accuracy"]["test"] = 0.99;
    writeText(manifest, j.dump(2) + "\n");
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "manifest.sig is not a valid signature of manifest.json"));
  }
  SUBCASE("manifest.json changed and re-signed with another key") {
    auto j = nlohmann::json::parse(readText(manifest));
    j["files"]["model.pt"]["sha256"] = std::string(64, '0');
    const std::string text = j.dump(2) + "\n";
    writeText(manifest, text);
    writeText(sig, toHex(sign(text, generateKeyPair().privateKey)) + "\n");
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "manifest.sig is not a valid signature of manifest.json"));
    CHECK(mentions(r, "model.pt does not match its SHA-256"));
  }
  SUBCASE("manifest.json not JSON") {
    writeText(manifest, "{ not json");
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "manifest.json is not a valid JSON object"));
  }
  SUBCASE("manifest.json missing") {
    fs::remove(manifest);
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "manifest.json is missing"));
  }
  SUBCASE("one hex digit of manifest.sig changed") {
    std::string s = readText(sig);
    s[10] = s[10] == '0' ? '1' : '0';
    writeText(sig, s);
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "manifest.sig is not a valid signature"));
  }
  SUBCASE("manifest.sig truncated") {
    writeText(sig, readText(sig).substr(0, 100));
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "manifest.sig is not an Ed25519 signature"));
  }
  SUBCASE("manifest.sig missing") {
    fs::remove(sig);
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "manifest.sig is missing"));
  }
  CAPTURE(describe(r));
  CHECK_FALSE(r.ok());
}

TEST_CASE("verifyModelDir rejects extra files, a foreign key and a missing folder") {
  const ExportedModel e = exportMinNet();
  REQUIRE(verifyModelDir(e.dir, e.keys.publicKey).ok());
  VerifyReport r;
  SUBCASE("an extra file") {
    writeText(e.dir / "notes.txt", "hello");
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "unexpected file notes.txt"));
  }
  SUBCASE("an extra directory") {
    fs::create_directory(e.dir / "lib");
    r = verifyModelDir(e.dir, e.keys.publicKey);
    CHECK(mentions(r, "unexpected file lib"));
  }
  SUBCASE("wrong public key") {
    r = verifyModelDir(e.dir, generateKeyPair().publicKey);
    CHECK(mentions(r, "manifest.sig is not a valid signature"));
  }
  SUBCASE("folder missing") {
    r = verifyModelDir(e.tmp.path() / "nope", e.keys.publicKey);
    CHECK(mentions(r, "nope"));
  }
  CAPTURE(describe(r));
  CHECK_FALSE(r.ok());
}

TEST_CASE("Debian's python3-torch loads model.pt and reproduces the logits") {
  // /usr/bin/python3 explicitly: a pyenv python3 earlier on PATH has no torch.
  const std::string python = "/usr/bin/python3";
  const CommandResult probe = run(python + " -c 'import torch; print(torch.__version__)'");
  INFO("output: ", probe.output);
  if (probe.exit_code != 0)
    FAIL("python3-torch is missing: " << python
                                      << " cannot import torch (install the Debian package "
                                         "python3-torch; scripts/setup.sh and CI do)");

  const Images images = loadImages();
  const auto keys = generateKeyPair();
  TempDir tmp;
  std::string cases;
  int n = 0;
  Rng rng(9);
  for (BnMode bn : {BnMode::kFrozen, BnMode::kTrainable}) {
    const DesignSpace space = fmnist(bn);
    for (const SubNetConfig& config :
         {SubNetConfig::maxNet(space), SubNetConfig::random(space, rng)}) {
      SubNetModule m = makeModule(space, config, 100 + n, images);
      const fs::path case_dir = tmp.path() / ("case" + std::to_string(n++));
      exportModel(*m, infoFor(space, config), case_dir / "model", keys.privateKey);
      torch::NoGradGuard no_grad;
      const torch::Tensor logits = m->forward(images.eval);
      writeFloats(case_dir / "input.f32", images.eval);
      writeFloats(case_dir / "logits.f32", logits);
      writeText(case_dir / "case.json", nlohmann::json{{"input_shape", images.eval.sizes().vec()},
                                                       {"logits_shape", logits.sizes().vec()},
                                                       {"atol", 1e-5}}
                                            .dump());
      cases += " " + quoted(case_dir);
    }
  }
  const fs::path script = fs::path(SFN_SOURCE_DIR) / "tests/searcher/check_torchscript.py";
  REQUIRE(fs::exists(script));
  const CommandResult check = run(python + " " + quoted(script) + cases);
  INFO("check_torchscript.py output:\n", check.output);
  CHECK(check.exit_code == 0);
  MESSAGE(check.output);
}
