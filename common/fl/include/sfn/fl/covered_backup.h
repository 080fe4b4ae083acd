// The SuperNet elements a round may change, copied before aggregation so that the round can
// be undone exactly (the health guard's rollback, issue 13).
//
// Aggregation only writes elements some accepted update covers, and every slice is a prefix
// box, so per tensor the smallest prefix box holding all of the round's slices (their
// element-wise maximum shape) contains every element the round can change. save() copies
// those boxes; restoreInto() writes them back bit for bit. Memory: the boxes, at most one
// SuperNet (a round with a MaxNet update covers everything), nothing for uncovered tensors.
#pragma once

#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_shapes.h"

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace sfn {

class CoveredBackup {
 public:
  explicit CoveredBackup(const std::vector<TensorSpec>& supernet_spec);

  // Grows the covered boxes to hold `slice` (prefix boxes of the SuperNet tensors of the same
  // names, in SuperNet order). Throws ShapeError for a slice that does not fit.
  void cover(const NamedTensors& slice);
  // Copies the covered boxes of `supernet` (replacing an earlier copy).
  void save(const NamedTensors& supernet);
  // Writes the copy back into `supernet`; throws Error if nothing was saved.
  void restoreInto(NamedTensors& supernet) const;
  // Forgets boxes and copy (the start of a round).
  void reset();

  bool saved() const { return saved_; }
  std::int64_t nbytes() const;  // bytes of the copy

 private:
  std::vector<TensorSpec> spec_;
  std::vector<std::vector<std::int64_t>> box_;  // per SuperNet tensor; empty = not covered
  std::vector<at::Tensor> copy_;
  bool saved_ = false;
};

}  // namespace sfn
