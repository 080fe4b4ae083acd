// Client weights for aggregation: uniform, by sample count, and the MaxNet beta decay.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

// beta_t = b0 * ((1 - a) * 0.5 * (1 + cos(pi * min(t, T) / T)) + a), a = bT / b0.
// t = 0 gives b0, t >= T gives bT. T <= 0 means "no decay": b0 always.
double betaCosine(double t, double b0, double bT, double T);

struct WeightingOptions {
  // "uniform": every client the same; "samples": proportional to sample counts.
  std::string base = "uniform";
  // MaxNet beta: the MaxNet client gets beta_t and the other clients share 1 - beta_t
  // (each in proportion to its base weight). "cosine" (paper), "constant" (b0 always) or
  // "none" (MaxNet client treated like any other).
  std::string maxnet_beta = "cosine";
  double b0 = 0.9;
  double bT = 0.125;
  double decay_rounds = 100;  // T
  void validate() const;      // throws ConfigError
};

struct WeightInput {
  bool is_maxnet = false;
  std::int64_t samples = 0;
};

// Weights for the updates of one round (same order as `inputs`), summing to 1 when any
// input exists. With a single update, it gets weight 1. Round t is 0-based.
std::vector<double> clientWeights(const WeightingOptions& opts, std::int64_t round,
                                  const std::vector<WeightInput>& inputs);

}  // namespace sfn
