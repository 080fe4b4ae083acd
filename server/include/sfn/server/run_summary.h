// The final report of a finished run: summary.json in the run folder (RunRecorder) and the
// table both binaries print. Accuracy is measured on the TEST set here; validation accuracy
// is what training and search see, reported beside it.
#pragma once

#include "sfn/data/data_source.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/run_recorder.h"
#include "sfn/train/evaluator.h"

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace sfn {

struct RunSummary {
  std::int64_t rounds = 0;       // rounds run in total (resumed ones included)
  std::size_t clients = 0;       // clients registered at the end
  double wall_s = 0;             // wall time of this invocation
  double clock_s = 0;            // the Coordinator's clock (virtual in sfn-sim); JSON "virtual_s"
  std::string checkpoint;        // the final checkpoint
  std::vector<EvalRecord> test;  // each eval SubNet (eval.subnets) on the test set
  std::vector<EvalRecord> val;   // the same SubNets on the validation split

  nlohmann::json toJson() const;
  // One line per eval SubNet: name, config, MACs, params, validation and test accuracy.
  void printTable(std::FILE* out) const;
};

// Evaluates the coordinator's eval SubNets on `test` and `val` and fills everything but
// wall_s and checkpoint.
RunSummary summarizeRun(const Coordinator& coordinator, const Evaluator& test,
                        const Evaluator& val);

// The end of a finished run in sfn-server and sfn-sim alike: evaluates the eval SubNets on
// data.test (with `test_options`) and with `val`, writes summary.json through `recorder` and
// prints the table to stdout. `checkpoint` is the final checkpoint, `wall_s` the run's wall time.
RunSummary finishRun(const Coordinator& coordinator, const DataBundle& data,
                     const EvalOptions& test_options, const Evaluator& val, RunRecorder& recorder,
                     const std::string& checkpoint, double wall_s);

}  // namespace sfn
