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
#include "sfn/model/checkpoint.h"
#include "sfn/data/data_source.h"
#include "sfn/core/error.h"
#include "sfn/train/evaluator.h"
#include "sfn/searcher/evolution_search.h"
#include "sfn/model/latency_table.h"
#include "sfn/train/local_trainer.h"
#include "sfn/core/rng.h"
#include "sfn/searcher/search_target.h"
#include "sfn/model/supernet.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
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

// The SuperNet and the run info of a checkpoint (run folder, checkpoint folder or file).
std::optional<sfn::Checkpoint> readCheckpointArg(const std::string& arg) {
  if (arg.empty()) return std::nullopt;
  std::filesystem::path p = arg;
  if (std::filesystem::is_directory(p)) {
    const auto dir = std::filesystem::exists(p / "checkpoints") ? p / "checkpoints" : p;
    auto latest = sfn::CheckpointDir(dir).latest();
    SFN_ENFORCE(latest.has_value(), sfn::ConfigError, "no checkpoint in '", arg, "'");
    p = *latest;
  }
  return sfn::readCheckpoint(p);
}

struct SearchRun {
  double wall_s = 0;
  std::int64_t evaluations = 0;
  std::int64_t hits = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_search: one-shot search cost for 1/5/10 targets and latency-table error"};
  BenchOptions o;
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
  CLI11_PARSE(app, argc, argv);

  try {
    sfn::setTorchThreads(o.threads);
    Json out;
    out["threads"] = at::get_num_threads();

    std::optional<sfn::Checkpoint> ck = readCheckpointArg(o.checkpoint);
    const sfn::DesignSpace space =
        ck ? sfn::DesignSpace::fromToml(ck->metadata.at("design_space").get<std::string>())
           : sfn::DesignSpace::preset("fmnist");
    const sfn::SuperNet supernet =
        ck ? sfn::SuperNet(space, std::move(ck->tensors)) : sfn::SuperNet(space, o.seed);
    out["design_space"] = space.name;
    out["checkpoint"] = o.checkpoint.empty() ? "fresh-init" : o.checkpoint;

    if (!o.skip_search) {
      sfn::DataOptions d;
      d.dir = o.data_dir;
      if (ck && ck->metadata.contains("run")) {
        const Json& run = ck->metadata["run"];
        d.dataset = run.value("dataset", d.dataset);
        d.val_fraction = run.value("val_fraction", d.val_fraction);
        d.split_seed = run.value("split_seed", d.split_seed);
        if (o.data_dir.empty()) d.dir = run.value("data_dir", d.dir);
      }
      d.synthetic_channels = space.in_channels;
      d.synthetic_image_size = space.image_size;
      d.synthetic_classes = space.num_classes;
      const sfn::DataBundle data = sfn::loadDataBundle(d);
      sfn::IndexList val = data.split.val;
      sfn::Rng pick(o.seed, 0x5EA4C4);
      const auto n = std::min<std::size_t>(static_cast<std::size_t>(o.val_samples), val.size());
      for (std::size_t i = 0; i < n; ++i) std::swap(val[i], val[i + pick.below(val.size() - i)]);
      val.resize(n);
      std::sort(val.begin(), val.end());
      sfn::IndexList bn(
          data.split.train.begin(),
          data.split.train.begin() +
              std::min<std::ptrdiff_t>(2000, static_cast<std::ptrdiff_t>(data.split.train.size())));
      const sfn::Evaluator eval(data.train, val, bn, 500, "cpu", 4);

      // Ten MACs budgets at k/10 of the way from MinNet to MaxNet, ordered so that every
      // prefix spreads over the range: the 1-target run is the middle budget.
      const std::int64_t lo = sfn::computeCost(space, sfn::SubNetConfig::minNet(space)).macs;
      const std::int64_t hi = sfn::computeCost(space, sfn::SubNetConfig::maxNet(space)).macs;
      std::vector<sfn::SearchTarget> targets;
      for (int k : {5, 1, 9, 3, 7, 2, 8, 4, 6, 10}) {
        sfn::SearchTarget t;
        t.max_macs = lo + (hi - lo) * k / 10;
        t.name = t.device = "macs" + std::to_string(k * 10) + "pct";
        targets.push_back(t);
      }
      sfn::EvolutionOptions eo;
      eo.population = o.population;
      eo.generations = o.generations;
      eo.seed = o.seed;
      eo.warm_start = o.warm_start;
      auto runTargets = [&](std::size_t count) {
        sfn::EvolutionSearch search(
            space,
            [&](const sfn::SubNetConfig& c) {
              return eval.evaluate(supernet, {"", c}).accuracy;
            },
            eo);
        const std::vector<sfn::SearchTarget> subset(
            targets.begin(), targets.begin() + static_cast<std::ptrdiff_t>(count));
        const auto t0 = Clock::now();
        const auto results = search.searchAll(subset);
        SearchRun r{secondsSince(t0), search.stats().misses, search.stats().hits};
        std::fprintf(stderr, "%zu target(s): %.1f s, %lld evaluations, %lld cache hits\n", count,
                     r.wall_s, static_cast<long long>(r.evaluations),
                     static_cast<long long>(r.hits));
        for (const auto& res : results)
          std::fprintf(stderr, "  %-12s best %.4f  %s  %lld MACs  (%lld evals, %lld hits)\n",
                       res.target.c_str(), res.best.fitness, res.best.text.c_str(),
                       static_cast<long long>(res.best.cost.macs),
                       static_cast<long long>(res.stats.misses),
                       static_cast<long long>(res.stats.hits));
        return r;
      };
      const SearchRun r1 = runTargets(1);
      const SearchRun r5 = runTargets(5);
      const SearchRun r10 = runTargets(10);
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

    if (!o.skip_lut) {
      sfn::LatencyProfileOptions lp;
      lp.repeats = o.lut_repeats;
      lp.quantile = o.lut_quantile;
      lp.clock = sfn::parseLatencyClock(o.lut_clock);
      sfn::setTorchThreads(o.lut_threads);
      // The validation SubNets are timed while the table is profiled: after every profiling
      // pass, one sample of each. A shared machine's speed drifts with other load over
      // seconds; interleaved, the table and the whole-SubNet samples see the same drift.
      sfn::Rng rng(o.seed, 0x1A7);
      std::vector<sfn::SubNetConfig> configs;
      std::vector<sfn::SubNetModule> modules;
      std::vector<std::unique_ptr<sfn::SubNetTimer>> timers;
      for (int i = 0; i < o.lut_subnets; ++i) {
        configs.push_back(sfn::SubNetConfig::random(space, rng));
        modules.push_back(supernet.buildModule(configs.back()));
      }
      for (auto& m : modules) timers.push_back(std::make_unique<sfn::SubNetTimer>(*m, lp));
      const auto t0 = Clock::now();
      const sfn::LatencyTable table = sfn::profileLatency(space, lp, {}, [&] {
        for (auto& t : timers) (void)t->sampleMs();
      });
      out["lut_profile_and_validate_s"] = secondsSince(t0);
      out["lut_entries"] = static_cast<std::int64_t>(table.entries().size());
      double sum_ape = 0;
      double max_ape = 0;
      double sum_ms = 0;
      for (std::size_t i = 0; i < configs.size(); ++i) {
        const double measured = timers[i]->quantileMs();
        const double predicted = table.predictMs(space, configs[i]);
        const double ape = std::abs(predicted - measured) / measured;
        std::fprintf(stderr,
                     "  %-60s measured %.4f ms  predicted %.4f ms  (%+.1f %%, %zu samples)\n",
                     configs[i].toString(space).c_str(), measured, predicted,
                     100.0 * (predicted - measured) / measured, timers[i]->samples());
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

    const std::string text = out.dump(2);
    std::cout << text << std::endl;
    if (!o.out.empty()) {
      std::ofstream f(o.out, std::ios::trunc);
      f << text << '\n';
      if (!f) SFN_THROW(sfn::IoError, "cannot write '", o.out, "'");
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_search: " << e.what() << std::endl;
    return 1;
  }
}
