// bench_search: cost of the one-shot search for 1, 5 and 10 targets with one shared fitness
// cache, and accuracy of the additive latency table.
//
// Search: the fmnist SuperNet (fresh init, or --checkpoint from a run), fitness = accuracy on
// a seeded subset of the Fashion-MNIST validation split (real evaluations). Ten MACs
// budgets spread over [MinNet, MaxNet]; the first 1, 5 and all 10 are searched, each set
// with a fresh EvolutionSearch (fresh cache), in the same process. Goal: ratio_10_to_1 =
// wall(10 targets) / wall(1 target) <= 3.
//
// Latency table: profiled in-process for this machine while >= 20 random SubNets are timed
// whole (same clock, threads and statistic; one sample of each after every profiling pass,
// so both see the same machine conditions) and compared with the table's prediction. Goal:
// lut_mape (mean absolute percentage error, as a fraction) <= 0.10.
#include "sfn/core/bytes.h"
#include "sfn/core/error.h"
#include "sfn/core/rng.h"
#include "sfn/data/data_source.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/model/checkpoint.h"
#include "sfn/model/latency_table.h"
#include "sfn/model/supernet.h"
#include "sfn/searcher/evolution_search.h"
#include "sfn/searcher/search_pipeline.h"
#include "sfn/searcher/search_target.h"
#include "sfn/train/evaluator.h"
#include "sfn/train/local_trainer.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string checkpoint;
  std::string data_dir;
  int threads = 2;
  int population = 32;
  int generations = 10;
  int val_samples = 500;
  std::uint64_t seed = 1;
  double warm_start = 0.5;
  int lut_subnets = 30;
  int lut_repeats = 100;
  double lut_quantile = 0.5;
  int lut_threads = 1;
  std::string lut_clock = "auto";
  bool skip_search = false;
  bool skip_lut = false;
  std::string out;
};

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void addOptions(CLI::App& app, BenchOptions& o) {
  app.add_option("--checkpoint", o.checkpoint, "trained SuperNet (default: fresh fmnist init)");
  app.add_option("--data-dir", o.data_dir, "Fashion-MNIST folder");
  app.add_option("--threads", o.threads, "torch intra-op threads")->capture_default_str();
  app.add_option("--population", o.population, "search population")->capture_default_str();
  app.add_option("--generations", o.generations, "search generations")->capture_default_str();
  app.add_option("--val-samples", o.val_samples, "validation images per fitness evaluation")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "search seed")->capture_default_str();
  app.add_option("--warm-start", o.warm_start,
                 "fraction of a target's first population seeded from the cache (0 = OFA's "
                 "purely random start)")
      ->capture_default_str();
  app.add_option("--lut-subnets", o.lut_subnets, "random SubNets timed whole (>= 20)")
      ->check(CLI::Range(20, 100000))
      ->capture_default_str();
  app.add_option("--lut-repeats", o.lut_repeats, "timed samples per latency measurement")
      ->capture_default_str();
  app.add_option("--lut-quantile", o.lut_quantile,
                 "sample quantile for table and whole-SubNet latencies (0.5 = median)")
      ->capture_default_str();
  app.add_option("--lut-threads", o.lut_threads,
                 "torch threads while profiling and timing SubNets (the device's setting)")
      ->capture_default_str();
  app.add_option("--lut-clock", o.lut_clock, "auto | wall | thread_cpu")
      ->check(CLI::IsMember({"auto", "wall", "thread_cpu"}))
      ->capture_default_str();
  app.add_flag("--skip-search", o.skip_search, "only the latency table part");
  app.add_flag("--skip-lut", o.skip_lut, "only the search part");
  app.add_option("--json", o.out, "write the results as a flat JSON object to this file");
}

// The SuperNet to search: a checkpoint's (run folder, checkpoint folder or file), or a fresh
// fmnist init.
struct BenchNet {
  sfn::DesignSpace space;
  std::optional<sfn::SuperNet> supernet;
  Json run;  // the checkpoint's run info, if any
};

BenchNet loadNet(const BenchOptions& o) {
  BenchNet net;
  if (o.checkpoint.empty()) {
    net.space = sfn::DesignSpace::preset("fmnist");
    net.supernet.emplace(net.space, o.seed);
    return net;
  }
  sfn::Checkpoint ck = sfn::readCheckpoint(sfn::resolveCheckpoint(o.checkpoint));
  net.space = sfn::DesignSpace::fromToml(ck.metadata.at("design_space").get<std::string>());
  net.supernet.emplace(net.space, std::move(ck.tensors));
  net.run = ck.metadata.value("run", Json());
  return net;
}

// The data the net was trained on (by its run info), else Fashion-MNIST's defaults.
sfn::DataBundle loadData(const BenchOptions& o, const BenchNet& net) {
  sfn::DataOptions d;
  d.dir = o.data_dir;
  if (net.run.is_object()) {
    d.dataset = net.run.value("dataset", d.dataset);
    d.val_fraction = net.run.value("val_fraction", d.val_fraction);
    d.split_seed = net.run.value("split_seed", d.split_seed);
    if (o.data_dir.empty()) d.dir = net.run.value("data_dir", d.dir);
  }
  d.synthetic_channels = net.space.in_channels;
  d.synthetic_image_size = net.space.image_size;
  d.synthetic_classes = net.space.num_classes;
  return sfn::loadDataBundle(d);
}

// Ten MACs budgets at k/10 of the way from MinNet to MaxNet, ordered so that every prefix
// spreads over the range: the 1-target run is the middle budget.
std::vector<sfn::SearchTarget> macsTargets(const sfn::DesignSpace& space) {
  const std::int64_t lo = sfn::computeCost(space, sfn::SubNetConfig::minNet(space)).macs;
  const std::int64_t hi = sfn::computeCost(space, sfn::SubNetConfig::maxNet(space)).macs;
  std::vector<sfn::SearchTarget> targets;
  for (int k : {5, 1, 9, 3, 7, 2, 8, 4, 6, 10}) {
    sfn::SearchTarget t;
    t.max_macs = lo + (hi - lo) * k / 10;
    t.name = t.device = "macs" + std::to_string(k * 10) + "pct";
    targets.push_back(t);
  }
  return targets;
}

struct SearchRun {
  double wall_s = 0;
  std::int64_t evaluations = 0;
  std::int64_t hits = 0;
};

// The first `count` targets with a fresh EvolutionSearch (fresh cache).
SearchRun searchTargets(const BenchNet& net, const sfn::Evaluator& eval,
                        const sfn::EvolutionOptions& eo,
                        const std::vector<sfn::SearchTarget>& targets, std::size_t count) {
  sfn::EvolutionSearch search(
      net.space,
      [&](const sfn::SubNetConfig& c) {
        return eval.evaluate(*net.supernet, {"", c}).accuracy;
      },
      eo);
  const std::vector<sfn::SearchTarget> subset(targets.begin(),
                                              targets.begin() + static_cast<std::ptrdiff_t>(count));
  const auto t0 = Clock::now();
  const auto results = search.searchAll(subset);
  SearchRun r{secondsSince(t0), search.stats().misses, search.stats().hits};
  std::fprintf(stderr, "%zu target(s): %.1f s, %lld evaluations, %lld cache hits\n", count,
               r.wall_s, static_cast<long long>(r.evaluations), static_cast<long long>(r.hits));
  for (const auto& res : results)
    std::fprintf(stderr, "  %-12s best %.4f  %s  %lld MACs  (%lld evals, %lld hits)\n",
                 res.target.c_str(), res.best.fitness, res.best.text.c_str(),
                 static_cast<long long>(res.best.cost.macs),
                 static_cast<long long>(res.stats.misses), static_cast<long long>(res.stats.hits));
  return r;
}

void benchSearch(const BenchOptions& o, const BenchNet& net, Json& out) {
  const sfn::DataBundle data = loadData(o, net);
  // The validation subset sfn-search would pick for this seed.
  const sfn::IndexList val = sfn::seededSubset(data.split.val, o.val_samples, o.seed);
  sfn::IndexList bn(
      data.split.train.begin(),
      data.split.train.begin() +
          std::min<std::ptrdiff_t>(2000, static_cast<std::ptrdiff_t>(data.split.train.size())));
  const sfn::Evaluator eval({data.train, val}, {data.train, bn}, {500, "cpu", 4});
  const std::vector<sfn::SearchTarget> targets = macsTargets(net.space);
  sfn::EvolutionOptions eo;
  eo.population = o.population;
  eo.generations = o.generations;
  eo.seed = o.seed;
  eo.warm_start = o.warm_start;
  const SearchRun r1 = searchTargets(net, eval, eo, targets, 1);
  const SearchRun r5 = searchTargets(net, eval, eo, targets, 5);
  const SearchRun r10 = searchTargets(net, eval, eo, targets, 10);
  out["population"] = o.population;
  out["generations"] = o.generations;
  out["warm_start"] = o.warm_start;
  out["val_samples"] = static_cast<std::int64_t>(val.size());
  out["evals_per_s"] = static_cast<double>(r1.evaluations) / r1.wall_s;
  out["wall_s_1_target"] = r1.wall_s;
  out["wall_s_5_targets"] = r5.wall_s;
  out["wall_s_10_targets"] = r10.wall_s;
  out["ratio_10_to_1"] = r10.wall_s / r1.wall_s;
  out["ratio_5_to_1"] = r5.wall_s / r1.wall_s;
  out["evaluations_1_target"] = r1.evaluations;
  out["evaluations_5_targets"] = r5.evaluations;
  out["evaluations_10_targets"] = r10.evaluations;
  out["cache_hits_10_targets"] = r10.hits;
}

// Random SubNets timed whole, one sample of each after every pass of the table's profiling.
struct TimedSubNets {
  std::vector<sfn::SubNetConfig> configs;
  std::vector<sfn::SubNetModule> modules;
  std::vector<std::unique_ptr<sfn::SubNetTimer>> timers;
};

// Compares every SubNet's measured latency with the table's prediction.
void reportLutError(const BenchOptions& o, const BenchNet& net, const sfn::LatencyTable& table,
                    const TimedSubNets& subnets, Json& out) {
  double sum_ape = 0;
  double max_ape = 0;
  double sum_ms = 0;
  for (std::size_t i = 0; i < subnets.configs.size(); ++i) {
    const double measured = subnets.timers[i]->quantileMs();
    const double predicted = table.predictMs(net.space, subnets.configs[i]);
    const double ape = std::abs(predicted - measured) / measured;
    std::fprintf(stderr, "  %-60s measured %.4f ms  predicted %.4f ms  (%+.1f %%, %zu samples)\n",
                 subnets.configs[i].toString(net.space).c_str(), measured, predicted,
                 100.0 * (predicted - measured) / measured, subnets.timers[i]->samples());
    sum_ape += ape;
    max_ape = std::max(max_ape, ape);
    sum_ms += measured;
  }
  out["lut_subnets"] = o.lut_subnets;
  out["lut_quantile"] = o.lut_quantile;
  out["lut_threads"] = at::get_num_threads();
  out["lut_clock"] = table.info().clock;
  out["lut_mape"] = sum_ape / o.lut_subnets;
  out["lut_max_ape"] = max_ape;
  out["lut_mean_measured_ms"] = sum_ms / o.lut_subnets;
}

void benchLut(const BenchOptions& o, const BenchNet& net, Json& out) {
  sfn::LatencyProfileOptions lp;
  lp.repeats = o.lut_repeats;
  lp.quantile = o.lut_quantile;
  lp.clock = sfn::parseLatencyClock(o.lut_clock);
  sfn::setTorchThreads(o.lut_threads);
  // The validation SubNets are timed while the table is profiled: after every profiling
  // pass, one sample of each. A shared machine's speed drifts with other load over
  // seconds; interleaved, the table and the whole-SubNet samples see the same drift.
  sfn::Rng rng(o.seed, 0x1A7);
  TimedSubNets subnets;
  for (int i = 0; i < o.lut_subnets; ++i) {
    subnets.configs.push_back(sfn::SubNetConfig::random(net.space, rng));
    subnets.modules.push_back(net.supernet->buildModule(subnets.configs.back()));
  }
  for (auto& m : subnets.modules)
    subnets.timers.push_back(std::make_unique<sfn::SubNetTimer>(*m, lp));
  const auto t0 = Clock::now();
  const sfn::LatencyTable table = sfn::profileLatency(net.space, lp, {}, [&] {
    for (auto& t : subnets.timers) (void)t->sampleMs();
  });
  out["lut_profile_and_validate_s"] = secondsSince(t0);
  out["lut_entries"] = static_cast<std::int64_t>(table.entries().size());
  reportLutError(o, net, table, subnets, out);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_search: one-shot search cost for 1/5/10 targets and latency-table error"};
  BenchOptions o;
  addOptions(app, o);
  CLI11_PARSE(app, argc, argv);

  try {
    sfn::setTorchThreads(o.threads);
    Json out;
    out["threads"] = at::get_num_threads();
    const BenchNet net = loadNet(o);
    out["design_space"] = net.space.name;
    out["checkpoint"] = o.checkpoint.empty() ? "fresh-init" : o.checkpoint;
    if (!o.skip_search) benchSearch(o, net, out);
    if (!o.skip_lut) benchLut(o, net, out);

    const std::string text = out.dump(2);
    std::cout << text << std::endl;
    if (!o.out.empty()) sfn::writeFileAtomically(o.out, sfn::asBytes(text + "\n"));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_search: " << e.what() << std::endl;
    return 1;
  }
}
