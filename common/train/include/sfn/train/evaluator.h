// Scores SubNets of a SuperNet on held-out data (the validation split for the server's
// periodic evaluation and the searcher's fitness; the test split only for reports).
//
// With trainable BN a SubNet's statistics are re-estimated before it is scored. Those
// calibration batches are a separate (data set, indices) pair from the scored one: they
// must be training images, never the images being scored (BN statistics taken from the test
// set would leak it into the reported accuracy). The Evaluator checks this when it is built.
#pragma once

#include "sfn/data/data_source.h"
#include "sfn/data/dataset.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/supernet.h"

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sfn {

struct EvalRecord {
  std::string name;    // "max", "min", "mid1", a target name...
  std::string subnet;  // canonical text
  std::int64_t macs = 0;
  std::int64_t params = 0;
  double accuracy = 0.0;
  double loss = 0.0;
  std::int64_t samples = 0;
};

struct EvalTarget {
  std::string name;
  SubNetConfig config;
};

// "max", "min" or a canonical SubNet text; throws ConfigError.
SubNetConfig resolveSubNet(const std::string& text, const DesignSpace& space);
// Named targets for a list of SubNet texts: "max" and "min" keep their names, the others
// are called mid1, mid2, ... in order (short names for logs and CSV columns).
std::vector<EvalTarget> evalTargets(const std::vector<std::string>& subnets,
                                    const DesignSpace& space);
std::vector<std::string> evalTargetNames(const std::vector<std::string>& subnets);

// Samples of one data set: `indices` into `data`, all of it when `indices` is empty.
// Does not own the data set, which must outlive the SampleSet and everything holding it.
struct SampleSet {
  SampleSet(const Dataset& d, IndexList idx = {}) : data(&d), indices(std::move(idx)) {}
  SampleSet(Dataset&&, IndexList = {}) = delete;  // would dangle
  const Dataset* data;
  IndexList indices;
  std::int64_t size() const;
};

struct EvalOptions {
  int batch_size = 512;        // scoring and BN calibration batches
  std::string device = "cpu";  // any torch device string
  int bn_batches = 10;         // trainable BN: calibration batches per SubNet (at most)
  // Torch intra-op threads while scoring (the caller's count is restored after); 0 keeps
  // the caller's. The simulator scores between rounds, when its training workers are idle.
  int threads = 0;
  // Set: evaluate() throws Interrupted (checked per batch) once *stop becomes true. Must
  // outlive the evaluator (a process's stop flag).
  const std::atomic<bool>* stop = nullptr;
};

class Evaluator {
 public:
  // Scores `scored`. With trainable BN, each SubNet's BN statistics are first re-estimated
  // on up to opts.bn_batches batches of `bn_calibration`, which must be training data.
  // Throws Error (a failed check naming both sets) if an index is out of range or if the
  // two sets share a sample (the same data set with overlapping indices), and ConfigError
  // if opts.batch_size or opts.bn_batches is not positive.
  Evaluator(SampleSet scored, SampleSet bn_calibration, EvalOptions opts = {});
  // Without calibration data: only for SuperNets with frozen BN; evaluate() throws Error
  // for a trainable-BN SuperNet.
  explicit Evaluator(SampleSet scored, EvalOptions opts = {});

  // The validation split of a run (data.split.val), calibrated on its training split.
  static Evaluator validation(const DataBundle& data, EvalOptions opts = {});
  // The whole test set (data.test), calibrated on the training split of data.train.
  static Evaluator test(const DataBundle& data, EvalOptions opts = {});

  EvalRecord evaluate(const SuperNet& supernet, const EvalTarget& target) const;
  std::vector<EvalRecord> evaluate(const SuperNet& supernet,
                                   const std::vector<EvalTarget>& targets) const;

  // The scored sample count.
  std::int64_t samples() const;
  // The images evaluate() re-estimates BN statistics on (empty without a calibration set),
  // for callers that re-estimate a SubNetModule themselves, e.g. before exporting it.
  std::vector<at::Tensor> bnBatches() const;

 private:
  SampleSet scored_;
  std::optional<SampleSet> bn_;
  EvalOptions opts_;
};

}  // namespace sfn
