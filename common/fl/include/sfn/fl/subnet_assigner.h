// SubNet assignment policies: which SubNet each selected client trains this round.
//
//  tracking-sandwich (paper): among this round's clients, the one that trained the MaxNet
//    least often gets the MaxNet; of the rest, the one that trained the MinNet least often
//    gets the MinNet (ties broken by the round's random stream); others get random SubNets.
//  sandwich: first two selected clients get MaxNet and MinNet, others random.
//  random: every client a uniformly random SubNet.
//  static-capacity: each client gets the largest SubNet (by MACs) within its MACs budget,
//    from a fixed list of candidates drawn once from the seed (plus MaxNet and MinNet).
//  fixed: every client trains the same SubNet. With weighting maxnet_beta = "none" a run is
//    FedAvg of that SubNet alone (the iFedAvg baseline): only its slice of the SuperNet
//    ever changes, and evaluating that SubNet gives the baseline's accuracy.
//
// Per-client state is two small counters, stored only for clients that ever trained the
// MaxNet or MinNet, so 100,000 registered clients cost almost nothing.
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/core/rng.h"
#include "sfn/model/subnet_config.h"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sfn {

enum class AssignPolicy { kTrackingSandwich, kSandwich, kRandom, kStaticCapacity, kFixed };
AssignPolicy parseAssignPolicy(const std::string& text);  // throws ConfigError
std::string toString(AssignPolicy policy);

struct AssignInput {
  std::uint64_t client_id = 0;
  std::int64_t macs_budget = 0;  // 0 = unlimited (static-capacity only)
};

class SubNetAssigner {
 public:
  // `fixed` is the SubNet of the fixed policy (required there, ignored otherwise). Throws
  // ConfigError when the fixed policy has no SubNet or one outside `space`.
  SubNetAssigner(DesignSpace space, AssignPolicy policy, std::uint64_t seed,
                 std::optional<SubNetConfig> fixed = std::nullopt);

  // One config per input, same order. Deterministic for (seed, round, inputs). Updates the
  // MaxNet/MinNet counters of the chosen clients.
  std::vector<SubNetConfig> assign(std::int64_t round, const std::vector<AssignInput>& clients);

  struct Counters {
    std::uint32_t maxnet = 0;
    std::uint32_t minnet = 0;
  };
  Counters counters(std::uint64_t client_id) const;
  const std::unordered_map<std::uint64_t, Counters>& allCounters() const { return counters_; }
  void setCounters(std::unordered_map<std::uint64_t, Counters> c) { counters_ = std::move(c); }

  AssignPolicy policy() const { return policy_; }

 private:
  SubNetConfig largestWithin(std::int64_t budget) const;

  DesignSpace space_;
  AssignPolicy policy_;
  std::uint64_t seed_;
  std::unordered_map<std::uint64_t, Counters> counters_;
  std::vector<std::pair<std::int64_t, SubNetConfig>> capacity_candidates_;  // sorted by MACs
  SubNetConfig fixed_;  // fixed policy only, normalized
};

}  // namespace sfn
