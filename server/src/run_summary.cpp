#include "sfn/server/run_summary.h"

#include <nlohmann/json.hpp>

namespace sfn {

nlohmann::json RunSummary::toJson() const {
  nlohmann::json j = {{"rounds", rounds},
                      {"clients", clients},
                      {"wall_s", wall_s},
                      {"virtual_s", clock_s},
                      {"checkpoint", checkpoint}};
  for (std::size_t i = 0; i < test.size(); ++i) {
    const EvalRecord& r = test[i];
    j["final"].push_back({{"name", r.name},
                          {"subnet", r.subnet},
                          {"macs", r.macs},
                          {"params", r.params},
                          {"val_accuracy", val.at(i).accuracy},
                          {"test_accuracy", r.accuracy}});
  }
  return j;
}

void RunSummary::printTable(std::FILE* out) const {
  std::fprintf(out, "\n%-6s %-70s %10s %9s %8s %8s\n", "subnet", "config", "MACs", "params",
               "val acc", "test acc");
  for (std::size_t i = 0; i < test.size(); ++i) {
    const EvalRecord& r = test[i];
    std::fprintf(out, "%-6s %-70s %10lld %9lld %8.4f %8.4f\n", r.name.c_str(), r.subnet.c_str(),
                 static_cast<long long>(r.macs), static_cast<long long>(r.params),
                 val.at(i).accuracy, r.accuracy);
  }
}

RunSummary summarizeRun(const Coordinator& coordinator, const Evaluator& test,
                        const Evaluator& val) {
  const SuperNet& supernet = coordinator.supernet();
  const std::vector<EvalTarget> targets =
      evalTargets(coordinator.options().eval_subnets, supernet.space());
  RunSummary s;
  s.rounds = coordinator.round();
  s.clients = coordinator.registry().size();
  s.clock_s = coordinator.clock().now();
  // One line per SubNet and split: the final evaluation can take minutes, and an operator
  // should see it progress rather than silence.
  const auto& log = coordinator.logger();
  const std::size_t n = targets.size();
  log->info("final evaluation of {} SubNets on {} test and {} validation samples", n,
            test.samples(), val.samples());
  for (std::size_t i = 0; i < n; ++i) {
    s.test.push_back(test.evaluate(supernet, targets[i]));
    log->info("final evaluation {}/{}: {} test accuracy {:.4f}", i + 1, 2 * n, targets[i].name,
              s.test.back().accuracy);
  }
  for (std::size_t i = 0; i < n; ++i) {
    s.val.push_back(val.evaluate(supernet, targets[i]));
    log->info("final evaluation {}/{}: {} validation accuracy {:.4f}", n + i + 1, 2 * n,
              targets[i].name, s.val.back().accuracy);
  }
  return s;
}

RunSummary finishRun(const Coordinator& coordinator, const DataBundle& data,
                     const EvalOptions& test_options, const Evaluator& val, RunRecorder& recorder,
                     const std::string& checkpoint, double wall_s) {
  // BN calibration (trainable BN) on the training split, never on the test images.
  const Evaluator test = Evaluator::test(data, test_options);
  RunSummary summary = summarizeRun(coordinator, test, val);
  summary.wall_s = wall_s;
  summary.checkpoint = checkpoint;
  recorder.writeSummary(summary.toJson());
  summary.printTable(stdout);
  std::fflush(stdout);
  return summary;
}

}  // namespace sfn
