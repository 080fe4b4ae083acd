// Streaming overlap aggregation (DESIGN.md section 1 step 5).
//
// For every SuperNet element k: W[k] <- sum_c w_c theta_c[k] / sum_c w_c over the clients
// whose slice covers k; elements no client covers keep their value. add() touches only
// the slice's prefix boxes and keeps no reference to the update, so memory stays
// O(SuperNet) whatever the number of clients.
//
// Memory: one float32 sum per SuperNet element, plus a weight per "elastic element": slices
// are prefix boxes in the first two dimensions only (conv [:out, :in, :, :], linear
// [:, :in], vectors [:ch]), so the weight sum is kept at shape [d0, d1] and broadcast over
// kernel dimensions: about 1.1x the SuperNet in all. float32 sums (not float64) keep that
// bound; the relative error of a K-way average is ~K * 6e-8, well below SGD noise.
#pragma once

#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <vector>

namespace sfn {

class OverlapAccumulator {
 public:
  // Zeroed sums shaped like `supernet_spec` (usually superNetSpec(space)).
  explicit OverlapAccumulator(const std::vector<TensorSpec>& supernet_spec);

  // Adds `slice` (names/shapes must equal sliceSpec(space, config); throws ShapeError)
  // with weight `weight` >= 0. Non-averaged tensors (num_batches_tracked) are ignored.
  void add(const DesignSpace& space, const SubNetConfig& config, const NamedTensors& slice,
           double weight);
  // Adds a slice whose tensors are prefix boxes of the SuperNet tensors of the same name
  // (shapes checked against the SuperNet spec only). Used after add() validated the config.
  void addPrefixSlice(const NamedTensors& slice, double weight);
  // Adds ref + scale * (slice - ref) with weight `weight`, where ref is the slice's box of
  // `reference`, the SuperNet the slice was cut from (contiguous tensors in SuperNet order):
  // the update with its change from the SuperNet scaled down (norm clipping, sfn/fl/
  // change_norm.h). scale must be in (0, 1]; 1 is exactly addPrefixSlice. Throws ShapeError
  // (nothing added) for a slice or reference that does not fit, Error for a bad scale.
  void addScaledChange(const NamedTensors& slice, const NamedTensors& reference, double weight,
                       double scale);

  // Element-wise addition of another accumulator's sums and weights (hierarchical merge).
  void merge(const OverlapAccumulator& other);

  // Writes the weighted averages into `supernet` where covered; leaves the rest as is.
  void finishInto(NamedTensors& supernet) const;

  void reset();
  int updates() const { return updates_; }
  std::int64_t nbytes() const;  // memory held by sums and weights

 private:
  std::vector<TensorSpec> spec_;
  std::vector<at::Tensor> sums_;     // float32, full shape
  std::vector<at::Tensor> weights_;  // float32, shape [d0, d1] (or [d0])
  int updates_ = 0;
};

}  // namespace sfn
