#include "sfn/data/dataset.h"

#include "sfn/core/error.h"
#include "sfn/data/idx_reader.h"
#include "sfn/core/rng.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

namespace sfn {
namespace {

constexpr double kFmnistMean = 0.2860;
constexpr double kFmnistStd = 0.3530;
constexpr std::int64_t kFmnistSide = 28;
constexpr int kFmnistClasses = 10;
// Keeps the split stream independent of partitioners that get the same run seed.
constexpr std::uint64_t kSplitStream = 0x53504C4954ULL;  // "SPLIT"

// Distributions prefer the compressed name, as shipped by the upstream mirrors.
std::string findIdxFile(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  const fs::path gz = fs::path(dir) / (stem + ".gz");
  const fs::path plain = fs::path(dir) / stem;
  std::error_code ec;
  if (fs::exists(gz, ec)) return gz.string();
  if (fs::exists(plain, ec)) return plain.string();
  SFN_THROW(IoError, "Fashion-MNIST file missing: neither '", gz.string(), "' nor '",
            plain.string(), "' exists");
}

}  // namespace

std::vector<std::int64_t> Dataset::labelVector() const {
  if (!labels.defined()) return {};
  const at::Tensor l = labels.to(at::kLong).contiguous();
  const std::int64_t* p = l.data_ptr<std::int64_t>();
  return std::vector<std::int64_t>(p, p + l.numel());
}

std::string defaultFashionMnistDir() { return "/usr/share/datasets/fashion-mnist"; }

Dataset loadFashionMnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string image_path = findIdxFile(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = findIdxFile(dir, prefix + "-labels-idx1-ubyte");

  IdxArray images = readIdx(image_path);
  if (images.dims.size() != 3 || images.dims[1] != kFmnistSide || images.dims[2] != kFmnistSide) {
    SFN_THROW(IoError, "IDX file '", image_path, "': expected images of shape [N, 28, 28], got ",
              images.dims.size(), " dims");
  }
  IdxArray labels = readIdx(label_path);
  if (labels.dims.size() != 1) {
    SFN_THROW(IoError, "IDX file '", label_path, "': expected a 1-d label array, got ",
              labels.dims.size(), " dims");
  }
  const std::int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    SFN_THROW(IoError, "Fashion-MNIST count mismatch: '", image_path, "' holds ", n,
              " images but '", label_path, "' holds ", labels.dims[0], " labels");
  }
  const auto bad = std::find_if(labels.data.begin(), labels.data.end(),
                                [](std::uint8_t v) { return v >= kFmnistClasses; });
  if (bad != labels.data.end()) {
    SFN_THROW(IoError, "IDX file '", label_path, "': label ", static_cast<int>(*bad), " at index ",
              bad - labels.data.begin(), " is not in [0, 10)");
  }

  Dataset ds;
  ds.name = std::string("fashion-mnist-") + (train ? "train" : "test");
  ds.num_classes = kFmnistClasses;
  // from_blob only borrows the vectors; the conversions below allocate owning tensors.
  ds.images = at::from_blob(images.data.data(), {n, 1, kFmnistSide, kFmnistSide}, at::kByte)
                  .to(at::kFloat)
                  .div_(255.0)
                  .sub_(kFmnistMean)
                  .div_(kFmnistStd);
  ds.labels = at::from_blob(labels.data.data(), {n}, at::kByte).to(at::kLong);
  return ds;
}

TrainValSplit splitTrainVal(std::int64_t n, double val_fraction, std::uint64_t seed) {
  if (n < 0) SFN_THROW(ConfigError, "splitTrainVal: sample count ", n, " is negative");
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    SFN_THROW(ConfigError, "splitTrainVal: val_fraction ", val_fraction, " is not in [0, 1)");
  }
  IndexList perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), std::int64_t{0});
  Rng rng(seed, kSplitStream);
  // Fisher-Yates with our own Rng: std::shuffle's algorithm differs between standard
  // libraries, and the split must be the same on every machine of a federation.
  for (std::size_t i = perm.size(); i > 1; --i) {
    std::swap(perm[i - 1], perm[rng.below(i)]);
  }
  const auto n_val = static_cast<std::size_t>(std::llround(static_cast<double>(n) * val_fraction));
  TrainValSplit out;
  out.val.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(n_val));
  out.train.assign(perm.begin() + static_cast<std::ptrdiff_t>(n_val), perm.end());
  std::sort(out.val.begin(), out.val.end());
  std::sort(out.train.begin(), out.train.end());
  return out;
}

}  // namespace sfn
