// Scores SubNets of a SuperNet on held-out data (the validation split for the server's
// periodic evaluation and the searcher's fitness; the test split only for reports).
#pragma once

#include "sfn/data/dataset.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/supernet.h"

#include <cstdint>
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

class Evaluator {
 public:
  // `indices` select the evaluation samples of `data` (all when empty). With trainable BN,
  // statistics are re-estimated per SubNet on up to `bn_batches` batches of `bn_indices`.
  Evaluator(const Dataset& data, IndexList indices, IndexList bn_indices, int batch_size = 512,
            std::string device = "cpu", int bn_batches = 10);

  EvalRecord evaluate(const SuperNet& supernet, const EvalTarget& target) const;
  std::vector<EvalRecord> evaluate(const SuperNet& supernet,
                                   const std::vector<EvalTarget>& targets) const;

  std::int64_t samples() const;

 private:
  const Dataset& data_;
  IndexList indices_;
  IndexList bn_indices_;
  int batch_size_;
  std::string device_;
  int bn_batches_;
};

}  // namespace sfn
