#include "sfn/train/evaluator.h"

#include "sfn/core/error.h"
#include "sfn/train/local_trainer.h"
#include "sfn/model/subnet_shapes.h"

#include <torch/torch.h>

namespace sfn {

SubNetConfig resolveSubNet(const std::string& text, const DesignSpace& space) {
  if (text == "max") return SubNetConfig::maxNet(space);
  if (text == "min") return SubNetConfig::minNet(space);
  return SubNetConfig::parse(text, space);
}

std::vector<std::string> evalTargetNames(const std::vector<std::string>& subnets) {
  std::vector<std::string> names;
  int mid = 0;
  for (const auto& s : subnets)
    names.push_back(s == "max" || s == "min" ? s : "mid" + std::to_string(++mid));
  return names;
}

std::vector<EvalTarget> evalTargets(const std::vector<std::string>& subnets,
                                    const DesignSpace& space) {
  const auto names = evalTargetNames(subnets);
  std::vector<EvalTarget> out;
  for (std::size_t i = 0; i < subnets.size(); ++i)
    out.push_back({names[i], resolveSubNet(subnets[i], space)});
  return out;
}

std::int64_t SampleSet::size() const {
  return indices.empty() ? data->size() : static_cast<std::int64_t>(indices.size());
}

namespace {

// "'synthetic-test' (500 of 500 samples)", for the messages of failed checks.
std::string describe(const SampleSet& s) {
  return "'" + s.data->name + "' (" + std::to_string(s.size()) + " of " +
         std::to_string(s.data->size()) + " samples)";
}

void checkInRange(const SampleSet& s, const char* role) {
  const std::int64_t n = s.data->size();
  for (const std::int64_t i : s.indices)
    SFN_ENFORCE(i >= 0 && i < n, Error, "evaluator: ", role, " index ", i,
                " is out of range for data set ", describe(s));
}

bool sameData(const Dataset& a, const Dataset& b) {
  return &a == &b || (a.images.defined() && a.images.is_same(b.images));
}

// BN statistics must never come from the images being scored.
void checkDisjoint(const SampleSet& scored, const SampleSet& bn) {
  if (!sameData(*scored.data, *bn.data)) return;
  SFN_ENFORCE(!scored.indices.empty() && !bn.indices.empty(), Error,
              "evaluator: BN calibration set ", describe(bn), " overlaps the scored set ",
              describe(scored), ": BN statistics must come from training data");
  std::vector<bool> is_scored(static_cast<std::size_t>(scored.data->size()), false);
  for (const std::int64_t i : scored.indices) is_scored[static_cast<std::size_t>(i)] = true;
  for (const std::int64_t i : bn.indices)
    SFN_ENFORCE(!is_scored[static_cast<std::size_t>(i)], Error, "evaluator: sample ", i, " of ",
                describe(scored), " is both scored and used for BN calibration",
                ": BN statistics must come from training data");
}

// Sets the calling thread's torch thread count for a scope (0: leaves it alone).
class TorchThreadsScope {
 public:
  explicit TorchThreadsScope(int threads) : saved_(at::get_num_threads()) {
    if (threads > 0 && threads != saved_) at::set_num_threads(threads);
  }
  ~TorchThreadsScope() {
    if (at::get_num_threads() != saved_) at::set_num_threads(saved_);
  }
  TorchThreadsScope(const TorchThreadsScope&) = delete;
  TorchThreadsScope& operator=(const TorchThreadsScope&) = delete;

 private:
  int saved_;
};

}  // namespace

Evaluator::Evaluator(SampleSet scored, EvalOptions opts)
    : scored_(std::move(scored)), opts_(std::move(opts)) {
  SFN_ENFORCE(opts_.batch_size > 0, ConfigError, "eval.batch_size must be > 0");
  SFN_ENFORCE(opts_.bn_batches > 0, ConfigError, "the BN calibration batch count must be > 0");
  SFN_ENFORCE(opts_.threads >= 0, ConfigError, "the evaluation thread count must be >= 0");
  checkInRange(scored_, "scored");
}

Evaluator::Evaluator(SampleSet scored, SampleSet bn_calibration, EvalOptions opts)
    : Evaluator(std::move(scored), std::move(opts)) {
  checkInRange(bn_calibration, "BN calibration");
  checkDisjoint(scored_, bn_calibration);
  bn_.emplace(std::move(bn_calibration));
}

Evaluator Evaluator::validation(const DataBundle& data, EvalOptions opts) {
  return Evaluator({data.train, data.split.val}, {data.train, data.split.train}, std::move(opts));
}

Evaluator Evaluator::test(const DataBundle& data, EvalOptions opts) {
  return Evaluator({data.test}, {data.train, data.split.train}, std::move(opts));
}

std::int64_t Evaluator::samples() const { return scored_.size(); }

std::vector<at::Tensor> Evaluator::bnBatches() const {
  if (!bn_) return {};
  return sampleBatches(*bn_->data, bn_->indices, opts_.batch_size, opts_.bn_batches);
}

EvalRecord Evaluator::evaluate(const SuperNet& supernet, const EvalTarget& target) const {
  const TorchThreadsScope threads(opts_.threads);
  const DesignSpace& space = supernet.space();
  SubNetModule module = supernet.buildModule(target.config);
  if (space.bn_mode == BnMode::kTrainable) {
    SFN_ENFORCE(bn_.has_value(), Error, "evaluator: SuperNet '", space.name,
                "' has trainable BN but the evaluator has no BN calibration set");
    module->to(torch::Device(opts_.device));
    module->reestimateBn(bnBatches());
  }
  const EvalResult r = sfn::evaluate(module, *scored_.data, scored_.indices, opts_.batch_size,
                                     opts_.device, opts_.stop);
  const Cost cost = computeCost(space, target.config);
  EvalRecord rec;
  rec.name = target.name;
  rec.subnet = target.config.toString(space);
  rec.macs = cost.macs;
  rec.params = cost.params;
  rec.accuracy = r.accuracy;
  rec.loss = r.mean_loss;
  rec.samples = r.samples;
  return rec;
}

std::vector<EvalRecord> Evaluator::evaluate(const SuperNet& supernet,
                                            const std::vector<EvalTarget>& targets) const {
  std::vector<EvalRecord> out;
  out.reserve(targets.size());
  for (const auto& t : targets) out.push_back(evaluate(supernet, t));
  return out;
}

}  // namespace sfn
