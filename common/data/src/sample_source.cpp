#include "sfn/data/sample_source.h"

#include "sfn/core/error.h"
#include "sfn/data/local_data.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace sfn {
namespace {

// The pixel count of one sample, or 0 if a dimension is not positive.
std::int64_t samplePixels(const SampleShape& s) {
  if (s.channels < 1 || s.height < 1 || s.width < 1) return 0;
  return std::int64_t{s.channels} * s.height * s.width;
}

// Checks one sample just read; throws ConfigError naming it.
void checkSample(const std::string& name, std::int64_t index, std::int64_t label,
                 std::span<const float> pixels) {
  if (label < 0) {
    SFN_THROW(ConfigError, "sample source '", name, "': sample ", index, " has label ", label,
              ", must be >= 0");
  }
  if (label >= std::numeric_limits<int>::max()) {
    SFN_THROW(ConfigError, "sample source '", name, "': sample ", index, " has label ", label,
              ", too large for a class index");
  }
  const auto bad =
      std::find_if(pixels.begin(), pixels.end(), [](float v) { return !(v >= 0.0F && v <= 1.0F); });
  if (bad != pixels.end()) {
    SFN_THROW(ConfigError, "sample source '", name, "': sample ", index, " has pixel value ", *bad,
              " at offset ", bad - pixels.begin(),
              std::isnan(*bad) ? " (NaN: not written by read()?)" : "",
              "; pixels must be finite values in [0,1]");
  }
}

}  // namespace

Dataset materialize(const SampleSource& source, std::string name) {
  const SampleShape shape = source.shape();
  const std::int64_t per_sample = samplePixels(shape);
  if (per_sample == 0) {
    SFN_THROW(ConfigError, "sample source '", name, "': shape ", shape.channels, "x", shape.height,
              "x", shape.width, " (channels x height x width) must be positive in every dimension");
  }
  const std::int64_t n = source.size();
  if (n < 1) SFN_THROW(ConfigError, "sample source '", name, "' holds no samples (size ", n, ")");
  // NaN-filled so that pixels read() leaves unwritten fail the check instead of training.
  at::Tensor images = at::full({n, shape.channels, shape.height, shape.width},
                               std::numeric_limits<float>::quiet_NaN(), at::kFloat);
  at::Tensor labels = at::empty({n}, at::kLong);
  float* pixels = images.data_ptr<float>();
  std::int64_t* label_out = labels.data_ptr<std::int64_t>();
  std::int64_t max_label = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::span<float> sample(pixels + i * per_sample, static_cast<std::size_t>(per_sample));
    const std::int64_t label = source.read(i, sample);
    checkSample(name, i, label, sample);
    label_out[i] = label;
    max_label = std::max(max_label, label);
  }
  Dataset ds;
  ds.name = std::move(name);
  ds.images = std::move(images);
  ds.labels = std::move(labels);
  ds.num_classes = static_cast<int>(max_label) + 1;
  return ds;
}

}  // namespace sfn
