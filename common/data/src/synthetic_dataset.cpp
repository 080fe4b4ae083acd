#include "sfn/data/dataset.h"

#include "sfn/core/error.h"
#include "sfn/core/rng.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

namespace sfn {
namespace {

// Separate streams so prototypes do not change when n changes.
constexpr std::uint64_t kPrototypeStream = 1;
constexpr std::uint64_t kSampleStream = 2;
// Prototypes are a small random patch tiled over the image. A tiled texture is
// translation-invariant, so conv + global-average-pool nets (the SuperNet's head) separate
// classes from local statistics alone; an i.i.d. per-pixel prototype would force them to
// memorize absolute positions.
constexpr int kPatch = 4;

// Box-Muller on our Rng rather than std::normal_distribution, whose algorithm is
// implementation-defined: the data must be identical on every platform for a seed.
class Gaussian {
 public:
  explicit Gaussian(Rng& rng) : rng_(rng) {}
  double operator()() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - rng_.uniform();  // (0, 1], so log() is finite
    const double u2 = rng_.uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * std::numbers::pi * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  Rng& rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace

Dataset makeSyntheticDataset(std::int64_t n, int channels, int image_size, int num_classes,
                             std::uint64_t seed, double noise) {
  if (n < 0) SFN_THROW(ConfigError, "synthetic dataset: n = ", n, " is negative");
  if (channels <= 0 || image_size <= 0 || num_classes <= 0) {
    SFN_THROW(ConfigError, "synthetic dataset: channels (", channels, "), image_size (", image_size,
              ") and num_classes (", num_classes, ") must be positive");
  }
  if (!(noise >= 0.0) || !std::isfinite(noise)) {
    SFN_THROW(ConfigError, "synthetic dataset: noise ", noise, " must be finite and >= 0");
  }

  const int patch = std::min(kPatch, image_size);
  const std::int64_t plane = std::int64_t{image_size} * image_size;
  const std::int64_t per_image = plane * channels;

  Rng proto_rng(seed, kPrototypeStream);
  Gaussian proto_noise(proto_rng);
  at::Tensor protos = at::empty({num_classes, channels, image_size, image_size}, at::kFloat);
  {
    float* p = protos.data_ptr<float>();
    std::vector<float> tile(static_cast<std::size_t>(patch * patch));
    for (std::int64_t kc = 0; kc < std::int64_t{num_classes} * channels; ++kc) {
      for (auto& v : tile) v = static_cast<float>(proto_noise());
      float* img = p + kc * plane;
      for (int y = 0; y < image_size; ++y) {
        for (int x = 0; x < image_size; ++x) {
          img[y * image_size + x] = tile[static_cast<std::size_t>((y % patch) * patch + x % patch)];
        }
      }
    }
  }

  Rng rng(seed, kSampleStream);
  Gaussian gauss(rng);
  // Balanced classes in shuffled order, so small sets still contain every class.
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    labels[i] = static_cast<std::int64_t>(i % static_cast<std::size_t>(num_classes));
  }
  for (std::size_t i = labels.size(); i > 1; --i) std::swap(labels[i - 1], labels[rng.below(i)]);

  Dataset ds;
  ds.name = "synthetic-" + std::to_string(num_classes) + "c-" + std::to_string(channels) + "x" +
            std::to_string(image_size) + "x" + std::to_string(image_size);
  ds.num_classes = num_classes;
  ds.images = at::empty({n, channels, image_size, image_size}, at::kFloat);
  ds.labels = at::empty({n}, at::kLong);
  float* out = ds.images.data_ptr<float>();
  const float* proto = protos.data_ptr<float>();
  std::int64_t* lab = ds.labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = labels[static_cast<std::size_t>(i)];
    lab[i] = c;
    const float* src = proto + c * per_image;
    float* dst = out + i * per_image;
    for (std::int64_t j = 0; j < per_image; ++j) {
      dst[j] = src[j] + static_cast<float>(noise * gauss());
    }
  }
  return ds;
}

}  // namespace sfn
