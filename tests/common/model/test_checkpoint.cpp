// Durable checkpoints: file format, corruption handling, CheckpointDir retention.
#include "sfn/core/error.h"
#include "sfn/io/crypto.h"
#include "sfn/model/checkpoint.h"
#include "sfn/model/named_tensors.h"

#include <torch/torch.h>

// After torch: Debian's LibTorch pulls in glog, whose CHECK would otherwise replace
// doctest's whenever the precompiled header is not force-included first.
#include <doctest/doctest.h>
#include "file_bytes.h"
#include "temp_dir.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;
using ByteVec = std::vector<std::uint8_t>;

namespace {

using sfn::test::readBytes;
using sfn::test::TempDir;
using sfn::test::writeBytes;

// float32 with awkward bit patterns (NaN payload, -0, denormal, inf), int64 extremes, a
// 0-d tensor, an empty tensor and a non-contiguous view.
sfn::NamedTensors sampleTensors() {
  torch::manual_seed(7);
  sfn::NamedTensors t;
  t.add("stem.conv.weight", torch::randn({8, 3, 3, 3}));
  auto special = torch::randn({5});
  auto* f = special.data_ptr<float>();
  f[0] = std::numeric_limits<float>::quiet_NaN();
  f[1] = -0.0f;
  f[2] = std::numeric_limits<float>::denorm_min();
  f[3] = -std::numeric_limits<float>::infinity();
  t.add("special", special);
  t.add("bn.num_batches_tracked", torch::tensor({std::numeric_limits<std::int64_t>::min(), -1L, 0L,
                                                 std::numeric_limits<std::int64_t>::max()}));
  t.add("scalar", torch::tensor(3.25f));
  t.add("empty", torch::zeros({0, 4}));
  t.add("transposed", torch::arange(12, torch::kLong).reshape({3, 4}).t());
  t.add("after.empty", torch::randn({3}));
  return t;
}

// A file in checkpoint format whose digest is correct but whose header is whatever the
// test wants, for checks that must hold even when the digest cannot catch the problem.
ByteVec craftCheckpoint(const std::string& header, const ByteVec& data) {
  ByteVec out = {'S', 'F', 'N', 'C', 'K', 'P', 'T', '1'};
  const auto h = static_cast<std::uint32_t>(header.size());
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(h >> shift));
  out.insert(out.end(), header.begin(), header.end());
  while (out.size() % 64 != 0) out.push_back(0);
  out.insert(out.end(), data.begin(), data.end());
  const auto digest = sfn::sha256(sfn::ByteView(out));
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

std::string readError(const fs::path& path) {
  try {
    (void)sfn::readCheckpoint(path);
  } catch (const sfn::IoError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ---- checkpoints -------------------------------------------------------------------------

TEST_CASE("checkpoint round trip is bit-exact, metadata included") {
  TempDir dir;
  const fs::path path = dir.file("model.sfn");
  const sfn::NamedTensors tensors = sampleTensors();
  const json metadata = {{"round", 17},
                         {"preset", "fmnist"},
                         {"rng", {{"state", "0123456789abcdef"}, {"draws", 123456789012345ULL}}},
                         {"metrics", {{"acc", 0.8125}, {"loss", 1e-30}}},
                         {"unicode", "\xce\xb2_t"},
                         {"history", json::array({1, 2, 3})}};
  sfn::writeCheckpoint(path, tensors, metadata);
  CHECK_FALSE(dir.hasEntryContaining(".tmp-"));
  CHECK(dir.names() == std::vector<std::string>{"model.sfn"});

  const sfn::Checkpoint back = sfn::readCheckpoint(path);
  CHECK(back.metadata == metadata);
  REQUIRE(back.tensors.size() == tensors.size());
  CHECK(back.tensors.bitEqual(tensors));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].name);
    CHECK(back.tensors[i].name == tensors[i].name);
    // Double parentheses: doctest cannot print c10::ScalarType or c10::Device.
    CHECK((back.tensors[i].tensor.scalar_type() == tensors[i].tensor.scalar_type()));
    CHECK(back.tensors[i].tensor.is_contiguous());
    CHECK((back.tensors[i].tensor.device() == torch::kCPU));
  }
  CHECK(back.tensors.at("scalar").dim() == 0);
  CHECK(back.tensors.at("scalar").item<float>() == 3.25f);
  CHECK(back.tensors.at("empty").sizes() == torch::IntArrayRef({0, 4}));

  // The layout promised by the header comment: magic, 64-byte aligned tensor data, digest.
  const ByteVec raw = readBytes(path);
  CHECK(std::string(raw.begin(), raw.begin() + 8) == "SFNCKPT1");
  const std::uint32_t h = raw[8] | raw[9] << 8 | raw[10] << 16 | raw[11] << 24;
  const json header = json::parse(raw.begin() + 12, raw.begin() + 12 + h);
  CHECK(header["format"] == 1);
  CHECK(header["tensors"].size() == tensors.size());
  const std::size_t dataStart = (12 + h + 63) / 64 * 64;
  for (const auto& entry : header["tensors"])
    CHECK((dataStart + entry["offset"].get<std::size_t>()) % 64 == 0);
  CHECK(header["tensors"][0]["dtype"] == "float32");
  CHECK(header["tensors"][2]["dtype"] == "int64");
  CHECK(raw.size() == dataStart + header["data_bytes"].get<std::size_t>() + 32);
  const auto digest = sfn::sha256(sfn::ByteView(raw).first(raw.size() - 32));
  CHECK(std::equal(digest.begin(), digest.end(), raw.end() - 32));

  // Returned tensors own their memory: changing one changes nothing else.
  back.tensors.at("special").zero_();
  CHECK(sfn::readCheckpoint(path).tensors.bitEqual(tensors));
}

TEST_CASE("checkpoint with no tensors and null metadata, then overwritten") {
  TempDir dir;
  const fs::path path = dir.file("c.sfn");
  sfn::writeCheckpoint(path, {}, nullptr);
  auto back = sfn::readCheckpoint(path);
  CHECK(back.tensors.empty());
  CHECK(back.metadata.is_null());

  sfn::NamedTensors one;
  one.add("w", torch::ones({2}));
  sfn::writeCheckpoint(path, one, {{"v", 2}});
  back = sfn::readCheckpoint(path);
  CHECK(back.tensors.bitEqual(one));
  CHECK(back.metadata["v"] == 2);
  CHECK_FALSE(dir.hasEntryContaining(".tmp-"));
}

TEST_CASE("checkpoint write rejects what it cannot store, leaving nothing behind") {
  TempDir dir;
  const fs::path path = dir.file("c.sfn");
  sfn::NamedTensors doubles;
  doubles.add("w", torch::ones({2}, torch::kDouble));
  CHECK_THROWS_WITH_AS(sfn::writeCheckpoint(path, doubles, {}), doctest::Contains("not supported"),
                       sfn::IoError);
  sfn::NamedTensors undefinedTensor;
  undefinedTensor.add("w", at::Tensor());
  CHECK_THROWS_AS(sfn::writeCheckpoint(path, undefinedTensor, {}), sfn::IoError);
  CHECK_THROWS_WITH_AS(sfn::writeCheckpoint(path, {}, {{"bad", "\xff\xfe"}}),
                       doctest::Contains("not valid JSON"), sfn::IoError);
  json deep = 1;
  for (int i = 0; i < 300; ++i) deep = json::array({deep});
  CHECK_THROWS_WITH_AS(sfn::writeCheckpoint(path, {}, deep), doctest::Contains("nests deeper"),
                       sfn::IoError);
  CHECK_THROWS_WITH_AS(sfn::writeCheckpoint(dir.file("missing/c.sfn"), {}, {}),
                       doctest::Contains("create temporary file"), sfn::IoError);
  CHECK(dir.names().empty());
}

// A good checkpoint's bytes, to cut and alter into bad.sfn.
struct CorruptCheckpointFixture {
  TempDir dir;
  const fs::path good = dir.file("good.sfn");
  const fs::path bad = dir.file("bad.sfn");
  const ByteVec raw = writeGood();

  ByteVec writeGood() const {
    sfn::NamedTensors tensors;
    tensors.add("w", torch::randn({64, 64}));
    tensors.add("n", torch::arange(100, torch::kLong));
    sfn::writeCheckpoint(good, tensors, {{"round", 3}});
    return readBytes(good);
  }

  // bad.sfn holding `bytes` must be refused with an IoError containing `phrase`.
  void expectRefused(const ByteVec& bytes, const char* phrase) const {
    writeBytes(bad, bytes);
    CHECK_THROWS_WITH_AS(sfn::readCheckpoint(bad), doctest::Contains(phrase), sfn::IoError);
  }
};

TEST_CASE_FIXTURE(CorruptCheckpointFixture, "truncated checkpoints raise IoError naming it") {
  SUBCASE("truncated to half") {
    expectRefused(ByteVec(raw.begin(), raw.begin() + raw.size() / 2), "truncated");
  }
  SUBCASE("truncated by the last byte") {
    expectRefused(ByteVec(raw.begin(), raw.end() - 1), "truncated");
  }
  SUBCASE("truncated inside the prefix, and empty") {
    expectRefused(ByteVec(raw.begin(), raw.begin() + 10), "truncated");
    expectRefused({}, "truncated");
  }
  SUBCASE("header length beyond the file") {
    ByteVec copy = raw;
    copy[11] = 0x7f;
    expectRefused(copy, "truncated");
  }
}

TEST_CASE_FIXTURE(CorruptCheckpointFixture, "altered checkpoints raise IoError") {
  SUBCASE("flipped byte in the middle") {
    ByteVec copy = raw;
    copy[copy.size() / 2] ^= 0x10;
    expectRefused(copy, "digest mismatch");
  }
  SUBCASE("flipped byte in the trailer") {
    ByteVec copy = raw;
    copy.back() ^= 0x01;
    expectRefused(copy, "digest mismatch");
  }
  SUBCASE("wrong magic") {
    ByteVec copy = raw;
    copy[7] = '2';
    expectRefused(copy, "bad magic");
  }
  SUBCASE("bytes appended") {
    ByteVec copy = raw;
    copy.push_back(0);
    writeBytes(bad, copy);
    CHECK_THROWS_AS(sfn::readCheckpoint(bad), sfn::IoError);
  }
}

TEST_CASE_FIXTURE(CorruptCheckpointFixture, "unreadable checkpoint paths raise IoError") {
  CHECK_THROWS_WITH_AS(sfn::readCheckpoint(dir.file("nope.sfn")), doctest::Contains("No such file"),
                       sfn::IoError);
  CHECK_THROWS_WITH_AS(sfn::readCheckpoint(dir.path()), doctest::Contains("not a regular file"),
                       sfn::IoError);
  // The error names the file, so a log line says which checkpoint is bad.
  writeBytes(bad, {});
  CHECK(readError(bad).find(bad.string()) != std::string::npos);
}

TEST_CASE("every single-byte flip and every truncation of a small checkpoint is rejected") {
  TempDir dir;
  sfn::NamedTensors tensors;
  tensors.add("a", torch::randn({3}));
  tensors.add("b", torch::tensor(int64_t{5}));
  sfn::writeCheckpoint(dir.file("good.sfn"), tensors, {{"k", "v"}});
  const ByteVec raw = readBytes(dir.file("good.sfn"));
  const fs::path bad = dir.file("bad.sfn");
  int accepted = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    ByteVec copy = raw;
    copy[i] ^= 0x04;
    writeBytes(bad, copy);
    if (readError(bad).empty()) ++accepted;
    writeBytes(bad, ByteVec(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(i)));
    if (readError(bad).empty()) ++accepted;
  }
  CHECK(accepted == 0);
}

TEST_CASE("headers with a valid digest are still validated") {
  TempDir dir;
  const fs::path path = dir.file("crafted.sfn");
  const ByteVec data(128, 0);
  const auto expectMalformed = [&](const std::string& header, const char* what) {
    CAPTURE(header);
    writeBytes(path, craftCheckpoint(header, data));
    const std::string msg = readError(path);
    CHECK(msg.find("malformed header") != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  };
  // A well-formed header around the given tensor directory.
  const auto withTensors = [](json tensors) {
    return json{{"format", 1},
                {"metadata", json::object()},
                {"data_bytes", 128},
                {"tensors", std::move(tensors)}}
        .dump();
  };
  const auto entry = [](const char* name, const char* dtype, json shape, std::uint64_t offset,
                        std::uint64_t length) {
    return json{{"name", name},
                {"dtype", dtype},
                {"shape", std::move(shape)},
                {"offset", offset},
                {"length", length}};
  };

  writeBytes(path, craftCheckpoint(withTensors({entry("w", "float32", {2, 2}, 64, 16)}), data));
  CHECK(sfn::readCheckpoint(path).tensors.at("w").sizes() == torch::IntArrayRef({2, 2}));

  expectMalformed("not json", "not valid JSON");
  expectMalformed("[1]", "not a JSON object");
  expectMalformed(R"({"format":2,"metadata":{},"data_bytes":128,"tensors":[]})", "version 2");
  expectMalformed(R"({"format":1,"metadata":{},"data_bytes":64,"tensors":[]})", "data_bytes");
  expectMalformed(R"({"format":1,"data_bytes":128,"tensors":[]})", "metadata");
  expectMalformed(withTensors({entry("w", "float64", {2}, 0, 16)}), "unsupported dtype");
  expectMalformed(withTensors({entry("w", "float32", {2, 3}, 0, 16)}), "need 24 bytes");
  expectMalformed(withTensors({entry("w", "float32", {std::uint64_t{1} << 62, 4}, 0, 16)}),
                  "overflows");
  expectMalformed(withTensors({entry("w", "float32", {-2}, 0, 16)}), "not a size");
  expectMalformed(withTensors({entry("w", "float32", {32}, 64, 128)}), "outside the data section");
  expectMalformed(withTensors({entry("w", "float32", {4}, 8, 16)}), "aligned");
  expectMalformed(
      withTensors({entry("a", "float32", {32}, 0, 128), entry("b", "float32", {32}, 0, 128)}),
      "overlaps");
  expectMalformed(withTensors({json{{"name", 7}}}), "name");
  expectMalformed(std::string(1000, '[') + std::string(1000, ']'), "nests deeper");
}

// ---- CheckpointDir -----------------------------------------------------------------------

namespace {

// Saves rounds 1..5, each holding its round number, checking that each becomes latest().
void saveFiveRounds(sfn::CheckpointDir& ckpts, const fs::path& dir) {
  for (std::uint64_t round = 1; round <= 5; ++round) {
    sfn::NamedTensors t;
    t.add("w", torch::full({4}, static_cast<float>(round)));
    const fs::path written = ckpts.save(round, t, {{"round", round}});
    CHECK(written == dir / sfn::CheckpointDir::fileName(round));
    REQUIRE(ckpts.latest().has_value());
    CHECK(*ckpts.latest() == written);
  }
}

}  // namespace

TEST_CASE("CheckpointDir keeps the newest N and latest() points to the newest") {
  TempDir root;
  const fs::path dir = root.file("ckpts");
  sfn::CheckpointDir ckpts(dir, 3);
  CHECK_FALSE(ckpts.latest().has_value());  // directory does not exist yet
  CHECK(ckpts.rounds().empty());
  CHECK(sfn::CheckpointDir::fileName(42) == "ckpt-000042.sfn");
  CHECK(sfn::CheckpointDir::fileName(1234567) == "ckpt-1234567.sfn");

  saveFiveRounds(ckpts, dir);
  CHECK(ckpts.rounds() == std::vector<std::uint64_t>{3, 4, 5});
  const ByteVec pointer = readBytes(dir / "latest");
  CHECK(std::string(pointer.begin(), pointer.end()) == "ckpt-000005.sfn\n");
  const auto back = sfn::readCheckpoint(*ckpts.latest());
  CHECK(back.metadata["round"] == 5);
  CHECK(back.tensors.at("w")[0].item<float>() == 5.0f);

  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"ckpt-000003.sfn", "ckpt-000004.sfn", "ckpt-000005.sfn",
                                          "latest"});
}

TEST_CASE("CheckpointDir survives a bad pointer, an interrupted save and stale temp files") {
  TempDir root;
  const fs::path dir = root.file("ckpts");
  sfn::CheckpointDir ckpts(dir, 3);
  saveFiveRounds(ckpts, dir);

  SUBCASE("missing or bogus pointer falls back to the highest round") {
    fs::remove(dir / "latest");
    CHECK(*ckpts.latest() == dir / "ckpt-000005.sfn");
    writeBytes(dir / "latest", {'.', '.', '/', 'x'});
    CHECK(*ckpts.latest() == dir / "ckpt-000005.sfn");
    writeBytes(dir / "latest", {'c', 'k', 'p', 't', '-', '9', '.', 's', 'f', 'n'});
    CHECK(*ckpts.latest() == dir / "ckpt-000005.sfn");
  }
  SUBCASE("pointer wins over a higher round it does not name") {
    // e.g. a crash after ckpt-6 was renamed into place but before `latest` was updated.
    sfn::writeCheckpoint(dir / "ckpt-000006.sfn", {}, {});
    CHECK(*ckpts.latest() == dir / "ckpt-000005.sfn");
  }
  SUBCASE("the checkpoint just written is kept even if it is not among the newest") {
    ckpts.save(1, {}, {{"round", 1}});
    CHECK(ckpts.rounds() == std::vector<std::uint64_t>{1, 3, 4, 5});
    CHECK(*ckpts.latest() == dir / "ckpt-000001.sfn");
  }
  SUBCASE("temporary files of dead writers are removed, our own are not") {
    // No process can have this pid (above the kernel's pid_max limit of 2^22).
    writeBytes(dir / "ckpt-000006.sfn.tmp-1073741823-1073741823", {1});
    writeBytes(dir / "latest.tmp-1073741823-7", {1});
    const std::string ours = "ckpt-000007.sfn.tmp-" + std::to_string(::getpid()) + "-999999999";
    writeBytes(dir / ours, {1});
    writeBytes(dir / "unrelated.tmp-1073741823-1", {1});
    ckpts.save(6, {}, {});
    CHECK_FALSE(fs::exists(dir / "ckpt-000006.sfn.tmp-1073741823-1073741823"));
    CHECK_FALSE(fs::exists(dir / "latest.tmp-1073741823-7"));
    CHECK(fs::exists(dir / ours));
    CHECK(fs::exists(dir / "unrelated.tmp-1073741823-1"));
  }
}

TEST_CASE("CheckpointDir rejects keep = 0") {
  CHECK_THROWS_AS(sfn::CheckpointDir("x", 0), sfn::ConfigError);
}
