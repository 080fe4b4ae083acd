// The health guard's probe (issue 13): after a round's aggregation, the new SuperNet's
// MaxNet and MinNet classify a small fixed batch. Non-finite outputs or an exploding loss
// mean the round broke the SuperNet, and the Coordinator rolls it back.
//
// The probe only reads the SuperNet (SuperNet::buildModule copies the weights) and draws no
// random numbers, so it never changes training results. With trainable BN, the modules run
// in training mode (BN normalises with the probe batch's own statistics): the SuperNet's
// averaged running statistics are re-estimated before every real evaluation anyway, and a
// probe that depended on them would judge those, not the weights.
//
// Cost: two forward passes over `samples` images per completed round, and the images'
// memory (64 Fashion-MNIST images: 200 KB).
#pragma once

#include "sfn/data/data_source.h"
#include "sfn/data/dataset.h"
#include "sfn/model/supernet.h"

#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>

namespace sfn {

// Mean cross-entropy of the MaxNet and the MinNet on the probe batch; +infinity when a
// net's outputs are not all finite.
struct ProbeLosses {
  double max = 0.0;
  double min = 0.0;
  bool finite() const;
};

class HealthProbe {
 public:
  HealthProbe() = default;  // no probe: enabled() is false
  // The first `samples` of `indices` in `data` (fewer if there are fewer), copied; the
  // data set need not outlive the probe. Throws Error for an index out of range.
  HealthProbe(const Dataset& data, const IndexList& indices, int samples);
  // The first `samples` images of a run's validation split (held out from training, on
  // the server's side), as sfn-sim and sfn-server use.
  static HealthProbe validation(const DataBundle& data, int samples);

  bool enabled() const { return samples() > 0; }
  std::int64_t samples() const { return labels_.defined() ? labels_.size(0) : 0; }

  // Runs MaxNet and MinNet of `supernet` on the batch (CPU, the caller's torch threads).
  // Throws Error if the probe is not enabled.
  ProbeLosses run(const SuperNet& supernet) const;

 private:
  at::Tensor images_;
  at::Tensor labels_;
};

// Why `now` shows a broken SuperNet, or nothing if it is healthy: a non-finite output or
// loss, a loss over `cap`, or a loss over multiple x max(the previous healthy probe's,
// ln(classes)) for the same net. `previous` is empty before the first healthy probe.
std::optional<std::string> probeProblem(const ProbeLosses& now,
                                        const std::optional<ProbeLosses>& previous, double multiple,
                                        double cap, int classes);

}  // namespace sfn
