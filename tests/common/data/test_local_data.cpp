// Data layer, a device's own data: local file formats, SampleSource, normalize, CIFAR-10 as a
// run dataset and the cifar10 preset.
#include "sfn/core/error.h"
#include "sfn/data/data_source.h"
#include "sfn/data/dataset.h"
#include "sfn/data/local_data.h"
#include "sfn/data/sample_source.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <torch/serialize.h>
#include <torch/torch.h>
#include <zlib.h>

// After torch: Debian's LibTorch pulls in glog, whose CHECK would otherwise replace
// doctest's whenever the precompiled header is not force-included first.
#include <doctest/doctest.h>
#include "temp_dir.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using sfn::Dataset;
using sfn::LocalDataFormat;
using sfn::test::TempDir;

namespace {

using Bytes = std::vector<std::uint8_t>;

void writeBytes(const fs::path& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

void writeChars(const fs::path& path, const std::vector<char>& bytes) {
  writeBytes(path, Bytes(bytes.begin(), bytes.end()));
}

// Byte i of a test image array: every value 0..255 occurs, neighbours differ.
std::uint8_t pixelByte(std::size_t i) { return static_cast<std::uint8_t>((i * 37 + 11) % 256); }

// An IDX ubyte file with `dims` whose elements are `values`.
Bytes idxFile(const std::vector<std::uint32_t>& dims, const Bytes& values) {
  Bytes b = {0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (const std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<std::uint8_t>(d >> shift));
  }
  b.insert(b.end(), values.begin(), values.end());
  return b;
}

Bytes imageBytes(std::size_t count) {
  Bytes v(count);
  for (std::size_t i = 0; i < count; ++i) v[i] = pixelByte(i);
  return v;
}

Bytes gzipBytes(const Bytes& raw) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                       Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes out(deflateBound(&zs, static_cast<uLong>(raw.size())) + 64);
  zs.next_in = const_cast<Bytes::value_type*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  REQUIRE(rc == Z_STREAM_END);
  return out;
}

// Writes an IDX pair `<prefix>-images-idx3-ubyte` / `<prefix>-labels-idx1-ubyte` (+ ".gz"
// if gz) of n images h x w, with labels `labels`.
void writeIdxPair(const fs::path& dir, const std::string& prefix, std::uint32_t h, std::uint32_t w,
                  const Bytes& labels, bool gz = false) {
  const auto n = static_cast<std::uint32_t>(labels.size());
  const Bytes images = idxFile({n, h, w}, imageBytes(std::size_t{n} * h * w));
  const Bytes label_file = idxFile({n}, labels);
  const std::string suffix = gz ? ".gz" : "";
  writeBytes(dir / (prefix + "-images-idx3-ubyte" + suffix), gz ? gzipBytes(images) : images);
  writeBytes(dir / (prefix + "-labels-idx1-ubyte" + suffix),
             gz ? gzipBytes(label_file) : label_file);
}

// `labels.size()` CIFAR-10 records; record r's pixel p is pixelByte(first * 3072 + r * 3072 + p).
Bytes cifarRecords(const Bytes& labels, std::size_t first = 0) {
  Bytes out;
  for (std::size_t r = 0; r < labels.size(); ++r) {
    out.push_back(labels[r]);
    for (std::size_t p = 0; p < 3072; ++p) out.push_back(pixelByte((first + r) * 3072 + p));
  }
  return out;
}

// A uint8 tensor of `shape` whose element i is pixelByte(offset + i).
at::Tensor bytesOf(at::IntArrayRef shape, std::size_t offset = 0) {
  std::int64_t count = 1;
  for (const std::int64_t d : shape) count *= d;
  Bytes v(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = pixelByte(offset + i);
  return at::from_blob(v.data(), shape, at::kByte).clone();
}

// What the readers make of bytesOf(shape, offset): float32 byte / 255.
at::Tensor expectedImages(at::IntArrayRef shape, std::size_t offset = 0) {
  return bytesOf(shape, offset).to(at::kFloat).div_(255.0);
}

// The images hold exactly the expected pixels, and every byte comes back from them.
void checkPixels(const Dataset& d, at::IntArrayRef shape, std::size_t offset = 0) {
  REQUIRE(d.images.sizes() == shape);
  CHECK((d.images.scalar_type() == at::kFloat));
  CHECK(torch::equal(d.images, expectedImages(shape, offset)));
  CHECK(torch::equal(d.images.mul(255.0).round().to(at::kByte), bytesOf(shape, offset)));
}

at::Tensor longs(const std::vector<std::int64_t>& v) {
  return at::tensor(at::ArrayRef<std::int64_t>(v), at::kLong);
}

// The message of the IoError `fn` throws, or "" (and a failed check) if it throws none.
std::string ioError(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const sfn::IoError& e) {
    return e.what();
  }
  FAIL_CHECK("no IoError thrown");
  return "";
}

std::string configError(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const sfn::ConfigError& e) {
    return e.what();
  }
  FAIL_CHECK("no ConfigError thrown");
  return "";
}

// loadLocalData(path)'s IoError names `names` (file or folder names) and says `phrase`.
void checkLoadError(const fs::path& path, const std::vector<std::string>& names,
                    const std::string& phrase, LocalDataFormat format = LocalDataFormat::kAuto) {
  const std::string msg = ioError([&] { (void)sfn::loadLocalData(path.string(), format); });
  INFO("path: ", path.string(), "\nmessage: ", msg);
  for (const std::string& n : names) CHECK(msg.find(n) != std::string::npos);
  CHECK(msg.find(phrase) != std::string::npos);
}

std::vector<char> tensorFile(const std::vector<std::pair<std::string, at::Tensor>>& entries) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [key, value] : entries) dict.insert(key, value);
  return torch::pickle_save(c10::IValue(dict));
}

// Written by Python (PyTorch 1.13) with
//   x = (torch.arange(24) * 7 % 256).to(torch.uint8).reshape(2, 3, 2, 2)
//   torch.save({"images": x, "labels": torch.tensor([3, 0])}, "data.pt")
// so that the reader is checked against torch.save's own zip layout (an archive folder named
// after the file, records aligned to 64 bytes), not only against torch::pickle_save's.
constexpr const char* kPythonSavedHex =
    "504b0304000008080000000000000000000000000000000000000d001500646174612f646174612e706b6c46421100"
    "5a"
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a80027d7100285806000000696d61676573710163746f7263682e5f7574696c"
    "73"
    "0a5f72656275696c645f74656e736f725f76320a71022828580700000073746f72616765710363746f7263680a4279"
    "74"
    "6553746f726167650a71045801000000307105580300000063707571064b18747107514b00284b024b034b024b0274"
    "71"
    "08284b0c4b044b024b017471098963636f6c6c656374696f6e730a4f726465726564446963740a710a2952710b7471"
    "0c"
    "52710d58060000006c6162656c73710e68022828680363746f7263680a4c6f6e6753746f726167650a710f58010000"
    "00"
    "31711068064b02747111514b004b028571124b0185711389680a29527114747115527116752e504b070807da623506"
    "01"
    "000006010000504b0304000008080000000000000000000000000000000000000b004100646174612f646174612f30"
    "46"
    "423d005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "5a"
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a00070e151c232a31383f464d545b626970777e858c939aa1504b0708be3f62"
    "38"
    "1800000018000000504b0304000008080000000000000000000000000000000000000b002f00646174612f64617461"
    "2f"
    "3146422b005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "5a"
    "03000000000000000000000000000000504b0708a7ff73c51000000010000000504b03040000080800000000000000"
    "00"
    "000000000000000000000c003600646174612f76657273696f6e464232005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "5a"
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a330a504b0708d19e67550200000002"
    "00"
    "0000504b010200000000080800000000000007da623506010000060100000d00000000000000000000000000000000"
    "00"
    "646174612f646174612e706b6c504b0102000000000808000000000000be3f623818000000180000000b0000000000"
    "00"
    "0000000000000056010000646174612f646174612f30504b0102000000000808000000000000a7ff73c51000000010"
    "00"
    "00000b00000000000000000000000000e8010000646174612f646174612f31504b0102000000000808000000000000"
    "d1"
    "9e675502000000020000000c0000000000000000000000000060020000646174612f76657273696f6e504b06062c00"
    "00"
    "00000000001e032d00000000000000000004000000000000000400000000000000e700000000000000d20200000000"
    "00"
    "00504b060700000000b90300000000000001000000504b05060000000004000400e7000000d20200000000";

std::vector<char> fromHex(const std::string& hex) {
  std::vector<char> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

}  // namespace

TEST_CASE("local data formats parse and print") {
  for (const LocalDataFormat f : {LocalDataFormat::kAuto, LocalDataFormat::kIdx,
                                  LocalDataFormat::kCifar10, LocalDataFormat::kTensorFile}) {
    CHECK((sfn::parseLocalDataFormat(sfn::toString(f)) == f));
  }
  CHECK(std::string(sfn::toString(LocalDataFormat::kTensorFile)) == "torch");
  const std::string msg = configError([] { (void)sfn::parseLocalDataFormat("png"); });
  CHECK(msg.find("\"png\"") != std::string::npos);
}

TEST_CASE("loadLocalData reads an IDX folder, plain and gzip, idx3 and idx4") {
  for (const bool gz : {false, true}) {
    CAPTURE(gz);
    TempDir dir;
    writeIdxPair(dir.path(), "train", 4, 5, {2, 0, 7}, gz);
    for (const LocalDataFormat f : {LocalDataFormat::kAuto, LocalDataFormat::kIdx}) {
      const Dataset d = sfn::loadLocalData(dir.path().string(), f);
      CHECK(d.name == dir.path().string());
      checkPixels(d, {3, 1, 4, 5});
      CHECK(torch::equal(d.labels, longs({2, 0, 7})));
      CHECK(d.num_classes == 8);
    }
  }
  TempDir dir;
  writeBytes(dir.file("rgb-images-idx4-ubyte"), idxFile({2, 3, 4, 4}, imageBytes(96)));
  writeBytes(dir.file("rgb-labels-idx1-ubyte"), idxFile({2}, {1, 1}));
  const Dataset d = sfn::loadLocalData(dir.path().string());
  checkPixels(d, {2, 3, 4, 4});
  CHECK(torch::equal(d.labels, longs({1, 1})));
  CHECK(d.num_classes == 2);
}

TEST_CASE("an IDX folder with train and test pairs yields the train pair") {
  for (const char* test_prefix : {"t10k", "test"}) {
    CAPTURE(test_prefix);
    TempDir dir;
    writeIdxPair(dir.path(), "train", 3, 3, {5, 1, 0, 4});
    writeIdxPair(dir.path(), test_prefix, 3, 3, {9, 9});
    // A gzip copy beside its plain file is the same data; the plain one is read.
    writeIdxPair(dir.path(), "train", 3, 3, {8, 8, 8, 8}, /*gz=*/true);
    const Dataset d = sfn::loadLocalData(dir.path().string());
    checkPixels(d, {4, 1, 3, 3});
    CHECK(torch::equal(d.labels, longs({5, 1, 0, 4})));
  }
  // Two pairs and neither is the train pair: no guessing.
  TempDir dir;
  writeIdxPair(dir.path(), "phone", 3, 3, {1});
  writeIdxPair(dir.path(), "camera", 3, 3, {2});
  checkLoadError(dir.path(),
                 {dir.path().string(), "phone-images-idx3-ubyte", "camera-images-idx3-ubyte",
                  "camera-labels-idx1-ubyte"},
                 "several IDX");
}

TEST_CASE("IDX folder errors name the file or folder") {
  TempDir dir;
  const fs::path mismatch = dir.file("mismatch");
  fs::create_directory(mismatch);
  writeBytes(mismatch / "a-images-idx3-ubyte", idxFile({3, 2, 2}, imageBytes(12)));
  writeBytes(mismatch / "a-labels-idx1-ubyte", idxFile({2}, {0, 1}));
  checkLoadError(mismatch, {"a-images-idx3-ubyte", "a-labels-idx1-ubyte"}, "count mismatch");

  const fs::path truncated = dir.file("truncated");
  fs::create_directory(truncated);
  Bytes images = idxFile({3, 2, 2}, imageBytes(12));
  images.pop_back();
  writeBytes(truncated / "a-images-idx3-ubyte", images);
  writeBytes(truncated / "a-labels-idx1-ubyte", idxFile({3}, {0, 1, 2}));
  checkLoadError(truncated, {(truncated / "a-images-idx3-ubyte").string()}, "truncated");

  const fs::path flat = dir.file("flat");
  fs::create_directory(flat);
  writeBytes(flat / "a-images-idx3-ubyte", idxFile({3, 4}, imageBytes(12)));
  writeBytes(flat / "a-labels-idx1-ubyte", idxFile({3}, {0, 1, 2}));
  checkLoadError(flat, {(flat / "a-images-idx3-ubyte").string()}, "expected images of shape");

  const fs::path magic = dir.file("magic");
  fs::create_directory(magic);
  writeBytes(magic / "a-images-idx3-ubyte", {1, 2, 8, 3, 0, 0, 0, 0});
  writeBytes(magic / "a-labels-idx1-ubyte", idxFile({1}, {0}));
  checkLoadError(magic, {(magic / "a-images-idx3-ubyte").string()}, "bad magic");

  const fs::path no_labels = dir.file("no-labels");
  fs::create_directory(no_labels);
  writeBytes(no_labels / "a-images-idx3-ubyte", idxFile({1, 2, 2}, imageBytes(4)));
  checkLoadError(no_labels, {no_labels.string(), "a-images-idx3-ubyte"}, "*labels*idx1-ubyte");

  const fs::path empty = dir.file("empty");
  fs::create_directory(empty);
  writeBytes(empty / "a-images-idx3-ubyte", idxFile({0, 2, 2}, {}));
  writeBytes(empty / "a-labels-idx1-ubyte", idxFile({0}, {}));
  checkLoadError(empty, {empty.string()}, "no samples");

  checkLoadError(mismatch / "a-images-idx3-ubyte", {"a-images-idx3-ubyte"}, "not a folder",
                 LocalDataFormat::kIdx);
}

TEST_CASE("loadLocalData reads CIFAR-10 binary batches from a file or a folder") {
  TempDir dir;
  writeBytes(dir.file("batch.bin"), cifarRecords({9, 0, 4}));
  for (const LocalDataFormat f : {LocalDataFormat::kAuto, LocalDataFormat::kCifar10}) {
    const Dataset d = sfn::loadLocalData(dir.file("batch.bin").string(), f);
    CHECK(d.name == dir.file("batch.bin").string());
    checkPixels(d, {3, 3, 32, 32});
    CHECK(torch::equal(d.labels, longs({9, 0, 4})));
    CHECK(d.num_classes == 10);
    // Channel-major records: sample 1's blue pixel (y 5, x 7) is byte 2*1024 + 5*32 + 7.
    CHECK(d.images[1][2][5][7].item<float>() ==
          expectedImages({1}, 3072 + 2 * 1024 + 5 * 32 + 7)[0].item<float>());
  }

  const fs::path batches = dir.file("cifar-10-batches-bin");
  fs::create_directory(batches);
  writeBytes(batches / "data_batch_2.bin", cifarRecords({3, 4, 5}, 2));
  writeBytes(batches / "data_batch_1.bin", cifarRecords({1, 2}, 0));
  writeBytes(batches / "test_batch.bin", cifarRecords({6}, 5));
  writeBytes(batches / "batches.meta.txt", {'a', '\n'});
  const Dataset d = sfn::loadLocalData(batches.string());
  checkPixels(d, {5, 3, 32, 32});
  CHECK(torch::equal(d.labels, longs({1, 2, 3, 4, 5})));

  const fs::path others = dir.file("others");
  fs::create_directory(others);
  writeBytes(others / "b.bin", cifarRecords({8}, 1));
  writeBytes(others / "a.bin", cifarRecords({7}, 0));
  const Dataset o = sfn::loadLocalData(others.string(), LocalDataFormat::kCifar10);
  checkPixels(o, {2, 3, 32, 32});
  CHECK(torch::equal(o.labels, longs({7, 8})));
}

TEST_CASE("CIFAR-10 errors name the file") {
  TempDir dir;
  Bytes short_file = cifarRecords({1, 2});
  short_file.resize(short_file.size() - 1);
  writeBytes(dir.file("short.bin"), short_file);
  checkLoadError(dir.file("short.bin"), {dir.file("short.bin").string()}, "3073");
  writeBytes(dir.file("empty.bin"), {});
  checkLoadError(dir.file("empty.bin"), {dir.file("empty.bin").string()}, "is empty");

  const fs::path folder = dir.file("folder");
  fs::create_directory(folder);
  writeBytes(folder / "data_batch_1.bin", cifarRecords({1}));
  writeBytes(folder / "data_batch_2.bin", short_file);
  checkLoadError(folder, {(folder / "data_batch_2.bin").string()}, "not a whole number");

  const fs::path none = dir.file("none");
  fs::create_directory(none);
  writeBytes(none / "readme.txt", {'x'});
  checkLoadError(none, {none.string(), "readme.txt"}, "no CIFAR-10 .bin files",
                 LocalDataFormat::kCifar10);
}

TEST_CASE("loadLocalData reads torch.save dicts of uint8 or float tensors") {
  TempDir dir;
  writeChars(dir.file("u8.pt"),
             tensorFile({{"images", bytesOf({3, 4, 5})}, {"labels", longs({1, 0, 2})}}));
  const Dataset u = sfn::loadLocalData(dir.file("u8.pt").string());
  CHECK(u.name == dir.file("u8.pt").string());
  checkPixels(u, {3, 1, 4, 5});
  CHECK(torch::equal(u.labels, longs({1, 0, 2})));
  CHECK(u.num_classes == 3);

  // No .pt suffix: the zip magic identifies the file. Float pixels are taken as they are.
  const at::Tensor x = expectedImages({2, 3, 4, 4});
  writeChars(dir.file("float-data"),
             tensorFile({{"labels", longs({4, 1}).to(at::kInt)}, {"images", x}, {"note", x}}));
  for (const LocalDataFormat f : {LocalDataFormat::kAuto, LocalDataFormat::kTensorFile}) {
    const Dataset d = sfn::loadLocalData(dir.file("float-data").string(), f);
    checkPixels(d, {2, 3, 4, 4});
    CHECK((d.labels.scalar_type() == at::kLong));
    CHECK(torch::equal(d.labels, longs({4, 1})));
    CHECK(d.num_classes == 5);
  }

  writeChars(dir.file("python.pt"), fromHex(kPythonSavedHex));
  const Dataset p = sfn::loadLocalData(dir.file("python.pt").string());
  const at::Tensor python_x =
      (at::arange(24, at::kLong) * 7 % 256).to(at::kByte).reshape({2, 3, 2, 2});
  CHECK(torch::equal(p.images, python_x.to(at::kFloat).div_(255.0)));
  CHECK(torch::equal(p.labels, longs({3, 0})));
}

TEST_CASE("tensor file errors name the file and the key") {
  TempDir dir;
  const at::Tensor x = bytesOf({2, 3, 3});
  const at::Tensor y = longs({0, 1});
  const auto check = [&](const std::string& name,
                         const std::vector<std::pair<std::string, at::Tensor>>& entries,
                         const std::string& phrase) {
    CAPTURE(name);
    writeChars(dir.file(name), tensorFile(entries));
    checkLoadError(dir.file(name), {dir.file(name).string()}, phrase);
  };
  check("no-labels.pt", {{"images", x}}, "no \"labels\" entry");
  check("typo.pt", {{"image", x}, {"labels", y}}, "no \"images\" entry");
  check("double.pt", {{"images", x.to(at::kDouble)}, {"labels", y}}, "\"images\" has dtype");
  check("flat.pt", {{"images", x.flatten()}, {"labels", y}}, "\"images\" has shape");
  check("float-labels.pt", {{"images", x}, {"labels", y.to(at::kFloat)}}, "\"labels\" has dtype");
  check("label-shape.pt", {{"images", x}, {"labels", y.reshape({2, 1})}}, "\"labels\" has shape");
  check("count.pt", {{"images", x}, {"labels", longs({0, 1, 2})}}, "count mismatch");
  check("negative.pt", {{"images", x}, {"labels", longs({0, -2})}}, "label -2 of sample 1");
  check("unscaled.pt", {{"images", x.to(at::kFloat)}, {"labels", y}}, "must be in [0,1]");
  check("nan.pt",
        {{"images", x.to(at::kFloat)
                        .div(255)
                        .index_fill(1, longs({1}), std::numeric_limits<float>::quiet_NaN())},
         {"labels", y}},
        "must be in [0,1]");
  check("empty.pt", {{"images", x.narrow(0, 0, 0)}, {"labels", y.narrow(0, 0, 0)}}, "no samples");

  writeChars(dir.file("tensor.pt"), torch::pickle_save(c10::IValue(x)));
  checkLoadError(dir.file("tensor.pt"), {dir.file("tensor.pt").string()}, "expected a dict");
  std::vector<char> zip = tensorFile({{"images", x}, {"labels", y}});
  zip.resize(zip.size() / 2);
  writeChars(dir.file("cut.pt"), zip);
  checkLoadError(dir.file("cut.pt"), {dir.file("cut.pt").string()}, "cannot be read");
  // What torch.save(..., _use_new_zipfile_serialization=False) starts with.
  writeBytes(dir.file("legacy.pt"), {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc});
  checkLoadError(dir.file("legacy.pt"), {dir.file("legacy.pt").string()}, "not a zip archive");
}

TEST_CASE("loadLocalData says which formats it accepts") {
  TempDir dir;
  checkLoadError(dir.file("missing"), {dir.file("missing").string()}, "does not exist");
  writeBytes(dir.file("data.csv"), {'1', ',', '2'});
  checkLoadError(dir.file("data.csv"), {dir.file("data.csv").string()}, "accepted: ");
  const fs::path folder = dir.file("notes");
  fs::create_directory(folder);
  writeBytes(folder / "notes.txt", {'x'});
  checkLoadError(folder, {folder.string(), "notes.txt"}, "accepted: ");
  checkLoadError(folder, {folder.string()}, "not a regular file", LocalDataFormat::kTensorFile);
}

TEST_CASE("normalize: per channel, broadcast, and size checks") {
  Dataset d;
  d.name = "n";
  d.images = at::arange(12, at::kFloat).div_(16.0).reshape({2, 3, 1, 2});
  const at::Tensor before = d.images.clone();
  sfn::normalize(d, {0.5, 0.25, 0.0}, {0.5, 0.25, 2.0});
  const std::vector<double> m = {0.5, 0.25, 0.0};
  const std::vector<double> s = {0.5, 0.25, 2.0};
  for (std::int64_t c = 0; c < 3; ++c) {
    const at::Tensor want = before.select(1, c).sub(m[c]).div(s[c]);
    CHECK(torch::allclose(d.images.select(1, c), want, 0, 1e-7));
  }
  Dataset b;
  b.images = before.clone();
  sfn::normalize(b, {0.5}, {0.25});
  CHECK(torch::allclose(b.images, before.sub(0.5).div(0.25), 0, 1e-7));

  std::string msg = configError([&] { sfn::normalize(d, {0.1, 0.2}, {1.0}); });
  CHECK(msg.find("mean has 2 values") != std::string::npos);
  CHECK(msg.find("3 channels") != std::string::npos);
  msg = configError([&] { sfn::normalize(d, {0.1}, {1.0, 0.0, 1.0}); });
  CHECK(msg.find("std[1]") != std::string::npos);
  msg = configError([&] { sfn::normalize(d, {0.1}, {-1.0}); });
  CHECK(msg.find("std[0]") != std::string::npos);
  Dataset none;
  none.name = "none";
  msg = configError([&] { sfn::normalize(none, {0.1}, {1.0}); });
  CHECK(msg.find("'none'") != std::string::npos);
}

TEST_CASE("a device's own Fashion-MNIST copy, normalized, equals the server's bit for bit") {
  TempDir dir;
  writeIdxPair(dir.path(), "train", 28, 28, {3, 9, 0}, /*gz=*/true);
  writeIdxPair(dir.path(), "t10k", 28, 28, {1, 2});
  Dataset local = sfn::loadLocalData(dir.path().string());
  sfn::normalize(local, {0.2860}, {0.3530});
  const Dataset server = sfn::loadFashionMnist(dir.path().string(), /*train=*/true);
  CHECK(torch::equal(local.images, server.images));
  CHECK(torch::equal(local.labels, server.labels));
}

namespace {

// An app's samples held in memory, with switches for the mistakes materialize must catch.
class VectorSource : public sfn::SampleSource {
 public:
  VectorSource(sfn::SampleShape shape, std::vector<float> pixels, std::vector<std::int64_t> labels)
      : shape_(shape), pixels_(std::move(pixels)), labels_(std::move(labels)) {}

  std::int64_t size() const override { return static_cast<std::int64_t>(labels_.size()); }
  sfn::SampleShape shape() const override { return shape_; }
  std::int64_t read(std::int64_t index, std::span<float> pixels) const override {
    const auto i = static_cast<std::size_t>(index);
    const std::size_t n = skip_write_at == index ? pixels.size() / 2 : pixels.size();
    std::copy_n(pixels_.begin() + static_cast<std::ptrdiff_t>(i * pixels.size()), n,
                pixels.begin());
    return labels_[i];
  }

  std::int64_t skip_write_at = -1;  // this sample's read() leaves half its pixels unwritten

 private:
  sfn::SampleShape shape_;
  std::vector<float> pixels_;
  std::vector<std::int64_t> labels_;
};

std::vector<float> sourcePixels(std::size_t count) {
  std::vector<float> v(count);
  for (std::size_t i = 0; i < count; ++i) v[i] = static_cast<float>(pixelByte(i)) / 255.0F;
  return v;
}

std::string materializeError(const VectorSource& source) {
  return configError([&] { (void)sfn::materialize(source, "app"); });
}

}  // namespace

TEST_CASE("materialize copies a SampleSource and names the sample that is wrong") {
  const sfn::SampleShape shape{2, 3, 4};
  std::vector<float> pixels = sourcePixels(3 * 24);
  const VectorSource source(shape, pixels, {4, 0, 2});
  const Dataset d = sfn::materialize(source, "app");
  CHECK(d.name == "app");
  CHECK(d.images.sizes() == at::IntArrayRef({3, 2, 3, 4}));
  CHECK(torch::equal(d.images, at::from_blob(pixels.data(), {3, 2, 3, 4}, at::kFloat)));
  CHECK(torch::equal(d.labels, longs({4, 0, 2})));
  CHECK(d.num_classes == 5);

  std::string msg = materializeError(VectorSource(shape, pixels, {4, -3, 2}));
  CHECK(msg.find("sample 1 has label -3") != std::string::npos);
  VectorSource lazy(shape, pixels, {4, 0, 2});
  lazy.skip_write_at = 2;
  msg = materializeError(lazy);
  CHECK(msg.find("sample 2") != std::string::npos);
  CHECK(msg.find("not written") != std::string::npos);
  std::vector<float> bad = pixels;
  bad[24 + 5] = std::numeric_limits<float>::infinity();
  msg = materializeError(VectorSource(shape, bad, {4, 0, 2}));
  CHECK(msg.find("sample 1 has pixel value inf at offset 5") != std::string::npos);
  bad = pixels;
  bad[3] = 255.0F;
  CHECK(materializeError(VectorSource(shape, bad, {4, 0, 2})).find("sample 0") !=
        std::string::npos);
  CHECK(materializeError(VectorSource(shape, {}, {})).find("no samples") != std::string::npos);
  CHECK(materializeError(VectorSource({1, 0, 4}, pixels, {1})).find("1x0x4") != std::string::npos);
}

namespace {

const std::vector<double> kCifarMean = {0.4914, 0.4822, 0.4465};
const std::vector<double> kCifarStd = {0.2470, 0.2435, 0.2616};

// A miniature CIFAR-10 folder: data_batch_1..5.bin of 2 records each, test_batch.bin of 3.
void writeCifarFolder(const fs::path& dir) {
  for (std::size_t b = 0; b < 5; ++b) {
    const auto l = static_cast<std::uint8_t>(2 * b);
    writeBytes(dir / ("data_batch_" + std::to_string(b + 1) + ".bin"),
               cifarRecords({l, static_cast<std::uint8_t>(l + 1)}, 2 * b));
  }
  writeBytes(dir / "test_batch.bin", cifarRecords({7, 8, 9}, 10));
}

// `offset`: the pixel byte index the set's first record starts at (see cifarRecords).
void checkCifarNormalized(const Dataset& d, at::IntArrayRef shape, std::size_t offset) {
  REQUIRE(d.images.sizes() == shape);
  for (std::int64_t c = 0; c < 3; ++c) {
    const auto i = static_cast<std::size_t>(c);
    const at::Tensor raw = expectedImages(shape, offset).select(1, c);
    CHECK(
        torch::allclose(d.images.select(1, c), raw.sub(kCifarMean[i]).div(kCifarStd[i]), 0, 1e-6));
  }
}

}  // namespace

TEST_CASE("cifar10 as a run dataset: all batches, normalized, and a required data.dir") {
  TempDir dir;
  writeCifarFolder(dir.path());
  sfn::DataOptions opts;
  opts.dataset = "cifar10";
  opts.dir = dir.path().string();
  opts.val_fraction = 0.2;
  const sfn::DataBundle b = sfn::loadDataBundle(opts);
  CHECK(b.train.name == "cifar10-train");
  CHECK(b.train.num_classes == 10);
  CHECK(b.test.num_classes == 10);
  checkCifarNormalized(b.train, {10, 3, 32, 32}, 0);
  checkCifarNormalized(b.test, {3, 3, 32, 32}, 10 * 3072);
  CHECK(torch::equal(b.train.labels, at::arange(10, at::kLong)));
  CHECK(torch::equal(b.test.labels, longs({7, 8, 9})));
  CHECK(b.split.val.size() == 2);
  CHECK(b.split.train.size() == 8);

  opts.dir.clear();
  std::string msg = configError([&] { (void)sfn::loadDataBundle(opts); });
  CHECK(msg.find("data.dir is needed") != std::string::npos);
  opts.dataset = "mnist";
  msg = configError([&] { opts.validate(); });
  CHECK(msg.find("\"cifar10\"") != std::string::npos);
  CHECK(msg.find("\"mnist\"") != std::string::npos);

  opts.dataset = "cifar10";
  opts.dir = dir.path().string();
  fs::remove(dir.file("test_batch.bin"));
  msg = ioError([&] { (void)sfn::loadDataBundle(opts); });
  CHECK(msg.find(dir.file("test_batch.bin").string()) != std::string::npos);
  writeBytes(dir.file("test_batch.bin"), cifarRecords({1, 10}));
  msg = ioError([&] { (void)sfn::loadDataBundle(opts); });
  CHECK(msg.find("label 10") != std::string::npos);
}

TEST_CASE("cifar10 preset: MaxNet and MinNet map 3x32x32 batches to 10 logits") {
  const sfn::DesignSpace s = sfn::DesignSpace::preset("cifar10");
  CHECK(s.in_channels == 3);
  CHECK(s.image_size == 32);
  CHECK(s.norm_mean == kCifarMean);
  CHECK(s.norm_std == kCifarStd);
  const sfn::SuperNet net(s, 3);
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::rand({2, 3, 32, 32});
  for (const sfn::SubNetConfig& c : {sfn::SubNetConfig::maxNet(s), sfn::SubNetConfig::minNet(s)}) {
    sfn::SubNetModule m = net.buildModule(c);
    m->eval();
    const at::Tensor y = m->forward(x);
    CHECK(y.sizes() == at::IntArrayRef({2, 10}));
    CHECK(torch::isfinite(y).all().item<bool>());
  }
  const sfn::DesignSpace f = sfn::DesignSpace::preset("fmnist");
  const sfn::Cost cmax = sfn::computeCost(s, sfn::SubNetConfig::maxNet(s));
  const sfn::Cost cmin = sfn::computeCost(s, sfn::SubNetConfig::minNet(s));
  const sfn::Cost fmax = sfn::computeCost(f, sfn::SubNetConfig::maxNet(f));
  MESSAGE("MaxNet MACs: cifar10 " << cmax.macs << " (params " << cmax.params << "), fmnist "
                                  << fmax.macs << " (params " << fmax.params
                                  << "); cifar10 MinNet MACs " << cmin.macs);
  CHECK(cmax.macs > fmax.macs);
  CHECK(cmax.params == fmax.params + 2 * 9 * s.stem_width);  // only the stem sees 2 more channels
}
