// Local training of one SubNet on a client's data, and evaluation.
#pragma once

#include "sfn/data/dataset.h"
#include "sfn/model/design_space.h"
#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_module.h"

#include <c10/core/Device.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace sfn {

struct TrainOptions {
  int epochs = 1;
  int batch_size = 64;
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
  double clip_grad_norm = 10.0;  // <= 0 disables clipping
  std::uint64_t seed = 0;        // shuffling order
  std::string device = "cpu";    // any torch device string ("cpu", "cuda:0")
  void validate() const;         // throws ConfigError
};

struct TrainResult {
  NamedTensors slice;  // trained SubNet tensors (on CPU), sliceSpec order
  std::int64_t samples = 0;
  double mean_loss = 0.0;
  double compute_seconds = 0.0;
};

// Trains a SubNet initialized from `init` (its slice) for opts.epochs over the samples
// `indices` of `data`. Deterministic for opts.seed when torch runs single-threaded.
TrainResult trainLocal(const DesignSpace& space, const SubNetConfig& config,
                       const NamedTensors& init, const Dataset& data, const IndexList& indices,
                       const TrainOptions& opts);

struct EvalResult {
  double accuracy = 0.0;
  double mean_loss = 0.0;
  std::int64_t samples = 0;
};

// Accuracy and loss of `module` on `indices` of `data` (all samples if indices empty).
// With `stop`, throws Interrupted before the next batch once *stop is true, so that a
// process asked to stop does not finish a long evaluation first.
EvalResult evaluate(SubNetModule& module, const Dataset& data, const IndexList& indices,
                    int batch_size = 512, const std::string& device = "cpu",
                    const std::atomic<bool>* stop = nullptr);

// The images of `indices` (or the first n samples) in batches, for BN re-estimation.
std::vector<at::Tensor> sampleBatches(const Dataset& data, const IndexList& indices, int batch_size,
                                      int max_batches);

// Throws ConfigError in one line that names `what` (the key or flag it came from) unless
// this LibTorch build can run on `device` ("cpu", "cuda" or "cuda:N" of a present GPU):
// torch's own error for a missing backend is pages long and comes only at the first tensor
// moved there, after the data has been loaded.
void checkTorchDevice(const std::string& device, std::string_view what);

// Sets torch's intra-op thread count (Debian's build starts at 1). threads <= 0 keeps it.
void setTorchThreads(int threads);

}  // namespace sfn
