// OFA-style evolutionary search for the most accurate SubNet within a target's budgets,
// with one fitness cache shared by every target searched (DESIGN.md "one-shot search").
//
// Per target:
//   1. Initial population of `population` feasible SubNets: with warm_start > 0, up to that
//      fraction are the best SubNets already evaluated (for earlier targets) that meet this
//      target's budgets; the rest are uniform random samples, each resampled up to
//      max_attempts times until feasible, else the MinNet (if even the MinNet violates the
//      budgets the target is reported infeasible).
//   2. Each generation keeps the best parent_ratio x population as parents, adds
//      mutation_ratio x population mutants of random parents (each gene resampled with
//      probability gene_prob) and fills up with crossovers of two random parents; a child
//      that violates the budgets is regenerated, up to max_attempts times, then replaced by
//      its (feasible) first parent.
//   3. The winner is the best member of the last generation (parents survive, so it is the
//      best feasible SubNet seen).
// Candidates are ranked by fitness (higher is better), then fewer MACs, then canonical text,
// a total order, so the search is deterministic for a seed whatever the fitness ties. Every
// target draws from the same random stream (seeded by `seed` alone): a target's result does
// not depend on which other targets come before it unless warm_start uses their evaluations,
// and targets with overlapping budgets propose the same SubNets, which the cache then serves.
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/searcher/search_target.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_shapes.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sfn {

struct EvolutionOptions {
  int population = 100;
  int generations = 20;
  double parent_ratio = 0.25;
  double mutation_ratio = 0.2;
  double gene_prob = 0.1;
  std::uint64_t seed = 0;
  int max_attempts = 500;   // resampling attempts per candidate before the fallback
  double warm_start = 0.5;  // fraction of the initial population seeded from the cache
  void validate() const;    // throws ConfigError naming the option
};

// One SubNet as the search sees it. During the search `config` keeps the raw genes (inactive
// blocks too, so a mutation that deepens a stage revives the gene it had); a result's best
// holds the canonical form: inactive genes zeroed and each block's smallest expand ratio
// that gives its mid width (ratios that round to the same width are the same network).
// `text` is always the canonical form's text.
struct Candidate {
  SubNetConfig config;
  std::string text;
  Cost cost;
  std::optional<double> latency_ms;  // predicted with the current target's table, if any
  double fitness = 0.0;
};

struct CacheStats {
  std::int64_t hits = 0;
  std::int64_t misses = 0;  // = calls of the fitness function
  std::int64_t lookups() const { return hits + misses; }
  std::int64_t evaluations() const { return misses; }
};

struct SearchResult {
  std::string target;
  bool feasible = false;
  std::string infeasible_reason;  // set when !feasible
  Candidate best;
  std::vector<double> best_per_generation;  // [0] = initial population
  CacheStats stats;                         // this target's share of the cache traffic
  std::int64_t fallbacks = 0;  // candidates replaced after max_attempts infeasible samples
  double seconds = 0.0;
};

// What the progress callback sees after the initial population (generation 0) and after
// each generation. References are valid during the call only.
struct GenerationReport {
  const SearchTarget& target;
  std::size_t target_index;
  std::size_t num_targets;
  int generation;
  int generations;
  const Candidate& best;
  const std::vector<Candidate>& population;
  const CacheStats& total;  // the shared cache, all targets so far
};

// An entry of the shared cache.
struct EvaluatedSubNet {
  SubNetConfig config;  // canonical form (see Candidate)
  std::string text;
  Cost cost;
  double fitness = 0.0;
};

using FitnessFn = std::function<double(const SubNetConfig&)>;
using GenerationCallback = std::function<void(const GenerationReport&)>;

class EvolutionSearch {
 public:
  // `fitness` is called once per distinct network, with its canonical config, never for a
  // cached one. The cache key is the network a config denotes (depth per stage, mid
  // channels per active block): expand ratios that round to the same mid width select the
  // same weights, so they are one network and share one evaluation.
  // Throws ConfigError on bad options.
  EvolutionSearch(DesignSpace space, FitnessFn fitness, EvolutionOptions opts);

  void onGeneration(GenerationCallback callback) { callback_ = std::move(callback); }

  // Searches one target, using and extending the shared cache. Throws ConfigError if the
  // target's latency table does not fit the design space; exceptions of the fitness
  // function propagate.
  SearchResult search(const SearchTarget& target);
  // One search per target, in order, sharing the cache.
  std::vector<SearchResult> searchAll(const std::vector<SearchTarget>& targets);

  // Cached fitness of a SubNet (evaluates it on a miss).
  double fitness(const SubNetConfig& config);

  const CacheStats& stats() const { return stats_; }
  // Every SubNet evaluated so far, in evaluation order.
  const std::vector<EvaluatedSubNet>& evaluated() const { return evaluated_; }
  const DesignSpace& space() const { return space_; }
  const EvolutionOptions& options() const { return opts_; }

 private:
  struct Run;  // one target's search in progress
  // The phases of one target's search, in order.
  SearchResult run(const SearchTarget& target, std::size_t index, std::size_t count);
  std::vector<Candidate> warmStart(const SearchTarget& target);
  // False (with the reason in the result) when not even the MinNet meets the budgets.
  bool initialPopulation(Run& run);
  void nextGeneration(Run& run, int generation);
  // Sorts the population, records its best and calls the progress callback.
  void rankAndReport(Run& run, int generation);
  // Regenerates a child until it fits the budgets; falls back to the (feasible) parent.
  SubNetConfig feasibleChild(Run& run, const std::function<SubNetConfig()>& make,
                             const SubNetConfig& fallback);
  Candidate makeCandidate(const SubNetConfig& config, const SearchTarget& target);
  // Fills the cost and predicted latency of `config`; false if it violates the budgets.
  bool fits(const SubNetConfig& config, const SearchTarget& target, Cost& cost,
            std::optional<double>& latency) const;

  DesignSpace space_;
  FitnessFn fitness_fn_;
  EvolutionOptions opts_;
  GenerationCallback callback_;
  std::unordered_map<std::string, std::size_t> cache_;  // network key -> evaluated_ index
  std::vector<EvaluatedSubNet> evaluated_;
  CacheStats stats_;
};

}  // namespace sfn
