// How far an update moved from the slice it was sent (the bound on each update, issue 13).
//
// An update's change is theta - W over the averaged elements of its slice, W being the
// SuperNet's prefix box the slice was cut from (the SuperNet does not change while a round
// collects updates, so the SuperNet itself is the slice that was sent). The measure is one
// streaming read of the update and of W, with no temporaries, accumulated in double: a
// change near FLT_MAX (3e38, whose square overflows float) still measures finite.
//
// rms() is the L2 norm divided by sqrt(element count): MinNet and MaxNet updates, whose
// element counts differ by an order of magnitude, compare on one scale.
#pragma once

#include "sfn/model/named_tensors.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

struct TensorChange {
  std::size_t index = 0;  // the tensor's position in the SuperNet
  std::string name;
  double sum_squares = 0.0;
  std::int64_t elements = 0;
  double rms() const { return elements > 0 ? std::sqrt(sum_squares / elements) : 0.0; }
};

struct ChangeNorm {
  double sum_squares = 0.0;
  std::int64_t elements = 0;
  std::vector<TensorChange> tensors;  // one per averaged slice tensor, in slice order
  double l2() const { return std::sqrt(sum_squares); }
  double rms() const { return elements > 0 ? std::sqrt(sum_squares / elements) : 0.0; }
};

// The change of `slice` (tensors that are prefix boxes of the same-named tensors of
// `supernet`, in SuperNet order, as validateTensors checked) from `supernet`. Tensors that
// are not averaged (non-float bookkeeping buffers, scalars) are left out. The result does
// not depend on the thread count. Throws ShapeError if a slice tensor is not a float32
// prefix box of a SuperNet tensor of its name.
ChangeNorm measureChange(const NamedTensors& slice, const NamedTensors& supernet);

// The factor that brings a change of RMS `rms` down to `clip_rms`: clip_rms / rms when
// clipping is on (clip_rms > 0) and the change is larger, else exactly 1.
double clipScale(double rms, double clip_rms);

}  // namespace sfn
