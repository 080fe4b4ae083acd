// SubNetConfig: one SubNet of a DesignSpace, as a validated value type.
//
// depth[s] is the number of extra blocks of stage s (the stage keeps 1 + depth[s]);
// expand[b] is, for each of the numBlocks() blocks, an index into
// DesignSpace::expand_choices. Expand genes of inactive blocks (beyond a stage's depth)
// are kept (the searcher mutates them) but do not affect the network, so equality and the
// canonical text compare only active blocks; normalized() zeroes the inactive ones.
//
// Canonical text: "d=2-1-0-2;e=0.25-0.1-0.14-..." with one expand value per block
// (inactive blocks printed as the first choice). No commas, so it is CSV-safe.
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/core/rng.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

class SubNetConfig {
 public:
  std::vector<int> depth;   // per stage
  std::vector<int> expand;  // per block, index into expand_choices

  static SubNetConfig maxNet(const DesignSpace& space);
  static SubNetConfig minNet(const DesignSpace& space);
  // Uniform over depth choices per stage and expand choices per block.
  static SubNetConfig random(const DesignSpace& space, Rng& rng);
  // Throws ConfigError with the offending field ("d[2]", "e[7]", ...).
  static SubNetConfig parse(std::string_view text, const DesignSpace& space);

  std::string toString(const DesignSpace& space) const;
  // Throws ConfigError naming the wrong field.
  void validate(const DesignSpace& space) const;
  SubNetConfig normalized(const DesignSpace& space) const;

  bool isActive(const DesignSpace& space, int block) const;
  bool isMaxNet(const DesignSpace& space) const;
  bool isMinNet(const DesignSpace& space) const;
  double expandRatio(const DesignSpace& space, int block) const;

  // Searcher helpers. Each gene is resampled with probability `gene_prob`.
  SubNetConfig mutate(const DesignSpace& space, Rng& rng, double gene_prob) const;
  // Each gene taken from either parent with probability 1/2.
  static SubNetConfig crossover(const SubNetConfig& a, const SubNetConfig& b, Rng& rng);

  // Equality of the networks (inactive genes ignored); requires normalized() inputs or
  // configs of the same space. Use sameNet(space) when in doubt.
  bool operator==(const SubNetConfig& o) const { return depth == o.depth && expand == o.expand; }
  bool sameNet(const SubNetConfig& o, const DesignSpace& space) const;
  std::uint64_t hash() const;
};

}  // namespace sfn
