#include "sfn/fl/overlap_accumulator.h"

#include "sfn/core/error.h"
#include "sfn/model/shape_text.h"
#include "prefix_box.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace sfn {
namespace {

using fl_detail::indexPrefixSlice;
using fl_detail::isAveraged;
using fl_detail::kChunkElements;
using fl_detail::RowLayout;
using fl_detail::rowLayout;
using fl_detail::rowsPerChunk;

// Weight storage shape: the elastic dimensions only (see the header's memory note).
std::vector<std::int64_t> weightShape(const std::vector<std::int64_t>& shape) {
  if (shape.size() == 1) return {shape[0]};
  return {shape[0], shape[1]};
}

// s[0:n) += w * t[0:n). Cloned per ISA because the build targets baseline x86-64 (SSE2):
// when a SuperNet fits in cache (fmnist), the wider AVX loads are what keeps this loop
// level with memcpy, which glibc already dispatches the same way.
__attribute__((target_clones("avx512f", "avx2", "default"))) void axpy(float* __restrict__ s,
                                                                       const float* __restrict__ t,
                                                                       std::int64_t n, float w) {
  for (std::int64_t j = 0; j < n; ++j) s[j] += w * t[j];
}

// s[0:n) += w * (r + c * (t - r))[0:n): the update's change from the SuperNet r, scaled by
// c (norm clipping), added back onto r. Only for c < 1; c == 1 takes axpy.
__attribute__((target_clones("avx512f", "avx2", "default"))) void axpyScaledChange(
    float* __restrict__ s, const float* __restrict__ t, const float* __restrict__ r, std::int64_t n,
    float w, float c) {
  for (std::int64_t j = 0; j < n; ++j) s[j] += w * (r[j] + c * (t[j] - r[j]));
}

// dst = sum / wsum for rows [begin, end) of a full-shape tensor, where wsum > 0. A true
// division, not a multiply by 1 / w: x / 1 == x exactly, so a single update with weight 1
// reproduces its input bit for bit.
void divideRows(const RowLayout& l, const float* sum, const float* wsum, float* dst,
                std::int64_t begin, std::int64_t end) {
  for (std::int64_t e = begin * l.cols; e < end * l.cols; ++e) {
    const float w = wsum[e];
    if (!(w > 0.0f)) continue;  // uncovered: keep the SuperNet's value
    for (std::int64_t q = e * l.inner; q < (e + 1) * l.inner; ++q) dst[q] = sum[q] / w;
  }
}

void fillNegativeZero(at::Tensor& t) {
  // -0.0 is the exact additive identity (-0 + x == x for every x, including +0 and -0),
  // whereas +0 + -0 == +0 would flip a -0 value; starting from -0 keeps one full-coverage update
  // with weight 1 bit-for-bit equal to its input.
  if (t.defined()) t.fill_(-0.0);
}

// One parallel work item of addPrefixSlice: rows [row_begin, row_end) of one tensor.
struct Chunk {
  const float* theta;
  float* sum;
  float* wsum;
  RowLayout layout;
  std::int64_t row_begin;
  std::int64_t row_end;
  const float* ref = nullptr;  // addScaledChange: the SuperNet tensor, laid out like `sum`
};

// The planning phase of addPrefixSlice: cuts every averaged tensor into row chunks, so the
// update runs as one parallel region over all tensors, not one ATen op per tensor: with ~2
// ops per tensor that is ~60 fork/joins per update, which on a busy 2-core server cost 10x
// the memory traffic itself (measured by bench_aggregate). Strided inputs are made
// contiguous into `contiguous`, which holds their storage for as long as the chunks; `total` gets
// the element count.
std::vector<Chunk> planChunks(const std::vector<TensorSpec>& spec,
                              const std::vector<at::Tensor>& sums,
                              const std::vector<at::Tensor>& weights, const NamedTensors& slice,
                              const std::vector<std::size_t>& index,
                              std::vector<at::Tensor>& contiguous, std::int64_t& total,
                              const NamedTensors* reference = nullptr) {
  std::vector<Chunk> chunks;
  for (std::size_t k = 0; k < slice.size(); ++k) {
    const std::size_t i = index[k];
    if (!isAveraged(spec[i])) continue;
    const at::Tensor* theta = &slice[k].tensor;
    if (!theta->is_contiguous()) {
      contiguous.push_back(theta->contiguous());
      theta = &contiguous.back();
    }
    const RowLayout layout = rowLayout(theta->sizes(), spec[i].shape);
    const std::int64_t step = rowsPerChunk(layout.rowElements());
    for (std::int64_t r = 0; r < layout.rows; r += step) {
      chunks.push_back(Chunk{theta->data_ptr<float>(), sums[i].data_ptr<float>(),
                             weights[i].data_ptr<float>(), layout, r,
                             std::min(layout.rows, r + step),
                             reference ? (*reference)[i].tensor.data_ptr<float>() : nullptr});
    }
    total += theta->numel();
  }
  return chunks;
}

// The hot loop: chunks [begin, end) of an update with weight w into their sums and weights.
void addChunks(const std::vector<Chunk>& chunks, std::int64_t begin, std::int64_t end, float w) {
  for (std::int64_t c = begin; c < end; ++c) {
    const Chunk& ch = chunks[static_cast<std::size_t>(c)];
    const std::int64_t n = ch.layout.rowElements();
    for (std::int64_t r = ch.row_begin; r < ch.row_end; ++r) {
      axpy(ch.sum + r * ch.layout.fullRowElements(), ch.theta + r * n, n, w);
      float* __restrict__ ws = ch.wsum + r * ch.layout.full_cols;
      for (std::int64_t j = 0; j < ch.layout.cols; ++j) ws[j] += w;
    }
  }
}

// addChunks for addScaledChange: every chunk has its reference.
void addScaledChunks(const std::vector<Chunk>& chunks, std::int64_t begin, std::int64_t end,
                     float w, float c) {
  for (std::int64_t k = begin; k < end; ++k) {
    const Chunk& ch = chunks[static_cast<std::size_t>(k)];
    const std::int64_t n = ch.layout.rowElements();
    for (std::int64_t r = ch.row_begin; r < ch.row_end; ++r) {
      const std::int64_t full = r * ch.layout.fullRowElements();
      axpyScaledChange(ch.sum + full, ch.theta + r * n, ch.ref + full, n, w, c);
      float* __restrict__ ws = ch.wsum + r * ch.layout.full_cols;
      for (std::int64_t j = 0; j < ch.layout.cols; ++j) ws[j] += w;
    }
  }
}

}  // namespace

OverlapAccumulator::OverlapAccumulator(const std::vector<TensorSpec>& supernet_spec)
    : spec_(supernet_spec) {
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(at::kCPU);
  sums_.resize(spec_.size());
  weights_.resize(spec_.size());
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    if (!isAveraged(spec_[i])) continue;
    sums_[i] = at::empty(spec_[i].shape, opts);
    fillNegativeZero(sums_[i]);
    weights_[i] = at::zeros(weightShape(spec_[i].shape), opts);
  }
}

void OverlapAccumulator::add(const DesignSpace& space, const SubNetConfig& config,
                             const NamedTensors& slice, double weight) {
  const std::vector<TensorSpec> expected = sliceSpec(space, config);
  SFN_ENFORCE(slice.size() == expected.size(), ShapeError, "slice of SubNet ",
              config.toString(space), " has ", slice.size(), " tensors, expected ",
              expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& got = slice[i];
    const auto& want = expected[i];
    SFN_ENFORCE(got.name == want.name, ShapeError, "slice tensor #", i, " is '", got.name,
                "', expected '", want.name, "'");
    SFN_ENFORCE(got.tensor.defined(), ShapeError, "slice tensor '", got.name, "' is undefined");
    SFN_ENFORCE(got.tensor.sizes() == at::IntArrayRef(want.shape), ShapeError, "slice tensor '",
                got.name, "' has shape ", shapeText(got.tensor.sizes()), ", expected ",
                shapeText(want.shape));
    if (want.averaged) {
      SFN_ENFORCE(got.tensor.scalar_type() == at::kFloat, ShapeError, "slice tensor '", got.name,
                  "' has dtype ", got.tensor.scalar_type(), ", expected float32");
    }
  }
  addPrefixSlice(slice, weight);
}

void OverlapAccumulator::addPrefixSlice(const NamedTensors& slice, double weight) {
  SFN_ENFORCE(std::isfinite(weight) && weight >= 0.0, Error, "update weight ", weight,
              " must be finite and >= 0");
  // Validate everything before touching any sum, so a rejected update leaves no trace.
  const std::vector<std::size_t> index = indexPrefixSlice(spec_, slice);
  std::vector<at::Tensor> contiguous;  // keeps copies of (unusual) strided inputs alive
  std::int64_t total = 0;
  const std::vector<Chunk> chunks =
      planChunks(spec_, sums_, weights_, slice, index, contiguous, total);
  const auto w = static_cast<float>(weight);
  auto run = [&](std::int64_t begin, std::int64_t end) { addChunks(chunks, begin, end, w); };
  const auto count = static_cast<std::int64_t>(chunks.size());
  if (total < 2 * kChunkElements) {
    run(0, count);  // too little work to be worth waking the pool
  } else {
    at::parallel_for(0, count, 1, run);
  }
  ++updates_;
}

void OverlapAccumulator::addScaledChange(const NamedTensors& slice, const NamedTensors& reference,
                                         double weight, double scale) {
  SFN_ENFORCE(std::isfinite(scale) && scale > 0.0 && scale <= 1.0, Error, "change scale ", scale,
              " must be in (0, 1]");
  if (scale == 1.0) {
    addPrefixSlice(slice, weight);  // bit for bit the unscaled update
    return;
  }
  SFN_ENFORCE(std::isfinite(weight) && weight >= 0.0, Error, "update weight ", weight,
              " must be finite and >= 0");
  fl_detail::checkSuperNet(spec_, reference);
  for (std::size_t i = 0; i < spec_.size(); ++i)
    SFN_ENFORCE(!isAveraged(spec_[i]) || reference[i].tensor.is_contiguous(), ShapeError,
                "reference tensor '", spec_[i].name, "' must be contiguous");
  const std::vector<std::size_t> index = indexPrefixSlice(spec_, slice);
  std::vector<at::Tensor> contiguous;
  std::int64_t total = 0;
  const std::vector<Chunk> chunks =
      planChunks(spec_, sums_, weights_, slice, index, contiguous, total, &reference);
  const auto w = static_cast<float>(weight);
  const auto c = static_cast<float>(scale);
  auto run = [&](std::int64_t begin, std::int64_t end) {
    addScaledChunks(chunks, begin, end, w, c);
  };
  const auto count = static_cast<std::int64_t>(chunks.size());
  if (total < 2 * kChunkElements) {
    run(0, count);
  } else {
    at::parallel_for(0, count, 1, run);
  }
  ++updates_;
}

void OverlapAccumulator::merge(const OverlapAccumulator& other) {
  SFN_ENFORCE(spec_.size() == other.spec_.size(), ShapeError, "cannot merge accumulators of ",
              spec_.size(), " and ", other.spec_.size(), " tensors");
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    const auto& a = spec_[i];
    const auto& b = other.spec_[i];
    SFN_ENFORCE(a.name == b.name && a.shape == b.shape && a.averaged == b.averaged, ShapeError,
                "cannot merge: tensor #", i, " is '", a.name, "' ", shapeText(a.shape),
                " here and '", b.name, "' ", shapeText(b.shape), " in the other accumulator");
  }
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    if (!sums_[i].defined()) continue;
    sums_[i].add_(other.sums_[i]);
    weights_[i].add_(other.weights_[i]);
  }
  updates_ += other.updates_;
}

void OverlapAccumulator::finishInto(NamedTensors& supernet) const {
  // Check all tensors first so a mismatch leaves the SuperNet untouched.
  std::vector<std::size_t> target(spec_.size());
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    if (!isAveraged(spec_[i])) continue;
    std::size_t j = i < supernet.size() && supernet[i].name == spec_[i].name ? i : supernet.size();
    for (std::size_t k = 0; j == supernet.size() && k < supernet.size(); ++k)
      if (supernet[k].name == spec_[i].name) j = k;
    SFN_ENFORCE(j < supernet.size(), ShapeError, "SuperNet lacks tensor '", spec_[i].name, "'");
    const at::Tensor& w = supernet[j].tensor;
    SFN_ENFORCE(w.defined() && w.scalar_type() == at::kFloat &&
                    w.sizes() == at::IntArrayRef(spec_[i].shape),
                ShapeError, "SuperNet tensor '", spec_[i].name, "' must be float32 of shape ",
                shapeText(spec_[i].shape));
    target[i] = j;
  }
  // In place, one tensor at a time, no temporaries (except for a strided SuperNet tensor).
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    if (!isAveraged(spec_[i])) continue;
    at::Tensor& target_tensor = supernet[target[i]].tensor;
    at::Tensor out = target_tensor.is_contiguous() ? target_tensor : target_tensor.contiguous();
    const RowLayout layout = rowLayout(at::IntArrayRef(spec_[i].shape), spec_[i].shape);
    const float* sum = sums_[i].data_ptr<float>();
    const float* wsum = weights_[i].data_ptr<float>();
    float* dst = out.data_ptr<float>();
    at::parallel_for(0, layout.rows, rowsPerChunk(layout.rowElements()),
                     [&](std::int64_t begin, std::int64_t end) {
                       divideRows(layout, sum, wsum, dst, begin, end);
                     });
    if (!out.is_same(target_tensor)) target_tensor.copy_(out);
  }
}

void OverlapAccumulator::reset() {
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    fillNegativeZero(sums_[i]);
    if (weights_[i].defined()) weights_[i].zero_();
  }
  updates_ = 0;
}

std::int64_t OverlapAccumulator::nbytes() const {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < spec_.size(); ++i) {
    if (sums_[i].defined()) n += static_cast<std::int64_t>(sums_[i].nbytes());
    if (weights_[i].defined()) n += static_cast<std::int64_t>(weights_[i].nbytes());
  }
  return n;
}

}  // namespace sfn
