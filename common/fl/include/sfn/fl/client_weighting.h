// Client weights for aggregation: uniform, by sample count, and the MaxNet beta decay.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

// beta_t = b0 * ((1 - a) * 0.5 * (1 + cos(pi * min(t, T) / T)) + a), a = bT / b0.
// t = 0 gives b0, t >= T gives bT. T <= 0 means "no decay": b0 always.
double betaCosine(double t, double b0, double bT, double T);

// The authors' schedule ends at plain uniform averaging and holds it: bT = 1/K, reached
// after 80 % of the rounds. RunConfig uses these when [weighting] leaves bT or decay_rounds out.
double defaultFinalBeta(int clients_per_round);  // 1 / K
double defaultDecayRounds(std::int64_t rounds);  // round(0.8 * rounds)

struct WeightingOptions {
  // "uniform": every client the same; "samples": proportional to sample counts.
  std::string base = "uniform";
  // MaxNet beta: the MaxNet client gets beta_t and the other clients share 1 - beta_t
  // (each in proportion to its base weight). "cosine" (paper), "constant" (b0 always) or
  // "none" (MaxNet client treated like any other).
  std::string maxnet_beta = "cosine";
  double b0 = 0.9;
  // The defaults of bT and T match CoordinatorOptions' K = 10 and RunConfig's 20 rounds;
  // RunConfig derives them from the run's own K and rounds unless the config sets them.
  double bT = 0.1;
  double decay_rounds = 16;  // T
  void validate() const;     // throws ConfigError

  // The MaxNet client's weight share in round t (0-based): b0 for "constant", the cosine
  // for "cosine", 0 for "none" (no share is set aside for it).
  double beta(std::int64_t round) const;
};

struct WeightInput {
  bool is_maxnet = false;
  std::int64_t samples = 0;
};

// Weights for the updates of one round (same order as `inputs`), summing to 1 when any
// input exists. With a single update, it gets weight 1. Round t is 0-based.
std::vector<double> clientWeights(const WeightingOptions& opts, std::int64_t round,
                                  const std::vector<WeightInput>& inputs);

// Effective number of clients of an average with weights w: (sum w)^2 / sum w^2, i.e.
// 1 / sum v^2 for v = w normalised to sum 1. K for K equal weights, 1 when one client has
// all the weight; 0 for no (or all-zero) weights.
double effectiveClients(const std::vector<double>& weights);

}  // namespace sfn
