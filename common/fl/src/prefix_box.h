// Private to common/fl: how a slice tensor sits inside its SuperNet tensor, shared by the
// aggregators (overlap_accumulator.cpp, trimmed_mean_aggregator.cpp), the change measure
// (change_norm.cpp) and the rollback copy (covered_backup.cpp).
//
// SubNet slices are prefix boxes in the first two dimensions only (conv [:out, :in, :, :],
// linear [:, :in], vectors [:ch]), with whole kernel dimensions. So a box of shape `box`
// inside a contiguous tensor of shape `full` is `rows` runs of cols * inner contiguous
// floats: row r starts at r * full_cols * inner in the full tensor and at r * cols * inner
// in a contiguous slice; its [d0, d1] weights are the `cols` entries starting at
// r * full_cols. Vectors are a single row.
#pragma once

#include "sfn/core/error.h"
#include "sfn/model/named_tensors.h"
#include "sfn/model/shape_text.h"
#include "sfn/model/subnet_shapes.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace sfn::fl_detail {

// Tensors that take part in averaging. Scalars and bookkeeping buffers have no slice
// structure and no meaningful average, so they get neither sum nor weight storage.
inline bool isAveraged(const TensorSpec& spec) { return spec.averaged && !spec.shape.empty(); }

struct RowLayout {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t inner = 1;
  std::int64_t full_cols = 0;
  std::int64_t rowElements() const { return cols * inner; }
  std::int64_t fullRowElements() const { return full_cols * inner; }
};

inline RowLayout rowLayout(at::IntArrayRef box, const std::vector<std::int64_t>& full) {
  RowLayout l;
  if (box.size() == 1) {
    l.rows = 1;
    l.cols = box[0];
    l.full_cols = full[0];
    return l;
  }
  l.rows = box[0];
  l.cols = box[1];
  l.full_cols = full[1];
  for (std::size_t d = 2; d < box.size(); ++d) l.inner *= box[d];
  return l;
}

// Rows per parallel work item: ~256 KB of floats, large enough that the fork/join and
// per-item costs vanish next to the memory traffic, small enough to balance two threads.
constexpr std::int64_t kChunkElements = std::int64_t{1} << 16;

inline std::int64_t rowsPerChunk(std::int64_t row_elements) {
  return std::max<std::int64_t>(1, kChunkElements / std::max<std::int64_t>(1, row_elements));
}

// Index of `name` in `specs`, searching from `cursor` onwards and wrapping around. Slices
// arrive in canonical order, a subsequence of the SuperNet's, so the search is amortized
// O(1) per tensor without a name index. Returns specs.size() if absent.
inline std::size_t findSpec(const std::vector<TensorSpec>& specs, const std::string& name,
                            std::size_t& cursor) {
  const std::size_t n = specs.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (cursor + k) % n;
    if (specs[i].name == name) {
      cursor = i + 1;
      return i;
    }
  }
  return n;
}

// Checks that an averaged slice tensor is a float32 CPU prefix box of its SuperNet tensor.
inline void checkPrefixBox(const NamedTensor& item, const TensorSpec& full) {
  const at::Tensor& theta = item.tensor;
  SFN_ENFORCE(theta.defined() && theta.scalar_type() == at::kFloat && theta.device().is_cpu(),
              ShapeError, "slice tensor '", item.name, "' must be a float32 CPU tensor");
  const auto sizes = theta.sizes();
  bool fits = sizes.size() == full.shape.size();
  for (std::size_t d = 0; fits && d < sizes.size(); ++d) {
    // Weights are kept per [d0, d1] element, so trailing (kernel) dims must be whole.
    fits = d < 2 ? sizes[d] <= full.shape[d] : sizes[d] == full.shape[d];
  }
  SFN_ENFORCE(fits, ShapeError, "slice tensor '", item.name, "' of shape ", shapeText(sizes),
              " is not a prefix box of SuperNet shape ", shapeText(full.shape));
}

// The SuperNet index of every slice tensor, after checking them all (names known, averaged
// ones float32 prefix boxes), so that a refused slice is refused before anything changes.
inline std::vector<std::size_t> indexPrefixSlice(const std::vector<TensorSpec>& spec,
                                                 const NamedTensors& slice) {
  std::vector<std::size_t> index(slice.size());
  std::size_t cursor = 0;
  for (std::size_t k = 0; k < slice.size(); ++k) {
    const auto& item = slice[k];
    const std::size_t i = findSpec(spec, item.name, cursor);
    SFN_ENFORCE(i < spec.size(), ShapeError, "slice tensor '", item.name,
                "' is not a SuperNet tensor");
    index[k] = i;
    if (isAveraged(spec[i])) checkPrefixBox(item, spec[i]);
  }
  return index;
}

// The spec of a SuperNet's tensors as they are (names, shapes, float32 = averaged), for
// callers that are handed tensors rather than a spec.
inline std::vector<TensorSpec> specOf(const NamedTensors& tensors) {
  std::vector<TensorSpec> spec;
  spec.reserve(tensors.size());
  for (const auto& t : tensors) {
    const auto sizes = t.tensor.sizes();
    spec.push_back(TensorSpec{t.name, std::vector<std::int64_t>(sizes.begin(), sizes.end()),
                              t.tensor.scalar_type() == at::kFloat});
  }
  return spec;
}

// Checks that `supernet` holds float32 tensors of `spec`'s shapes under its names, in the
// same order, for every averaged entry: what the aggregators write into.
inline void checkSuperNet(const std::vector<TensorSpec>& spec, const NamedTensors& supernet) {
  SFN_ENFORCE(supernet.size() == spec.size(), ShapeError, "SuperNet has ", supernet.size(),
              " tensors, expected ", spec.size());
  for (std::size_t i = 0; i < spec.size(); ++i) {
    if (!isAveraged(spec[i])) continue;
    const at::Tensor& w = supernet[i].tensor;
    SFN_ENFORCE(supernet[i].name == spec[i].name && w.defined() && w.scalar_type() == at::kFloat &&
                    w.sizes() == at::IntArrayRef(spec[i].shape),
                ShapeError, "SuperNet tensor #", i, " must be '", spec[i].name,
                "', float32 of shape ", shapeText(spec[i].shape));
  }
}

}  // namespace sfn::fl_detail
