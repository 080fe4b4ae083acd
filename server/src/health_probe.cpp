#include "sfn/server/health_probe.h"

#include "sfn/core/error.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace sfn {
namespace {

double probeLoss(const SuperNet& supernet, const SubNetConfig& config, const at::Tensor& images,
                 const at::Tensor& labels) {
  torch::NoGradGuard no_grad;
  SubNetModule module = supernet.buildModule(config);
  module->train(supernet.space().bn_mode == BnMode::kTrainable);
  const at::Tensor logits = module->forward(images);
  if (!logits.isfinite().all().item<bool>()) return std::numeric_limits<double>::infinity();
  const double loss = torch::nn::functional::cross_entropy(logits, labels).item<double>();
  return std::isfinite(loss) ? loss : std::numeric_limits<double>::infinity();
}

}  // namespace

bool ProbeLosses::finite() const { return std::isfinite(max) && std::isfinite(min); }

HealthProbe::HealthProbe(const Dataset& data, const IndexList& indices, int samples) {
  const auto n =
      std::min<std::int64_t>(std::max(samples, 0), static_cast<std::int64_t>(indices.size()));
  if (n == 0) return;
  for (std::int64_t k = 0; k < n; ++k)
    SFN_ENFORCE(indices[static_cast<std::size_t>(k)] >= 0 &&
                    indices[static_cast<std::size_t>(k)] < data.size(),
                Error, "health probe: index ", indices[static_cast<std::size_t>(k)],
                " out of range for '", data.name, "' (", data.size(), " samples)");
  const at::Tensor idx =
      at::tensor(std::vector<std::int64_t>(indices.begin(), indices.begin() + n), at::kLong);
  images_ = data.images.index_select(0, idx).contiguous();
  labels_ = data.labels.index_select(0, idx).contiguous();
}

HealthProbe HealthProbe::validation(const DataBundle& data, int samples) {
  return HealthProbe(data.train, data.split.val, samples);
}

ProbeLosses HealthProbe::run(const SuperNet& supernet) const {
  SFN_ENFORCE(enabled(), Error, "health probe: no probe data");
  const DesignSpace& space = supernet.space();
  ProbeLosses out;
  out.max = probeLoss(supernet, SubNetConfig::maxNet(space), images_, labels_);
  out.min = probeLoss(supernet, SubNetConfig::minNet(space), images_, labels_);
  return out;
}

std::optional<std::string> probeProblem(const ProbeLosses& now,
                                        const std::optional<ProbeLosses>& previous, double multiple,
                                        double cap, int classes) {
  const double floor = std::log(static_cast<double>(std::max(classes, 2)));
  auto judge = [&](const char* net, double loss,
                   std::optional<double> before) -> std::optional<std::string> {
    if (!std::isfinite(loss)) return fmt::format("{} outputs are not finite", net);
    double limit = cap;
    if (before) limit = std::min(cap, multiple * std::max(*before, floor));
    if (loss > limit)
      return fmt::format("{} probe loss {:.4g} over its bound {:.4g}{}", net, loss, limit,
                         before ? fmt::format(" (previous {:.4g})", *before) : std::string());
    return std::nullopt;
  };
  if (auto p = judge("MaxNet", now.max, previous ? std::optional(previous->max) : std::nullopt))
    return p;
  return judge("MinNet", now.min, previous ? std::optional(previous->min) : std::nullopt);
}

}  // namespace sfn
