#include "sfn/searcher/evolution_search.h"

#include "sfn/core/error.h"
#include "sfn/core/rng.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace sfn {

namespace {

// The search's total order: fitness descending, then MACs ascending, then text.
bool better(const Candidate& a, const Candidate& b) {
  if (a.fitness != b.fitness) return a.fitness > b.fitness;
  if (a.cost.macs != b.cost.macs) return a.cost.macs < b.cost.macs;
  return a.text < b.text;
}

// The network a config denotes: depth per stage and the mid channels of each active block.
// Expand ratios that round to the same mid width give the same network (the same prefix
// slices of the same weights), so they share one cache entry and one evaluation.
std::string archKey(const DesignSpace& space, const SubNetConfig& config) {
  std::string key;
  for (int d : config.depth) key += std::to_string(d) + ',';
  key += '|';
  for (int b = 0; b < space.numBlocks(); ++b)
    if (config.isActive(space, b))
      key += std::to_string(space.midChannels(space.widths[b / space.blocks_per_stage],
                                              config.expandRatio(space, b))) +
             ',';
  return key;
}

// The same network written one way: inactive genes zeroed and, per active block, the
// smallest expand ratio that gives its mid width. One readable text per network.
SubNetConfig canonical(const DesignSpace& space, const SubNetConfig& config) {
  SubNetConfig c = config.normalized(space);
  for (int b = 0; b < space.numBlocks(); ++b) {
    if (!c.isActive(space, b)) continue;
    const int width = space.widths[b / space.blocks_per_stage];
    const int mid = space.midChannels(width, c.expandRatio(space, b));
    for (std::size_t k = 0; k < space.expand_choices.size(); ++k)
      if (space.midChannels(width, space.expand_choices[k]) == mid) {
        c.expand[static_cast<std::size_t>(b)] = static_cast<int>(k);
        break;
      }
  }
  return c;
}

int roundCount(double ratio, int population) {
  return static_cast<int>(std::lround(ratio * population));
}

}  // namespace

void EvolutionOptions::validate() const {
  if (population < 2)
    SFN_THROW(ConfigError, "search: population must be >= 2 (got ", population, ")");
  if (generations < 0) SFN_THROW(ConfigError, "search: generations must be >= 0");
  if (!(parent_ratio > 0 && parent_ratio <= 1))
    SFN_THROW(ConfigError, "search: parent_ratio must be in (0, 1] (got ", parent_ratio, ")");
  if (!(mutation_ratio >= 0 && mutation_ratio <= 1))
    SFN_THROW(ConfigError, "search: mutation_ratio must be in [0, 1] (got ", mutation_ratio, ")");
  if (roundCount(parent_ratio, population) < 1)
    SFN_THROW(ConfigError, "search: parent_ratio x population must round to >= 1 parent");
  if (roundCount(parent_ratio, population) + roundCount(mutation_ratio, population) > population)
    SFN_THROW(ConfigError, "search: parent_ratio + mutation_ratio must not exceed 1");
  if (!(gene_prob >= 0 && gene_prob <= 1))
    SFN_THROW(ConfigError, "search: gene_prob must be in [0, 1] (got ", gene_prob, ")");
  if (max_attempts < 1) SFN_THROW(ConfigError, "search: max_attempts must be >= 1");
  if (!(warm_start >= 0 && warm_start <= 1))
    SFN_THROW(ConfigError, "search: warm_start must be in [0, 1] (got ", warm_start, ")");
}

EvolutionSearch::EvolutionSearch(DesignSpace space, FitnessFn fitness, EvolutionOptions opts)
    : space_(std::move(space)), fitness_fn_(std::move(fitness)), opts_(opts) {
  space_.validate();
  opts_.validate();
  SFN_ENFORCE(static_cast<bool>(fitness_fn_), ConfigError, "search: no fitness function");
}

double EvolutionSearch::fitness(const SubNetConfig& config) {
  config.validate(space_);
  std::string key = archKey(space_, config);
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    ++stats_.hits;
    return evaluated_[it->second].fitness;
  }
  const SubNetConfig norm = canonical(space_, config);
  std::string text = norm.toString(space_);
  const double f = fitness_fn_(norm);
  SFN_ENFORCE(std::isfinite(f), Error, "search: fitness of ", text, " is not finite (", f, ")");
  ++stats_.misses;
  cache_.emplace(std::move(key), evaluated_.size());
  evaluated_.push_back({norm, std::move(text), computeCost(space_, norm), f});
  return f;
}

bool EvolutionSearch::fits(const SubNetConfig& config, const SearchTarget& target, Cost& cost,
                           std::optional<double>& latency) const {
  cost = computeCost(space_, config);
  latency = target.predictLatencyMs(space_, config);
  return target.violation(cost, latency).empty();
}

Candidate EvolutionSearch::makeCandidate(const SubNetConfig& config, const SearchTarget& target) {
  Candidate c;
  c.config = config;
  c.text = canonical(space_, config).toString(space_);
  c.cost = computeCost(space_, config);
  c.latency_ms = target.predictLatencyMs(space_, config);
  c.fitness = fitness(config);
  return c;
}

SearchResult EvolutionSearch::search(const SearchTarget& target) { return run(target, 0, 1); }

std::vector<SearchResult> EvolutionSearch::searchAll(const std::vector<SearchTarget>& targets) {
  std::vector<SearchResult> out;
  out.reserve(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i)
    out.push_back(run(targets[i], i, targets.size()));
  return out;
}

// One target's search in progress: what the phases of run() hand each other.
struct EvolutionSearch::Run {
  const SearchTarget& target;
  std::size_t index;
  std::size_t count;
  Rng rng;
  SubNetConfig minnet;
  std::string minnet_violation;  // empty if the MinNet meets the budgets
  std::vector<Candidate> population;
  SearchResult result;
};

SearchResult EvolutionSearch::run(const SearchTarget& target, std::size_t index,
                                  std::size_t count) {
  const auto t0 = std::chrono::steady_clock::now();
  target.checkSpace(space_);
  const CacheStats before = stats_;
  Run run{target, index, count, Rng(opts_.seed), SubNetConfig::minNet(space_), {}, {}, {}};
  run.result.target = target.name;
  {
    Cost cost;
    std::optional<double> lat;
    fits(run.minnet, target, cost, lat);
    run.minnet_violation = target.violation(cost, lat);
  }
  if (initialPopulation(run)) {
    for (int g = 1; g <= opts_.generations; ++g) nextGeneration(run, g);
    run.result.feasible = true;
    run.result.best = run.population.front();
    run.result.best.config = canonical(space_, run.result.best.config);
  }
  run.result.stats.hits = stats_.hits - before.hits;
  run.result.stats.misses = stats_.misses - before.misses;
  run.result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::move(run.result);
}

std::vector<Candidate> EvolutionSearch::warmStart(const SearchTarget& target) {
  std::vector<Candidate> known;
  if (!(opts_.warm_start > 0) || evaluated_.empty()) return known;
  // The best SubNets other targets already paid for, when they fit this target too.
  Cost cost;
  std::optional<double> lat;
  for (const auto& e : evaluated_) {
    if (!fits(e.config, target, cost, lat)) continue;
    Candidate c;
    c.config = e.config;
    c.text = e.text;
    c.cost = cost;
    c.latency_ms = lat;
    c.fitness = e.fitness;
    known.push_back(std::move(c));
  }
  std::sort(known.begin(), known.end(), better);
  const auto take = std::min<std::size_t>(
      known.size(), static_cast<std::size_t>(std::floor(opts_.warm_start * opts_.population)));
  known.resize(take);
  stats_.hits += static_cast<std::int64_t>(take);  // served from the cache
  return known;
}

bool EvolutionSearch::initialPopulation(Run& run) {
  run.population = warmStart(run.target);
  run.population.reserve(static_cast<std::size_t>(opts_.population));
  Cost cost;
  std::optional<double> lat;
  while (static_cast<int>(run.population.size()) < opts_.population) {
    bool found = false;
    SubNetConfig c;
    for (int a = 0; a < opts_.max_attempts && !found; ++a) {
      c = SubNetConfig::random(space_, run.rng);
      found = fits(c, run.target, cost, lat);
    }
    if (!found) {
      ++run.result.fallbacks;
      if (run.minnet_violation.empty()) {
        c = run.minnet;
      } else if (!run.population.empty()) {
        c = run.population[run.rng.below(run.population.size())].config;
      } else {
        run.result.infeasible_reason = "no SubNet meets " + run.target.describe() +
                                       "; even the MinNet violates it (" + run.minnet_violation +
                                       ")";
        return false;
      }
    }
    run.population.push_back(makeCandidate(c, run.target));
  }
  rankAndReport(run, 0);
  return true;
}

SubNetConfig EvolutionSearch::feasibleChild(Run& run, const std::function<SubNetConfig()>& make,
                                            const SubNetConfig& fallback) {
  Cost cost;
  std::optional<double> lat;
  for (int a = 0; a < opts_.max_attempts; ++a) {
    SubNetConfig child = make();
    if (fits(child, run.target, cost, lat)) return child;
  }
  ++run.result.fallbacks;
  return fallback;
}

void EvolutionSearch::nextGeneration(Run& run, int generation) {
  const int pop_size = opts_.population;
  const int num_parents = roundCount(opts_.parent_ratio, pop_size);
  const int num_mutants = roundCount(opts_.mutation_ratio, pop_size);
  std::vector<Candidate>& population = run.population;
  Rng& rng = run.rng;
  population.resize(static_cast<std::size_t>(num_parents));
  std::vector<Candidate> children;
  children.reserve(static_cast<std::size_t>(pop_size - num_parents));
  for (int i = 0; i < num_mutants; ++i) {
    const SubNetConfig& parent = population[rng.below(population.size())].config;
    SubNetConfig child = feasibleChild(
        run, [&] { return parent.mutate(space_, rng, opts_.gene_prob); }, parent);
    children.push_back(makeCandidate(child, run.target));
  }
  for (int i = num_parents + num_mutants; i < pop_size; ++i) {
    const SubNetConfig& a = population[rng.below(population.size())].config;
    const SubNetConfig& b = population[rng.below(population.size())].config;
    SubNetConfig child = feasibleChild(
        run, [&] { return SubNetConfig::crossover(a, b, rng); }, a);
    children.push_back(makeCandidate(child, run.target));
  }
  for (auto& c : children) population.push_back(std::move(c));
  rankAndReport(run, generation);
}

void EvolutionSearch::rankAndReport(Run& run, int generation) {
  std::sort(run.population.begin(), run.population.end(), better);
  run.result.best_per_generation.push_back(run.population.front().fitness);
  if (callback_)
    callback_({run.target, run.index, run.count, generation, opts_.generations,
               run.population.front(), run.population, stats_});
}

}  // namespace sfn
