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

Evaluator::Evaluator(const Dataset& data, IndexList indices, IndexList bn_indices, int batch_size,
                     std::string device, int bn_batches)
    : data_(data),
      indices_(std::move(indices)),
      bn_indices_(std::move(bn_indices)),
      batch_size_(batch_size),
      device_(std::move(device)),
      bn_batches_(bn_batches) {
  SFN_ENFORCE(batch_size_ > 0, ConfigError, "eval.batch_size must be > 0");
}

std::int64_t Evaluator::samples() const {
  return indices_.empty() ? data_.size() : static_cast<std::int64_t>(indices_.size());
}

EvalRecord Evaluator::evaluate(const SuperNet& supernet, const EvalTarget& target) const {
  const DesignSpace& space = supernet.space();
  SubNetModule module = supernet.buildModule(target.config);
  if (space.bn_mode == BnMode::kTrainable) {
    module->to(torch::Device(device_));
    module->reestimateBn(sampleBatches(data_, bn_indices_, batch_size_, bn_batches_));
  }
  const EvalResult r = sfn::evaluate(module, data_, indices_, batch_size_, device_);
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
