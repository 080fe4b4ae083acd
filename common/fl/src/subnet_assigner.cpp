#include "sfn/fl/subnet_assigner.h"

#include "sfn/core/error.h"
#include "sfn/model/subnet_shapes.h"

#include <algorithm>
#include <numeric>
#include <utility>

namespace sfn {
namespace {

// Enough random SubNets that every budget between MinNet and MaxNet finds a close fit,
// while construction stays in the milliseconds.
constexpr int kCapacityCandidates = 2000;
// Stream tag for the candidate list, apart from the per-round streams (seed, round, 0).
constexpr std::uint64_t kCandidateStream = 0x5ca1ab1eULL;

// A uniformly random order of 0..n-1 drawn from the round's stream: scanning clients in
// this order and keeping the first strict minimum breaks ties uniformly at random.
std::vector<std::size_t> shuffledOrder(std::size_t n, Rng& rng) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

// Tracking sandwich's MaxNet and MinNet clients: those that trained it least so far, ties
// broken by a shuffled order so no client id is favoured. The MinNet client is n when there
// is only one client. Draws the shuffle from `rng` (one draw sequence per round).
std::pair<std::size_t, std::size_t> trackingSandwichPair(const SubNetAssigner& assigner,
                                                         const std::vector<AssignInput>& clients,
                                                         Rng& rng) {
  const std::size_t n = clients.size();
  const std::vector<std::size_t> order = shuffledOrder(n, rng);
  auto maxnetCount = [&](std::size_t i) { return assigner.counters(clients[i].client_id).maxnet; };
  auto minnetCount = [&](std::size_t i) { return assigner.counters(clients[i].client_id).minnet; };
  std::size_t max_client = order[0];
  for (std::size_t i : order)
    if (maxnetCount(i) < maxnetCount(max_client)) max_client = i;
  std::size_t min_client = n;
  for (std::size_t i : order) {
    if (i == max_client) continue;
    if (min_client == n || minnetCount(i) < minnetCount(min_client)) min_client = i;
  }
  return {max_client, min_client};
}

}  // namespace

AssignPolicy parseAssignPolicy(const std::string& text) {
  if (text == "tracking-sandwich") return AssignPolicy::kTrackingSandwich;
  if (text == "sandwich") return AssignPolicy::kSandwich;
  if (text == "random") return AssignPolicy::kRandom;
  if (text == "static-capacity") return AssignPolicy::kStaticCapacity;
  if (text == "fixed") return AssignPolicy::kFixed;
  SFN_THROW(ConfigError, "assign policy '", text,
            "': expected tracking-sandwich, sandwich, random, static-capacity or fixed");
}

std::string toString(AssignPolicy policy) {
  switch (policy) {
    case AssignPolicy::kTrackingSandwich:
      return "tracking-sandwich";
    case AssignPolicy::kSandwich:
      return "sandwich";
    case AssignPolicy::kRandom:
      return "random";
    case AssignPolicy::kStaticCapacity:
      return "static-capacity";
    case AssignPolicy::kFixed:
      return "fixed";
  }
  return "unknown";
}

SubNetAssigner::SubNetAssigner(DesignSpace space, AssignPolicy policy, std::uint64_t seed,
                               std::optional<SubNetConfig> fixed)
    : space_(std::move(space)), policy_(policy), seed_(seed) {
  if (policy_ == AssignPolicy::kFixed) {
    SFN_ENFORCE(fixed.has_value(), ConfigError,
                "assign policy 'fixed' needs a SubNet (round.fixed_subnet)");
    fixed->validate(space_);
    fixed_ = fixed->normalized(space_);
    return;
  }
  if (policy_ != AssignPolicy::kStaticCapacity) return;
  Rng rng(seed_, 0, kCandidateStream);
  std::vector<SubNetConfig> configs;
  configs.reserve(kCapacityCandidates + 2);
  configs.push_back(SubNetConfig::maxNet(space_));
  configs.push_back(SubNetConfig::minNet(space_));
  for (int i = 0; i < kCapacityCandidates; ++i)
    configs.push_back(SubNetConfig::random(space_, rng).normalized(space_));
  capacity_candidates_.reserve(configs.size());
  for (auto& c : configs) {
    const std::int64_t macs = computeCost(space_, c).macs;
    capacity_candidates_.emplace_back(macs, std::move(c));
  }
  // Stable, so equal-MACs candidates keep their drawing order: the list depends on the
  // seed alone.
  std::stable_sort(capacity_candidates_.begin(), capacity_candidates_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

SubNetConfig SubNetAssigner::largestWithin(std::int64_t budget) const {
  if (budget <= 0) return SubNetConfig::maxNet(space_);
  const auto it =
      std::upper_bound(capacity_candidates_.begin(), capacity_candidates_.end(), budget,
                       [](std::int64_t b, const auto& candidate) { return b < candidate.first; });
  // Nothing fits: the MinNet is the least any client can train.
  if (it == capacity_candidates_.begin()) return SubNetConfig::minNet(space_);
  return std::prev(it)->second;
}

std::vector<SubNetConfig> SubNetAssigner::assign(std::int64_t round,
                                                 const std::vector<AssignInput>& clients) {
  Rng rng(seed_, static_cast<std::uint64_t>(round));
  const std::size_t n = clients.size();
  std::vector<SubNetConfig> out(n);
  std::vector<bool> fixed(n, false);

  switch (policy_) {
    case AssignPolicy::kTrackingSandwich: {
      if (n == 0) break;
      const auto [max_client, min_client] = trackingSandwichPair(*this, clients, rng);
      out[max_client] = SubNetConfig::maxNet(space_);
      fixed[max_client] = true;
      if (min_client < n) {
        out[min_client] = SubNetConfig::minNet(space_);
        fixed[min_client] = true;
      }
      break;
    }
    case AssignPolicy::kSandwich:
      for (std::size_t i = 0; i < std::min<std::size_t>(n, 2); ++i) {
        out[i] = i == 0 ? SubNetConfig::maxNet(space_) : SubNetConfig::minNet(space_);
        fixed[i] = true;
      }
      break;
    case AssignPolicy::kRandom:
      break;
    case AssignPolicy::kStaticCapacity:
      for (std::size_t i = 0; i < n; ++i) {
        out[i] = largestWithin(clients[i].macs_budget);
        fixed[i] = true;
      }
      break;
    case AssignPolicy::kFixed:
      std::fill(out.begin(), out.end(), fixed_);
      std::fill(fixed.begin(), fixed.end(), true);
      break;
  }
  // Random SubNets in input order, after any tie-breaking draws, so the stream use (and
  // thus the result) depends only on (seed, round, inputs).
  for (std::size_t i = 0; i < n; ++i)
    if (!fixed[i]) out[i] = SubNetConfig::random(space_, rng).normalized(space_);

  // Count by what was assigned, not by policy, so every policy keeps the counters that
  // tracking sandwich relies on (e.g. after switching policy on a resumed run).
  for (std::size_t i = 0; i < n; ++i) {
    const bool is_max = out[i].isMaxNet(space_);
    const bool is_min = out[i].isMinNet(space_);
    if (!is_max && !is_min) continue;
    Counters& c = counters_[clients[i].client_id];
    if (is_max) ++c.maxnet;
    if (is_min) ++c.minnet;
  }
  return out;
}

SubNetAssigner::Counters SubNetAssigner::counters(std::uint64_t client_id) const {
  const auto it = counters_.find(client_id);
  return it == counters_.end() ? Counters{} : it->second;
}

}  // namespace sfn
