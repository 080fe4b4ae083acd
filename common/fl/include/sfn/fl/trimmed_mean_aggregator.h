// Coordinate-wise trimmed mean over the clients covering each SuperNet element: a robust
// alternative to OverlapAccumulator's weighted mean (round aggregation, robust.trim_fraction).
//
// For every element k covered by m updates: sort the m values, drop t = floor(f * m) from
// each end (at most (m - 1) / 2, so one value always stays), and write the weighted mean of
// the rest, each update with its round weight (the MaxNet's beta included). With f * m < 1
// nothing is trimmed: the element gets the plain weighted mean. Elements no update covers
// keep their value. A value may first have its change from the SuperNet scaled down (norm
// clipping): ref + scale * (theta - ref), ref being the SuperNet's value before the round.
//
// Cost, the price of needing all m values of an element at once: add() keeps each update's
// tensors (sharing their storage, no copy) until reset(), so memory is the round's update
// bytes, up to K x the SuperNet for K MaxNet updates, instead of OverlapAccumulator's 1.1 x;
// finishInto() sorts m values per covered element (insertion sort, m is small).
// bench_aggregate measures both against the plain accumulator.
#pragma once

#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_shapes.h"

#include <cstdint>
#include <vector>

namespace sfn {

class TrimmedMeanAggregator {
 public:
  // trim_fraction f in [0, 0.5).
  TrimmedMeanAggregator(const std::vector<TensorSpec>& supernet_spec, double trim_fraction);

  // Keeps `slice` (prefix boxes of the SuperNet tensors of the same names, in SuperNet order)
  // with weight >= 0 and change scale in (0, 1]. Throws ShapeError (nothing kept) for a slice
  // that does not fit, Error for a bad weight or scale.
  void add(NamedTensors slice, double weight, double scale = 1.0);

  // Writes the trimmed means into `supernet` (which must still hold the values the slices
  // were cut from: they are the reference of scaled changes) where covered.
  void finishInto(NamedTensors& supernet) const;

  void reset();
  int updates() const { return static_cast<int>(updates_.size()); }
  double trimFraction() const { return trim_fraction_; }
  std::int64_t nbytes() const;  // bytes of the updates held

 private:
  struct Held {
    NamedTensors slice;
    std::vector<std::size_t> index;  // SuperNet index of each slice tensor
    double weight = 0.0;
    double scale = 1.0;
  };
  std::vector<TensorSpec> spec_;
  double trim_fraction_;
  std::vector<Held> updates_;
};

}  // namespace sfn
