#include "sfn/fl/client_weighting.h"

#include "sfn/core/error.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace sfn {
namespace {

// Scales `w` to sum to 1. All-zero input (e.g. every client reported 0 samples) falls back
// to uniform rather than dividing by zero: those clients still trained something.
void normalize(std::vector<double>& w) {
  double total = 0.0;
  for (double x : w) total += x;
  if (total > 0.0) {
    for (double& x : w) x /= total;
  } else {
    for (double& x : w) x = 1.0 / static_cast<double>(w.size());
  }
}

}  // namespace

double betaCosine(double t, double b0, double bT, double T) {
  if (!(T > 0.0)) return b0;
  const double progress = std::clamp(t, 0.0, T) / T;
  // b0 * ((1 - a) * c + a) with a = bT / b0, written without the division so b0 = 0 works.
  const double c = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return (b0 - bT) * c + bT;
}

double defaultFinalBeta(int clients_per_round) {
  return clients_per_round > 0 ? 1.0 / static_cast<double>(clients_per_round) : 1.0;
}

double defaultDecayRounds(std::int64_t rounds) {
  return std::round(0.8 * static_cast<double>(std::max<std::int64_t>(rounds, 0)));
}

double effectiveClients(const std::vector<double>& weights) {
  double sum = 0.0;
  double sum_sq = 0.0;
  for (double w : weights) {
    sum += w;
    sum_sq += w * w;
  }
  return sum_sq > 0.0 ? sum * sum / sum_sq : 0.0;
}

double WeightingOptions::beta(std::int64_t round) const {
  if (maxnet_beta == "none") return 0.0;
  if (maxnet_beta == "constant") return b0;
  return betaCosine(static_cast<double>(round), b0, bT, decay_rounds);
}

void WeightingOptions::validate() const {
  SFN_ENFORCE(base == "uniform" || base == "samples", ConfigError, "weighting.base = '", base,
              "': expected \"uniform\" or \"samples\"");
  SFN_ENFORCE(maxnet_beta == "cosine" || maxnet_beta == "constant" || maxnet_beta == "none",
              ConfigError, "weighting.maxnet_beta = '", maxnet_beta,
              "': expected \"cosine\", \"constant\" or \"none\"");
  SFN_ENFORCE(std::isfinite(b0) && b0 >= 0.0 && b0 <= 1.0, ConfigError, "weighting.b0 = ", b0,
              ": expected a value in [0, 1]");
  SFN_ENFORCE(std::isfinite(bT) && bT >= 0.0 && bT <= 1.0, ConfigError, "weighting.bT = ", bT,
              ": expected a value in [0, 1]");
  SFN_ENFORCE(std::isfinite(decay_rounds) && decay_rounds >= 0.0, ConfigError,
              "weighting.decay_rounds = ", decay_rounds, ": expected a value >= 0");
}

std::vector<double> clientWeights(const WeightingOptions& opts, std::int64_t round,
                                  const std::vector<WeightInput>& inputs) {
  std::vector<double> base(inputs.size(), 1.0);
  if (opts.base == "samples") {
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      SFN_ENFORCE(inputs[i].samples >= 0, Error, "update #", i, " reports ", inputs[i].samples,
                  " samples");
      base[i] = static_cast<double>(inputs[i].samples);
    }
  }
  if (inputs.empty()) return base;

  std::size_t maxnets = 0;
  for (const auto& in : inputs) maxnets += in.is_maxnet ? 1 : 0;
  // Without a MaxNet/other split there is nothing to give beta to: plain base weights.
  if (opts.maxnet_beta == "none" || maxnets == 0 || maxnets == inputs.size()) {
    normalize(base);
    return base;
  }

  const double beta = opts.beta(round);
  // Policies other than tracking sandwich may hand the MaxNet to several clients; they
  // share beta the way the others share 1 - beta.
  std::vector<double> max_part;
  std::vector<double> rest_part;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    (inputs[i].is_maxnet ? max_part : rest_part).push_back(base[i]);
  normalize(max_part);
  normalize(rest_part);
  std::vector<double> out(inputs.size());
  std::size_t mi = 0;
  std::size_t ri = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    out[i] = inputs[i].is_maxnet ? beta * max_part[mi++] : (1.0 - beta) * rest_part[ri++];
  return out;
}

}  // namespace sfn
