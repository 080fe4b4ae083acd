#include "sfn/fl/change_norm.h"

#include "prefix_box.h"

#include <ATen/Parallel.h>

#include <deque>

namespace sfn {
namespace {

using fl_detail::RowLayout;

constexpr std::int64_t kParallelElements = std::int64_t{1} << 22;

// sum (t - r)^2 over [0, n), in double. Eight independent partial sums let the compiler
// vectorize without reassociating a single sum (which it may not do for floating point),
// and make the result independent of how the rows are split between threads.
__attribute__((target_clones("avx512f", "avx2", "default"))) double sumSquaredChange(
    const float* __restrict__ t, const float* __restrict__ r, std::int64_t n) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const double d = static_cast<double>(t[j + l]) - static_cast<double>(r[j + l]);
      acc[l] += d * d;
    }
  }
  for (; j < n; ++j) {
    const double d = static_cast<double>(t[j]) - static_cast<double>(r[j]);
    acc[0] += d * d;
  }
  double s = 0.0;
  for (double a : acc) s += a;
  return s;
}

// One parallel work item: rows [row_begin, row_end) of slice tensor `k`.
struct Chunk {
  std::size_t k;  // index into ChangeNorm::tensors
  const float* theta;
  const float* ref;
  RowLayout layout;
  std::int64_t row_begin;
  std::int64_t row_end;
};

double chunkSum(const Chunk& ch) {
  const std::int64_t n = ch.layout.rowElements();
  double s = 0.0;
  for (std::int64_t r = ch.row_begin; r < ch.row_end; ++r)
    s += sumSquaredChange(ch.theta + r * n, ch.ref + r * ch.layout.fullRowElements(), n);
  return s;
}

}  // namespace

ChangeNorm measureChange(const NamedTensors& slice, const NamedTensors& supernet) {
  const std::vector<TensorSpec> spec = fl_detail::specOf(supernet);
  const std::vector<std::size_t> index = fl_detail::indexPrefixSlice(spec, slice);
  ChangeNorm out;
  // Contiguous copies of (unusual) strided inputs; a deque, so earlier ones stay in place.
  std::deque<at::Tensor> keep;
  std::vector<Chunk> chunks;
  for (std::size_t k = 0; k < slice.size(); ++k) {
    const std::size_t i = index[k];
    if (!fl_detail::isAveraged(spec[i])) continue;
    const at::Tensor* theta = &slice[k].tensor;
    const at::Tensor* ref = &supernet[i].tensor;
    if (!theta->is_contiguous()) theta = &keep.emplace_back(theta->contiguous());
    if (!ref->is_contiguous()) ref = &keep.emplace_back(ref->contiguous());
    const RowLayout layout = fl_detail::rowLayout(theta->sizes(), spec[i].shape);
    const std::size_t t = out.tensors.size();
    out.tensors.push_back(TensorChange{i, slice[k].name, 0.0, theta->numel()});
    const std::int64_t step = fl_detail::rowsPerChunk(layout.rowElements());
    for (std::int64_t r = 0; r < layout.rows; r += step)
      chunks.push_back(Chunk{t, theta->data_ptr<float>(), ref->data_ptr<float>(), layout, r,
                             std::min(layout.rows, r + step)});
  }
  // Per-chunk sums, added up in chunk order afterwards: the same total on any thread count.
  std::vector<double> sums(chunks.size(), 0.0);
  auto run = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t c = begin; c < end; ++c)
      sums[static_cast<std::size_t>(c)] = chunkSum(chunks[static_cast<std::size_t>(c)]);
  };
  const auto count = static_cast<std::int64_t>(chunks.size());
  std::int64_t total = 0;
  for (const auto& t : out.tensors) total += t.elements;
  // A read-only pass runs at 10-30 GB/s on one core, so below ~16 MB waking the pool (a
  // fork/join that costs more than the pass when the other core is busy, as on a loaded
  // server) does not pay: measured by bench_aggregate's robust figures.
  if (total < kParallelElements) {
    run(0, count);
  } else {
    at::parallel_for(0, count, 1, run);
  }
  for (std::size_t c = 0; c < chunks.size(); ++c) out.tensors[chunks[c].k].sum_squares += sums[c];
  for (const auto& t : out.tensors) {
    out.sum_squares += t.sum_squares;
    out.elements += t.elements;
  }
  return out;
}

double clipScale(double rms, double clip_rms) {
  if (!(clip_rms > 0.0) || !(rms > clip_rms)) return 1.0;
  return clip_rms / rms;
}

}  // namespace sfn
