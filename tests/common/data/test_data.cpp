// Data layer: IDX reader, Fashion-MNIST, train/val split, synthetic data, partitioners.
#include "sfn/data/dataset.h"
#include "sfn/core/error.h"
#include "sfn/data/idx_reader.h"
#include "sfn/data/partitioner.h"

#include <torch/torch.h>
#include <zlib.h>

// After torch: Debian's LibTorch pulls in glog, whose CHECK would otherwise replace
// doctest's whenever the precompiled header is not force-included first.
#include <doctest/doctest.h>
#include "temp_dir.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using sfn::IndexList;
using sfn::Partition;

namespace {

using Bytes = std::vector<std::uint8_t>;

using sfn::test::TempDir;

void writeFile(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

// An IDX ubyte file with the given dims whose element i is i % 251.
Bytes makeIdx(const std::vector<std::uint32_t>& dims, std::uint8_t type = 0x08) {
  Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  std::uint64_t count = 1;
  for (const std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<std::uint8_t>(d >> shift));
    count *= d;
  }
  for (std::uint64_t i = 0; i < count; ++i) b.push_back(static_cast<std::uint8_t>(i % 251));
  return b;
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

// Runs readIdx and returns the IoError message, or "" if nothing was thrown.
std::string idxError(const std::string& path) {
  try {
    (void)sfn::readIdx(path);
  } catch (const sfn::IoError& e) {
    return e.what();
  }
  return "";
}

void checkIdxError(const std::string& path, const std::string& expected_phrase) {
  const std::string msg = idxError(path);
  INFO("path: ", path, "\nmessage: ", msg);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(msg.find(expected_phrase) != std::string::npos);
}

// Balanced labels 0..num_classes-1 in a scrambled order.
std::vector<std::int64_t> balancedLabels(std::int64_t n, int num_classes) {
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    labels[static_cast<std::size_t>(i)] = (i * 7919) % num_classes;
  return labels;
}

IndexList iota(std::int64_t n) {
  IndexList v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), std::int64_t{0});
  return v;
}

// Every index of `pool` in exactly one client list, and nothing else.
void checkExactlyOnce(const Partition& p, const IndexList& pool) {
  IndexList all;
  for (const auto& client : p) all.insert(all.end(), client.begin(), client.end());
  std::sort(all.begin(), all.end());
  IndexList expected = pool;
  std::sort(expected.begin(), expected.end());
  CHECK(all.size() == expected.size());
  CHECK(all == expected);
}

std::size_t minClientSize(const Partition& p) {
  std::size_t m = SIZE_MAX;
  for (const auto& c : p) m = std::min(m, c.size());
  return m;
}

}  // namespace

TEST_CASE("readIdx reads plain and gzip files") {
  TempDir dir;
  const Bytes raw = makeIdx({3, 4, 5});
  writeFile(dir.file("a-idx3-ubyte"), raw);
  writeFile(dir.file("a-idx3-ubyte.gz"), gzipBytes(raw));
  // gzip detected by magic, not only by suffix.
  writeFile(dir.file("gz-without-suffix"), gzipBytes(raw));

  for (const char* name : {"a-idx3-ubyte", "a-idx3-ubyte.gz", "gz-without-suffix"}) {
    CAPTURE(name);
    const sfn::IdxArray a = sfn::readIdx(dir.file(name));
    CHECK(a.dims == std::vector<std::int64_t>{3, 4, 5});
    REQUIRE(a.data.size() == 60);
    CHECK(a.data[0] == 0);
    CHECK(a.data[59] == 59);
  }

  // A gzip file of two concatenated members is one stream (as gunzip treats it).
  Bytes half1(raw.begin(), raw.begin() + 30);
  Bytes half2(raw.begin() + 30, raw.end());
  Bytes multi = gzipBytes(half1);
  const Bytes second = gzipBytes(half2);
  multi.insert(multi.end(), second.begin(), second.end());
  writeFile(dir.file("multi.gz"), multi);
  CHECK(sfn::readIdx(dir.file("multi.gz")).data.size() == 60);
}

// A valid IDX file, plain and gzipped, to cut up and corrupt.
struct MalformedIdxFixture {
  TempDir dir;
  const Bytes raw = makeIdx({10, 8, 8});
  const Bytes gz = gzipBytes(raw);

  // Writes `bytes` as "<stem>-idx3-ubyte" and gzipped as "<stem>.gz"; both must fail naming
  // the file and `expected_phrase`, so the check does not depend on the compression.
  void checkPlainAndGzip(const std::string& stem, const Bytes& bytes,
                         const std::string& expected_phrase) {
    writeFile(dir.file(stem + "-idx3-ubyte"), bytes);
    checkIdxError(dir.file(stem + "-idx3-ubyte"), expected_phrase);
    writeFile(dir.file(stem + ".gz"), gzipBytes(bytes));
    checkIdxError(dir.file(stem + ".gz"), expected_phrase);
  }
};

TEST_CASE_FIXTURE(MalformedIdxFixture, "readIdx names a missing, odd or truncated file") {
  SUBCASE("missing file") { checkIdxError(dir.file("nope-idx1-ubyte.gz"), "does not exist"); }

  SUBCASE("directory") { checkIdxError(dir.file(""), "not a regular file"); }

  SUBCASE("plain file truncated in the data") {
    writeFile(dir.file("t-idx3-ubyte"), Bytes(raw.begin(), raw.end() - 10));
    checkIdxError(dir.file("t-idx3-ubyte"), "truncated");
  }

  SUBCASE("plain file truncated in the header") {
    writeFile(dir.file("h-idx3-ubyte"), Bytes(raw.begin(), raw.begin() + 9));
    checkIdxError(dir.file("h-idx3-ubyte"), "truncated");
  }

  SUBCASE("gzip file truncated half way") {
    writeFile(dir.file("t.gz"), Bytes(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
    checkIdxError(dir.file("t.gz"), "truncated");
  }

  SUBCASE("gzip file missing only its trailer") {
    // All data is present but the CRC/length trailer is not: still a truncated file.
    writeFile(dir.file("trailer.gz"), Bytes(gz.begin(), gz.end() - 4));
    checkIdxError(dir.file("trailer.gz"), "truncated");
  }
}

TEST_CASE_FIXTURE(MalformedIdxFixture, "readIdx names a corrupt or mislabelled gzip file") {
  SUBCASE("every strict prefix of a gzip file is rejected, never crashes") {
    const std::string path = dir.file("prefix.gz");
    for (std::size_t len = 0; len < gz.size(); ++len) {
      writeFile(path, Bytes(gz.begin(), gz.begin() + static_cast<long>(len)));
      CAPTURE(len);
      CHECK(idxError(path).find(path) != std::string::npos);
    }
  }

  SUBCASE("corrupt gzip data") {
    Bytes bad = gz;
    for (std::size_t i = 12; i < bad.size() - 8; ++i) bad[i] ^= 0x5a;
    writeFile(dir.file("corrupt.gz"), bad);
    CHECK(idxError(dir.file("corrupt.gz")).find(dir.file("corrupt.gz")) != std::string::npos);
  }

  SUBCASE(".gz suffix on a file that is not gzip") {
    writeFile(dir.file("plain-named.gz"), raw);
    checkIdxError(dir.file("plain-named.gz"), "gzip");
  }
}

TEST_CASE_FIXTURE(MalformedIdxFixture, "readIdx names a malformed header") {
  SUBCASE("bad magic, plain and gzip") {
    Bytes bad = raw;
    bad[0] = 'P';
    bad[1] = 'K';
    checkPlainAndGzip("magic", bad, "bad magic");
  }

  SUBCASE("unsupported type code") {
    writeFile(dir.file("float-idx1"), makeIdx({4}, 0x0D));
    checkIdxError(dir.file("float-idx1"), "unsupported type code 0x0d");
    writeFile(dir.file("junk-idx1"), makeIdx({4}, 0x42));
    checkIdxError(dir.file("junk-idx1"), "unsupported type code 0x42");
  }

  SUBCASE("more data than the header declares") {
    Bytes longer = raw;
    longer.push_back(7);
    checkPlainAndGzip("long", longer, "size mismatch");
  }

  SUBCASE("absurd dims are rejected before allocating") {
    // 4 dims of 2^32-1 overflow 64 bits; (2^32-1) x (2^31-1) fits but no file holds 8 EiB.
    Bytes huge = {0, 0, 0x08, 4};
    for (int i = 0; i < 16; ++i) huge.push_back(0xff);
    writeFile(dir.file("overflow-idx"), huge);
    checkIdxError(dir.file("overflow-idx"), "overflow");
    Bytes big = {0, 0, 0x08, 2};
    for (const std::uint8_t b : {0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}) big.push_back(b);
    big.push_back(1);
    writeFile(dir.file("big-idx"), big);
    checkIdxError(dir.file("big-idx"), "truncated");
    writeFile(dir.file("big.gz"), gzipBytes(big));
    checkIdxError(dir.file("big.gz"), "size mismatch");
  }

  SUBCASE("zero dimensions") {
    writeFile(dir.file("zero-idx"), Bytes{0, 0, 0x08, 0});
    checkIdxError(dir.file("zero-idx"), "zero dimensions");
  }
}

TEST_CASE("Fashion-MNIST loads with the expected counts and normalization") {
  const std::string dir = sfn::defaultFashionMnistDir();
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz") &&
      !fs::exists(fs::path(dir) / "train-images-idx3-ubyte")) {
    MESSAGE("Fashion-MNIST not found under ", dir, "; skipping");
    return;
  }
  for (const bool train : {true, false}) {
    CAPTURE(train);
    const auto t0 = std::chrono::steady_clock::now();
    const sfn::Dataset ds = sfn::loadFashionMnist(dir, train);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE(ds.name, ": loaded ", ds.size(), " images in ", secs, " s");
    const std::int64_t n = train ? 60000 : 10000;
    CHECK(ds.name == (train ? "fashion-mnist-train" : "fashion-mnist-test"));
    CHECK(ds.num_classes == 10);
    REQUIRE(ds.size() == n);
    CHECK((ds.images.sizes() == at::IntArrayRef{n, 1, 28, 28}));
    CHECK((ds.images.scalar_type() == at::kFloat));
    CHECK((ds.labels.scalar_type() == at::kLong));

    const std::vector<std::int64_t> labels = ds.labelVector();
    REQUIRE(labels.size() == static_cast<std::size_t>(n));
    std::vector<std::int64_t> counts(10, 0);
    for (const std::int64_t y : labels) {
      REQUIRE(y >= 0);
      REQUIRE(y < 10);
      ++counts[static_cast<std::size_t>(y)];
    }
    for (const std::int64_t c : counts) CHECK(c == n / 10);

    // The normalization constants are the training set's statistics.
    const double lo = ds.images.min().item<double>();
    const double hi = ds.images.max().item<double>();
    CHECK(lo == doctest::Approx(-0.2860 / 0.3530).epsilon(1e-5));
    CHECK(hi == doctest::Approx((1.0 - 0.2860) / 0.3530).epsilon(1e-5));
    if (train) {
      CHECK(std::abs(ds.images.mean().item<double>()) < 0.01);
      CHECK(ds.images.std().item<double>() == doctest::Approx(1.0).epsilon(0.01));

      // The paper's non-IID settings on the real labels, for the record.
      const IndexList pool = sfn::splitTrainVal(n, 0.1, 1).train;
      for (const double alpha : {100.0, 1.0, 0.1}) {
        const auto t1 = std::chrono::steady_clock::now();
        const Partition p = sfn::partitionDirichlet(pool, labels, 10, 100, alpha, 7);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1)
                .count();
        checkExactlyOnce(p, pool);
        CHECK(minClientSize(p) >= 10);
        MESSAGE("FMNIST 100 clients alpha ", alpha, ": skew ", sfn::labelSkew(p, labels, 10),
                ", smallest client ", minClientSize(p), ", ", ms, " ms");
      }
    }
  }
}

TEST_CASE("loadFashionMnist reports a missing directory") {
  TempDir dir;
  try {
    (void)sfn::loadFashionMnist(dir.file("absent"), true);
    FAIL("expected IoError");
  } catch (const sfn::IoError& e) {
    CHECK(std::string(e.what()).find(dir.file("absent")) != std::string::npos);
  }
}

TEST_CASE("loadFashionMnist accepts uncompressed files and checks counts and labels") {
  TempDir dir;
  // 3 images of 28x28 and 3 labels, uncompressed names.
  writeFile(dir.file("t10k-images-idx3-ubyte"), makeIdx({3, 28, 28}));
  Bytes labels = {0, 0, 0x08, 1, 0, 0, 0, 3, 1, 9, 4};
  writeFile(dir.file("t10k-labels-idx1-ubyte"), labels);
  const sfn::Dataset ds = sfn::loadFashionMnist(dir.file(""), false);
  CHECK(ds.size() == 3);
  CHECK(ds.labelVector() == std::vector<std::int64_t>{1, 9, 4});

  SUBCASE("label out of range") {
    labels.back() = 10;
    writeFile(dir.file("t10k-labels-idx1-ubyte"), labels);
    CHECK_THROWS_AS((void)sfn::loadFashionMnist(dir.file(""), false), sfn::IoError);
  }
  SUBCASE("count mismatch") {
    writeFile(dir.file("t10k-labels-idx1-ubyte"), Bytes{0, 0, 0x08, 1, 0, 0, 0, 2, 1, 9});
    CHECK_THROWS_WITH_AS((void)sfn::loadFashionMnist(dir.file(""), false),
                         doctest::Contains("count mismatch"), sfn::IoError);
  }
  SUBCASE("wrong image size") {
    writeFile(dir.file("t10k-images-idx3-ubyte"), makeIdx({3, 32, 32}));
    CHECK_THROWS_AS((void)sfn::loadFashionMnist(dir.file(""), false), sfn::IoError);
  }
}

TEST_CASE("splitTrainVal is disjoint, covering and deterministic") {
  const sfn::TrainValSplit s = sfn::splitTrainVal(1000, 0.1, 42);
  CHECK(s.val.size() == 100);
  CHECK(s.train.size() == 900);
  CHECK(std::is_sorted(s.val.begin(), s.val.end()));
  CHECK(std::is_sorted(s.train.begin(), s.train.end()));
  IndexList all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  std::sort(all.begin(), all.end());
  CHECK(all == iota(1000));  // covering and, with the sizes above, disjoint

  const sfn::TrainValSplit again = sfn::splitTrainVal(1000, 0.1, 42);
  CHECK(again.val == s.val);
  CHECK(again.train == s.train);
  CHECK(sfn::splitTrainVal(1000, 0.1, 43).val != s.val);

  CHECK(sfn::splitTrainVal(10, 0.0, 1).train.size() == 10);
  CHECK(sfn::splitTrainVal(0, 0.5, 1).train.empty());
  CHECK_THROWS_AS((void)sfn::splitTrainVal(10, 1.0, 1), sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::splitTrainVal(10, -0.1, 1), sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::splitTrainVal(-1, 0.1, 1), sfn::ConfigError);
}

TEST_CASE("synthetic dataset: shapes, labels, determinism") {
  const sfn::Dataset a = sfn::makeSyntheticDataset(500, 3, 16, 10, 5);
  CHECK(a.size() == 500);
  CHECK(a.num_classes == 10);
  CHECK((a.images.sizes() == at::IntArrayRef{500, 3, 16, 16}));
  CHECK((a.images.scalar_type() == at::kFloat));
  CHECK((a.labels.scalar_type() == at::kLong));
  std::vector<std::int64_t> counts(10, 0);
  for (const std::int64_t y : a.labelVector()) {
    REQUIRE(y >= 0);
    REQUIRE(y < 10);
    ++counts[static_cast<std::size_t>(y)];
  }
  for (const std::int64_t c : counts) CHECK(c == 50);
  CHECK(std::isfinite(a.images.sum().item<double>()));

  const sfn::Dataset b = sfn::makeSyntheticDataset(500, 3, 16, 10, 5);
  CHECK(at::equal(a.images, b.images));
  CHECK(at::equal(a.labels, b.labels));
  const sfn::Dataset c = sfn::makeSyntheticDataset(500, 3, 16, 10, 6);
  CHECK_FALSE(at::equal(a.images, c.images));

  // The global torch RNG is neither used nor disturbed.
  torch::manual_seed(123);
  const double before = torch::rand({1}).item<double>();
  torch::manual_seed(123);
  (void)sfn::makeSyntheticDataset(10, 1, 8, 2, 1);
  CHECK(torch::rand({1}).item<double>() == before);

  CHECK_THROWS_AS((void)sfn::makeSyntheticDataset(10, 0, 8, 2, 1), sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::makeSyntheticDataset(10, 1, 8, 2, 1, -1.0), sfn::ConfigError);
}

TEST_CASE("synthetic dataset is learnable by a small conv + global-average-pool net") {
  const sfn::Dataset train = sfn::makeSyntheticDataset(2000, 1, 28, 10, 11);
  // Same seed -> same prototypes; the test samples come from the tail of a larger set.
  const sfn::Dataset big = sfn::makeSyntheticDataset(2500, 1, 28, 10, 11);
  const at::Tensor test_x = big.images.slice(0, 2000);
  const at::Tensor test_y = big.labels.slice(0, 2000);

  torch::manual_seed(0);
  torch::nn::Sequential net(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)), torch::nn::ReLU(),
      torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).stride(2).padding(1)),
      torch::nn::ReLU(), torch::nn::AdaptiveAvgPool2d(1), torch::nn::Flatten(),
      torch::nn::Linear(32, 10));
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(0.01));
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < 4; ++epoch) {
    for (std::int64_t i = 0; i < train.size(); i += 64) {
      const std::int64_t j = std::min(train.size(), i + 64);
      opt.zero_grad();
      const at::Tensor loss = torch::nn::functional::cross_entropy(
          net->forward(train.images.slice(0, i, j)), train.labels.slice(0, i, j));
      loss.backward();
      opt.step();
    }
  }
  torch::NoGradGuard no_grad;
  const double acc = net->forward(test_x).argmax(1).eq(test_y).to(at::kFloat).mean().item<double>();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("synthetic 10-class accuracy after 4 epochs: ", acc, " (", secs, " s)");
  CHECK(acc > 0.9);
}

TEST_CASE("IID and shard partitions place every sample exactly once") {
  const std::vector<std::int64_t> labels = balancedLabels(1003, 10);
  // A pool that skips some indices, as a train split would.
  IndexList pool;
  for (std::int64_t i = 0; i < 1003; ++i) {
    if (i % 9 != 4) pool.push_back(i);
  }

  const Partition iid = sfn::partitionIid(pool, 10, 3);
  REQUIRE(iid.size() == 10);
  checkExactlyOnce(iid, pool);
  for (const auto& c : iid) {
    CHECK(c.size() >= pool.size() / 10);
    CHECK(c.size() <= pool.size() / 10 + 1);
    CHECK(std::is_sorted(c.begin(), c.end()));
  }
  CHECK(sfn::partitionIid(pool, 10, 3) == iid);
  CHECK(sfn::partitionIid(pool, 10, 4) != iid);
  CHECK(sfn::labelSkew(iid, labels, 10) < 0.15);

  const Partition shards = sfn::partitionShards(pool, labels, 20, 2, 3);
  REQUIRE(shards.size() == 20);
  checkExactlyOnce(shards, pool);
  for (const auto& c : shards) {
    std::vector<bool> seen(10, false);
    for (const std::int64_t i : c)
      seen[static_cast<std::size_t>(labels[static_cast<std::size_t>(i)])] = true;
    // Two shards of sorted labels span at most 2 classes each.
    CHECK(std::count(seen.begin(), seen.end(), true) <= 4);
  }
  CHECK(sfn::partitionShards(pool, labels, 20, 2, 3) == shards);
  CHECK(sfn::labelSkew(shards, labels, 10) > 0.6);

  CHECK_THROWS_AS((void)sfn::partitionIid(pool, 0, 1), sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::partitionIid(IndexList{1, 2}, 3, 1), sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::partitionIid(IndexList{1, 2, 1}, 2, 1), sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::partitionShards(IndexList{1, 2, 3}, labels, 2, 2, 1),
                  sfn::ConfigError);
}

TEST_CASE("Dirichlet partition: coverage, minimum size, skew vs alpha, determinism") {
  const std::int64_t n = 6000;
  const std::vector<std::int64_t> labels = balancedLabels(n, 10);
  const IndexList pool = sfn::splitTrainVal(n, 0.1, 9).train;
  const std::int64_t clients = 50;

  std::vector<double> skews;
  for (const double alpha : {100.0, 1.0, 0.1}) {
    CAPTURE(alpha);
    const Partition p = sfn::partitionDirichlet(pool, labels, 10, clients, alpha, 17);
    REQUIRE(p.size() == static_cast<std::size_t>(clients));
    checkExactlyOnce(p, pool);
    CHECK(minClientSize(p) >= 10);
    for (const auto& c : p) CHECK(std::is_sorted(c.begin(), c.end()));
    skews.push_back(sfn::labelSkew(p, labels, 10));
    MESSAGE("alpha ", alpha, ": skew ", skews.back(), ", smallest client ", minClientSize(p));
  }
  CHECK(skews[0] < skews[1]);
  CHECK(skews[1] < skews[2]);
  CHECK(skews[0] < 0.15);
  CHECK(skews[2] > 0.5);

  const Partition a = sfn::partitionDirichlet(pool, labels, 10, clients, 0.5, 1);
  CHECK(sfn::partitionDirichlet(pool, labels, 10, clients, 0.5, 1) == a);
  CHECK(sfn::partitionDirichlet(pool, labels, 10, clients, 0.5, 2) != a);

  {
    sfn::PartitionOptions opts;
    opts.alpha = 0.5;
    CHECK(sfn::makePartition(opts, pool, labels, 10, clients, 1) == a);
    opts.scheme = "iid";
    CHECK(sfn::makePartition(opts, pool, labels, 10, clients, 1) ==
          sfn::partitionIid(pool, clients, 1));
    opts.scheme = "bogus";
    CHECK_THROWS_WITH_AS((void)sfn::makePartition(opts, pool, labels, 10, clients, 1),
                         doctest::Contains("bogus"), sfn::ConfigError);
  }

  // 100 samples cannot give 20 clients 10 each.
  CHECK_THROWS_WITH_AS((void)sfn::partitionDirichlet(iota(100), labels, 10, 20, 1.0, 1),
                       doctest::Contains("too small"), sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::partitionDirichlet(pool, labels, 10, clients, 0.0, 1),
                  sfn::ConfigError);
  CHECK_THROWS_AS((void)sfn::partitionDirichlet(IndexList{0, static_cast<std::int64_t>(n)}, labels,
                                                10, 1, 1.0, 1, 0),
                  sfn::ConfigError);
  // Feasible on paper but hopeless in practice: gives up with a clear error, not a hang.
  CHECK_THROWS_WITH_AS((void)sfn::partitionDirichlet(iota(200), labels, 10, 20, 0.01, 1),
                       doctest::Contains("attempts"), sfn::ConfigError);
}

TEST_CASE("labelSkew on known partitions") {
  const std::vector<std::int64_t> labels = {0, 1, 0, 1};
  CHECK(sfn::labelSkew({{0, 1}, {2, 3}}, labels, 2) == doctest::Approx(0.0));
  CHECK(sfn::labelSkew({{0, 2}, {1, 3}}, labels, 2) == doctest::Approx(0.5));
  CHECK(sfn::labelSkew({{0, 2}, {1, 3}, {}}, labels, 2) == doctest::Approx(0.5));
  CHECK(sfn::labelSkew({}, labels, 2) == 0.0);
  CHECK_THROWS_AS((void)sfn::labelSkew({{7}}, labels, 2), sfn::ConfigError);
}
