#include "sfn/fl/trimmed_mean_aggregator.h"

#include "sfn/core/error.h"
#include "prefix_box.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <utility>

namespace sfn {
namespace {

using fl_detail::isAveraged;
using fl_detail::RowLayout;

// One update's box inside one SuperNet tensor.
struct Cover {
  const float* data;  // contiguous box
  RowLayout layout;
  float weight;
  float scale;
};

struct Value {
  float v;
  float w;
};

// Sorts by value (when t > 0), keeping arrival order among equals (deterministic), then
// returns the weighted mean of values [t, m - t).
float trimmedMean(std::vector<Value>& vals, std::int64_t t) {
  for (std::size_t i = 1; t > 0 && i < vals.size(); ++i) {
    const Value x = vals[i];
    std::size_t j = i;
    for (; j > 0 && vals[j - 1].v > x.v; --j) vals[j] = vals[j - 1];
    vals[j] = x;
  }
  double sum = 0.0;
  double wsum = 0.0;
  for (std::size_t i = static_cast<std::size_t>(t); i + static_cast<std::size_t>(t) < vals.size();
       ++i) {
    sum += static_cast<double>(vals[i].w) * vals[i].v;
    wsum += vals[i].w;
  }
  // All kept weights 0 (possible with weight-0 updates): the unweighted mean of the kept ones.
  if (!(wsum > 0.0)) {
    sum = 0.0;
    for (std::size_t i = static_cast<std::size_t>(t); i + static_cast<std::size_t>(t) < vals.size();
         ++i)
      sum += vals[i].v;
    return static_cast<float>(sum / static_cast<double>(vals.size() - 2 * t));
  }
  return static_cast<float>(sum / wsum);
}

// Rows [begin, end) of one SuperNet tensor (laid out by `full`) from the covers of its
// elements; `dst` holds the SuperNet's values, read as the reference and overwritten.
void trimRows(const RowLayout& full, const std::vector<Cover>& covers, double trim_fraction,
              float* dst, std::int64_t begin, std::int64_t end) {
  std::vector<const Cover*> here;
  std::vector<std::int64_t> base;
  std::vector<Value> vals;
  for (std::int64_t r = begin; r < end; ++r) {
    for (std::int64_t c = 0; c < full.cols; ++c) {
      here.clear();
      base.clear();
      for (const Cover& cv : covers) {
        if (r < cv.layout.rows && c < cv.layout.cols) {
          here.push_back(&cv);
          base.push_back((r * cv.layout.cols + c) * cv.layout.inner);
        }
      }
      const auto m = static_cast<std::int64_t>(here.size());
      if (m == 0) continue;  // uncovered: keep the SuperNet's value
      const std::int64_t t =
          std::min(static_cast<std::int64_t>(std::floor(trim_fraction * static_cast<double>(m))),
                   (m - 1) / 2);
      float* out = dst + (r * full.cols + c) * full.inner;
      for (std::int64_t q = 0; q < full.inner; ++q) {
        const float ref = out[q];
        vals.clear();
        for (std::size_t u = 0; u < here.size(); ++u) {
          const float theta = here[u]->data[base[u] + q];
          const float s = here[u]->scale;
          vals.push_back({s == 1.0f ? theta : ref + s * (theta - ref), here[u]->weight});
        }
        out[q] = trimmedMean(vals, t);
      }
    }
  }
}

}  // namespace

TrimmedMeanAggregator::TrimmedMeanAggregator(const std::vector<TensorSpec>& supernet_spec,
                                             double trim_fraction)
    : spec_(supernet_spec), trim_fraction_(trim_fraction) {
  SFN_ENFORCE(trim_fraction >= 0.0 && trim_fraction < 0.5, Error, "trim fraction ", trim_fraction,
              " must be in [0, 0.5)");
}

void TrimmedMeanAggregator::add(NamedTensors slice, double weight, double scale) {
  SFN_ENFORCE(std::isfinite(weight) && weight >= 0.0, Error, "update weight ", weight,
              " must be finite and >= 0");
  SFN_ENFORCE(std::isfinite(scale) && scale > 0.0 && scale <= 1.0, Error, "change scale ", scale,
              " must be in (0, 1]");
  Held h;
  h.index = fl_detail::indexPrefixSlice(spec_, slice);
  for (auto& item : slice)
    if (item.tensor.defined() && !item.tensor.is_contiguous())
      item.tensor = item.tensor.contiguous();
  h.slice = std::move(slice);
  h.weight = weight;
  h.scale = scale;
  updates_.push_back(std::move(h));
}

void TrimmedMeanAggregator::finishInto(NamedTensors& supernet) const {
  fl_detail::checkSuperNet(spec_, supernet);
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    if (!isAveraged(spec_[i])) continue;
    std::vector<Cover> covers;
    for (const Held& h : updates_) {
      for (std::size_t k = 0; k < h.index.size(); ++k) {
        if (h.index[k] != i) continue;
        const at::Tensor& t = h.slice[k].tensor;
        covers.push_back(Cover{t.data_ptr<float>(), fl_detail::rowLayout(t.sizes(), spec_[i].shape),
                               static_cast<float>(h.weight), static_cast<float>(h.scale)});
      }
    }
    if (covers.empty()) continue;
    at::Tensor& target = supernet[i].tensor;
    at::Tensor out = target.is_contiguous() ? target : target.contiguous();
    const RowLayout full = fl_detail::rowLayout(at::IntArrayRef(spec_[i].shape), spec_[i].shape);
    float* dst = out.data_ptr<float>();
    at::parallel_for(0, full.rows, fl_detail::rowsPerChunk(full.rowElements()),
                     [&](std::int64_t begin, std::int64_t end) {
                       trimRows(full, covers, trim_fraction_, dst, begin, end);
                     });
    if (!out.is_same(target)) target.copy_(out);
  }
}

void TrimmedMeanAggregator::reset() { updates_.clear(); }

std::int64_t TrimmedMeanAggregator::nbytes() const {
  std::int64_t n = 0;
  for (const Held& h : updates_) n += h.slice.nbytes();
  return n;
}

}  // namespace sfn
