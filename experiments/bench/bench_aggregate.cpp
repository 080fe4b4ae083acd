// bench_aggregate: throughput and memory of the streaming overlap accumulator.
//
// Throughput: K updates of random SubNets are merged with OverlapAccumulator::add (what the
// server runs per update, validation included) and compared with std::memcpy of the same
// update bytes into a preallocated buffer, in the same process, interleaved update by
// update. Each side reports its best of --repeats repetitions. Goal: ratio >= 0.5.
//
// Memory (paper-cifar10): peak RSS growth while K updates are generated, added and dropped
// one at a time and the result written back, divided by the SuperNet's bytes. Goal: <= 2.5
// and flat in K (the accumulator is O(SuperNet), not O(K x SuperNet)).
//
// Robust aggregation (issue 13), per preset, on the same K random updates in one process,
// against the plain path as the baseline (best of --repeats rounds each):
//   plain    OverlapAccumulator::addPrefixSlice per update, then finishInto (the baseline)
//   bound    measureChange per update (the default update bound) + plain
//   clip     measureChange + addScaledChange (every update clipped) + finishInto
//   trim     TrimmedMeanAggregator::add per update (holds it) + its finishInto (trim 0.2)
//   rollback CoveredBackup: cover every update, save, restore (with the health probe on)
// with the memory each holds over the SuperNet's bytes (the trimmed mean holds the round's
// updates: K random SubNets' bytes).
//
// Every measurement runs in a forked child. A fresh process per K makes each peak its own
// (nothing left over from an earlier, larger run in the allocator or in VmHWM), and the
// parent never touches torch, so no OpenMP thread team exists at fork time (libgomp is not
// fork-safe once a team has been started).
#include "run_in_child.h"
#include "sfn/core/error.h"
#include "sfn/fl/change_norm.h"
#include "sfn/fl/covered_backup.h"
#include "sfn/fl/overlap_accumulator.h"
#include "sfn/fl/trimmed_mean_aggregator.h"
#include "sfn/core/rng.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  int threads = 2;
  int bw_updates = 16;
  int repeats = 5;
  double min_seconds = 0.2;
  bool skip_rss = false;
  bool skip_robust = false;
  int robust_k = 10;
  std::vector<int> rss_updates = {8, 64, 512};
  std::uint64_t seed = 1;
  std::string out;
};

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct MemStatus {
  std::int64_t rss = 0;  // bytes
  std::int64_t hwm = 0;  // bytes
};

MemStatus readMemStatus() {
  std::ifstream in("/proc/self/status");
  MemStatus m;
  std::string line;
  while (std::getline(in, line)) {
    auto kb = [&](const char* key) { return std::stoll(line.substr(std::strlen(key))) * 1024; };
    if (line.rfind("VmRSS:", 0) == 0) m.rss = kb("VmRSS:");
    if (line.rfind("VmHWM:", 0) == 0) m.hwm = kb("VmHWM:");
  }
  return m;
}

// Resets VmHWM to the current RSS (Linux >= 4.0, own process). False if not permitted.
bool resetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

using sfn::bench::runInChild;

// A client's update for `config`: contiguous copies of the SuperNet's (randomly
// initialized) slice, as a decoded message would hold. The SuperNet doubles as the one
// preallocated random buffer per shape, so generating an update is a single copy.
sfn::NamedTensors makeUpdate(const sfn::SuperNet& net, const sfn::SubNetConfig& config) {
  return net.extract(config);
}

// One repetition's totals: bytes merged and the time add() and memcpy took for them.
struct Repetition {
  std::int64_t bytes = 0;
  double add_seconds = 0.0;
  double memcpy_seconds = 0.0;
  int updates = 0;
};

// One repetition: random updates added to `acc` and copied into `dst`, timed separately.
Repetition runRepetition(const sfn::DesignSpace& space, const sfn::SuperNet& net,
                         sfn::OverlapAccumulator& acc, std::vector<char>& dst, sfn::Rng& rng,
                         const BenchOptions& opts) {
  Repetition r;
  // Small presets take microseconds per update: keep going until the timings are long
  // enough that clock resolution and one lost time slice do not decide the result.
  while (r.updates < opts.bw_updates || r.add_seconds < opts.min_seconds) {
    const auto config = sfn::SubNetConfig::random(space, rng);
    const sfn::NamedTensors update = makeUpdate(net, config);
    r.bytes += update.nbytes();
    auto timeAdd = [&] {
      const auto t0 = Clock::now();
      acc.add(space, config, update, 0.5 + rng.uniform());
      r.add_seconds += secondsSince(t0);
    };
    auto timeMemcpy = [&] {
      const auto t0 = Clock::now();
      std::size_t offset = 0;
      for (const auto& it : update) {
        const std::size_t n = it.tensor.nbytes();
        std::memcpy(dst.data() + offset, it.tensor.data_ptr(), n);
        offset += n;
      }
      r.memcpy_seconds += secondsSince(t0);
    };
    // Alternate which one reads the freshly generated update first (and finds part of
    // it in cache), so neither side gets that advantage every time.
    if (r.updates % 2 == 0) {
      timeAdd();
      timeMemcpy();
    } else {
      timeMemcpy();
      timeAdd();
    }
    ++r.updates;
  }
  return r;
}

// Best repetition of each side: on a shared machine, noise from other processes only
// ever slows a repetition down, so the fastest is the closest to the real cost.
Json bestOfRepetitions(const std::vector<Repetition>& reps) {
  double update_gbps = 0.0;
  double memcpy_gbps = 0.0;
  Json per_rep = Json::array();
  for (const auto& r : reps) {
    const double a = static_cast<double>(r.bytes) / r.add_seconds / 1e9;
    const double m = static_cast<double>(r.bytes) / r.memcpy_seconds / 1e9;
    update_gbps = std::max(update_gbps, a);
    memcpy_gbps = std::max(memcpy_gbps, m);
    per_rep.push_back(Json{{"updates", r.updates},
                           {"update_bytes", r.bytes},
                           {"update_gbps", a},
                           {"memcpy_gbps", m},
                           {"ratio", a / m}});
  }
  return Json{{"update_gbps", update_gbps},
              {"memcpy_gbps", memcpy_gbps},
              {"ratio", update_gbps / memcpy_gbps},
              {"repetitions", std::move(per_rep)}};
}

Json benchThroughput(const std::string& preset, const BenchOptions& opts) {
  at::set_num_threads(opts.threads);
  const sfn::DesignSpace space = sfn::DesignSpace::preset(preset);
  sfn::SuperNet net(space, opts.seed);
  sfn::OverlapAccumulator acc(sfn::superNetSpec(space));
  // Touched up front so page faults are not billed to memcpy.
  std::vector<char> dst(static_cast<std::size_t>(net.nbytes()), 1);
  sfn::Rng rng(opts.seed, 0xb37c4, 1);

  // One untimed update so lazy initialization (thread pool, allocator) is not measured.
  {
    const auto config = sfn::SubNetConfig::random(space, rng);
    acc.add(space, config, makeUpdate(net, config), 1.0);
  }
  std::vector<Repetition> reps;
  for (int rep = 0; rep < opts.repeats; ++rep)
    reps.push_back(runRepetition(space, net, acc, dst, rng, opts));
  const auto t0 = Clock::now();
  acc.finishInto(net.tensors());
  const double finish_seconds = secondsSince(t0);

  Json best = bestOfRepetitions(reps);
  return Json{{"preset", preset},
              {"supernet_bytes", net.nbytes()},
              {"update_gbps", best["update_gbps"]},
              {"memcpy_gbps", best["memcpy_gbps"]},
              {"ratio", best["ratio"]},
              {"repetitions", std::move(best["repetitions"])},
              {"finish_seconds", finish_seconds},
              {"checksum", static_cast<int>(dst[dst.size() / 2])}};
}

Json benchRss(const std::string& preset, int updates, const BenchOptions& opts) {
  at::set_num_threads(opts.threads);
  const sfn::DesignSpace space = sfn::DesignSpace::preset(preset);
  sfn::SuperNet net(space, opts.seed);
  const std::int64_t supernet_bytes = net.nbytes();
  const bool reset = resetPeakRss();
  const MemStatus before = readMemStatus();
  // Without a reset, VmHWM still holds the SuperNet's initialization peak; counting from
  // it would hide growth, so fall back to the larger of the two as the baseline.
  const std::int64_t baseline = reset ? before.rss : std::max(before.rss, before.hwm);

  const auto t0 = Clock::now();
  sfn::OverlapAccumulator acc(sfn::superNetSpec(space));
  sfn::Rng rng(opts.seed, 0x455, static_cast<std::uint64_t>(updates));
  std::int64_t bytes = 0;
  for (int k = 0; k < updates; ++k) {
    const auto config = sfn::SubNetConfig::random(space, rng);
    sfn::NamedTensors update = makeUpdate(net, config);
    bytes += update.nbytes();
    acc.add(space, config, update, 0.5 + rng.uniform());
  }  // each update is dropped here, before the next one exists
  acc.finishInto(net.tensors());
  const double seconds = secondsSince(t0);
  const MemStatus after = readMemStatus();
  const std::int64_t growth = after.hwm - baseline;
  return Json{{"updates", updates},
              {"peak_reset", reset ? "clear_refs" : "baseline-max(rss,hwm)"},
              {"baseline_rss_bytes", baseline},
              {"peak_rss_bytes", after.hwm},
              {"rss_growth_bytes", growth},
              {"rss_growth_over_supernet",
               static_cast<double>(growth) / static_cast<double>(supernet_bytes)},
              {"accumulator_over_supernet",
               static_cast<double>(acc.nbytes()) / static_cast<double>(supernet_bytes)},
              {"update_bytes", bytes},
              {"supernet_bytes", supernet_bytes},
              {"seconds", seconds}};
}

// K updates of random SubNets, each its slice moved by seeded noise (a change to measure).
std::vector<sfn::NamedTensors> robustUpdates(const sfn::DesignSpace& space,
                                             const sfn::SuperNet& net, int k, std::uint64_t seed) {
  sfn::Rng rng(seed, 0x70b, 2);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<sfn::NamedTensors> updates;
  for (int i = 0; i < k; ++i) {
    sfn::NamedTensors u = makeUpdate(net, sfn::SubNetConfig::random(space, rng));
    for (auto& t : u)
      if (t.tensor.scalar_type() == at::kFloat)
        t.tensor.add_(at::empty_like(t.tensor).normal_(0.0, 0.01, gen));
    updates.push_back(std::move(u));
  }
  return updates;
}

double secondsOf(const std::function<void()>& round) {
  const auto t0 = Clock::now();
  round();
  return secondsSince(t0);
}

// One preset's robust-aggregation workload: the SuperNet, its K noisy updates, and the
// aggregators every variant reuses round after round (reset, not rebuilt, so allocation is
// not measured). Each variant is one server round over all K updates into `target`.
struct RobustRound {
  RobustRound(const std::string& preset, const BenchOptions& opts)
      : space(sfn::DesignSpace::preset(preset)),
        net(space, opts.seed),
        spec(sfn::superNetSpec(space)),
        updates(robustUpdates(space, net, opts.robust_k, opts.seed)),
        weight(1.0 / opts.robust_k),
        target(net.tensors().clone()),
        acc(spec),
        trim(spec, 0.2),
        backup(spec) {
    for (const auto& u : updates) update_bytes += u.nbytes();
  }

  void plain() {
    acc.reset();
    for (const auto& u : updates) acc.addPrefixSlice(u, weight);
    acc.finishInto(target);
  }
  void bound() {
    acc.reset();
    for (const auto& u : updates) {
      checksum += sfn::measureChange(u, net.tensors()).rms();
      acc.addPrefixSlice(u, weight);
    }
    acc.finishInto(target);
  }
  void clip() {
    acc.reset();
    for (const auto& u : updates) {
      checksum += sfn::measureChange(u, net.tensors()).rms();
      acc.addScaledChange(u, net.tensors(), weight, 0.5);
    }
    acc.finishInto(target);
  }
  void trimmed() {
    trim.reset();
    for (const auto& u : updates) {
      checksum += sfn::measureChange(u, net.tensors()).rms();
      trim.add(u, weight);  // shares the update's storage, as the server holds the message
    }
    trim_held = trim.nbytes();
    trim.finishInto(target);
  }
  void rollback() {
    backup.reset();
    for (const auto& u : updates) backup.cover(u);
    backup.save(net.tensors());
    backup.restoreInto(target);
  }

  const sfn::DesignSpace space;
  const sfn::SuperNet net;
  const std::vector<sfn::TensorSpec> spec;
  const std::vector<sfn::NamedTensors> updates;
  const double weight;
  sfn::NamedTensors target;  // finishInto's output, reused
  sfn::OverlapAccumulator acc;
  sfn::TrimmedMeanAggregator trim;
  sfn::CoveredBackup backup;
  std::int64_t update_bytes = 0;
  double checksum = 0.0;  // keeps the measured norms observable
  std::int64_t trim_held = 0;
};

// Best seconds of one round per variant.
struct RobustTimes {
  double plain = 1e300, bound = 1e300, clip = 1e300, trim = 1e300, rollback = 1e300;
};

RobustTimes bestRobustTimes(RobustRound& round, int repeats) {
  round.plain();  // untimed: lazy initialization (thread pool, allocator) is not measured
  // Interleaved per repetition, so load from other processes hits every variant alike; the
  // best of each. Small presets (milliseconds a round) repeat for at least 2 s in all, so
  // that a few undisturbed repetitions are among them on a loaded machine.
  RobustTimes t;
  const auto start = Clock::now();
  for (int r = 0; r < repeats || (secondsSince(start) < 2.0 && r < 500); ++r) {
    t.plain = std::min(t.plain, secondsOf([&] { round.plain(); }));
    t.bound = std::min(t.bound, secondsOf([&] { round.bound(); }));
    t.clip = std::min(t.clip, secondsOf([&] { round.clip(); }));
    t.trim = std::min(t.trim, secondsOf([&] { round.trimmed(); }));
    t.rollback = std::min(t.rollback, secondsOf([&] { round.rollback(); }));
  }
  return t;
}

Json robustReport(const std::string& preset, int k, const RobustRound& round,
                  const RobustTimes& t) {
  const double sn = static_cast<double>(round.net.nbytes());
  auto gbps = [&](double seconds) {
    return static_cast<double>(round.update_bytes) / seconds / 1e9;
  };
  return Json{{"preset", preset},
              {"updates", k},
              {"update_bytes", round.update_bytes},
              {"supernet_bytes", round.net.nbytes()},
              {"plain_round_s", t.plain},
              {"bound_round_s", t.bound},
              {"clip_round_s", t.clip},
              {"trim_round_s", t.trim},
              {"rollback_round_s", t.rollback},
              {"plain_gbps", gbps(t.plain)},
              {"bound_gbps", gbps(t.bound)},
              {"clip_gbps", gbps(t.clip)},
              {"trim_gbps", gbps(t.trim)},
              {"bound_over_plain", t.bound / t.plain},
              {"clip_over_plain", t.clip / t.plain},
              {"trim_over_plain", t.trim / t.plain},
              {"rollback_over_plain", t.rollback / t.plain},
              {"accumulator_over_supernet", static_cast<double>(round.acc.nbytes()) / sn},
              {"trim_held_over_supernet", static_cast<double>(round.trim_held) / sn},
              {"rollback_copy_over_supernet", static_cast<double>(round.backup.nbytes()) / sn},
              {"checksum", round.checksum}};
}

Json benchRobust(const std::string& preset, const BenchOptions& opts) {
  at::set_num_threads(opts.threads);
  RobustRound round(preset, opts);
  const RobustTimes times = bestRobustTimes(round, opts.repeats);
  return robustReport(preset, opts.robust_k, round, times);
}

Json runRobust(const BenchOptions& opts) {
  Json out = Json::array();
  if (opts.skip_robust) return out;
  for (const std::string preset : {"fmnist", "paper-cifar10"}) {
    std::cerr << "bench_aggregate: robust aggregation " << preset << "\n";
    out.push_back(runInChild([&] { return benchRobust(preset, opts); }));
  }
  return out;
}

constexpr double kRatioGoal = 0.5;
constexpr double kRssGoal = 2.5;

// Throughput of every preset; clears `met` if a ratio misses its goal.
Json runThroughputs(const BenchOptions& opts, bool& met) {
  Json throughput = Json::array();
  for (const std::string preset : {"fmnist", "paper-cifar10"}) {
    std::cerr << "bench_aggregate: throughput " << preset << "\n";
    Json r = runInChild([&] { return benchThroughput(preset, opts); });
    met = met && r.contains("ratio") && r["ratio"].get<double>() >= kRatioGoal;
    throughput.push_back(std::move(r));
  }
  return throughput;
}

// Peak RSS for every K; clears `met` if growth misses its goal and sets `spread`, the
// range of growth across K ("flat": a small fraction of one SuperNet).
Json runRssSeries(const BenchOptions& opts, bool& met, double& spread) {
  Json rss = Json::array();
  double lo = 1e300;
  double hi = 0.0;
  for (int k : opts.skip_rss ? std::vector<int>{} : opts.rss_updates) {
    std::cerr << "bench_aggregate: peak RSS paper-cifar10, K = " << k << "\n";
    Json r = runInChild([&] { return benchRss("paper-cifar10", k, opts); });
    if (r.contains("rss_growth_over_supernet")) {
      const double g = r["rss_growth_over_supernet"].get<double>();
      lo = std::min(lo, g);
      hi = std::max(hi, g);
      met = met && g <= kRssGoal;
    } else {
      met = false;
    }
    rss.push_back(std::move(r));
  }
  spread = hi >= lo ? hi - lo : 0.0;
  return rss;
}

// The flat figures (--json): headline merge/copy/ratio are paper-cifar10's (the shapes the
// goal is about); fmnist's follow with a suffix.
Json flatFigures(const Json& result, const BenchOptions& opts, double spread) {
  Json flat{{"threads", opts.threads}, {"goals_met", result["goals"]["met"]}};
  for (const auto& r : result["throughput"]) {
    if (!r.contains("ratio")) continue;
    const std::string suffix =
        r["preset"] == "paper-cifar10" ? "" : "_" + r["preset"].get<std::string>();
    flat["merge_gbps" + suffix] = r["update_gbps"];
    flat["copy_gbps" + suffix] = r["memcpy_gbps"];
    flat["ratio" + suffix] = r["ratio"];
  }
  for (const auto& r : result["rss"]["runs"])
    if (r.contains("rss_growth_over_supernet"))
      flat["rss_growth_over_supernet_k" + std::to_string(r["updates"].get<int>())] =
          r["rss_growth_over_supernet"];
  flat["rss_growth_spread_over_k"] = spread;
  for (const auto& r : result["robust"]) {
    if (!r.contains("plain_round_s")) continue;
    const std::string suffix =
        r["preset"] == "paper-cifar10" ? "" : "_" + r["preset"].get<std::string>();
    for (const char* key :
         {"plain_round_s", "bound_over_plain", "clip_over_plain", "trim_over_plain",
          "rollback_over_plain", "trim_held_over_supernet", "rollback_copy_over_supernet"})
      flat[std::string("robust_") + key + suffix] = r[key];
  }
  return flat;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions opts;
  CLI::App app{"Streaming aggregation benchmark: update GB/s vs memcpy, peak RSS vs K"};
  app.add_option("--threads", opts.threads, "torch intra-op threads")->check(CLI::Range(1, 256));
  app.add_option("--updates", opts.bw_updates,
                 "minimum updates per repetition of the GB/s measurement")
      ->check(CLI::Range(1, 100000));
  app.add_option("--repeats", opts.repeats, "repetitions of the GB/s measurement (best is kept)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--min-seconds", opts.min_seconds,
                 "minimum add() time per repetition (small presets add updates until reached)");
  app.add_flag("--skip-rss", opts.skip_rss, "only measure GB/s");
  app.add_flag("--skip-robust", opts.skip_robust, "skip the robust aggregation figures");
  app.add_option("--robust-k", opts.robust_k, "updates per round of the robust aggregation figures")
      ->check(CLI::Range(1, 1000));
  app.add_option("--rss-updates", opts.rss_updates, "K values for the paper-cifar10 RSS runs");
  app.add_option("--seed", opts.seed, "seed for SuperNets and SubNets");
  app.add_option("--json,--out", opts.out, "also write the JSON (a flat object) to this file");
  CLI11_PARSE(app, argc, argv);

  Json result{{"bench", "aggregate"}, {"threads", opts.threads}};
  bool met = true;
  result["throughput"] = runThroughputs(opts, met);
  double spread = 0.0;
  Json rss = runRssSeries(opts, met, spread);
  result["rss"] = Json{{"preset", "paper-cifar10"}, {"runs", std::move(rss)}};
  result["robust"] = runRobust(opts);
  result["goals"] = Json{{"ratio_min", kRatioGoal},
                         {"rss_growth_max", kRssGoal},
                         {"rss_growth_spread_over_k", spread},
                         {"met", met && spread <= 0.25}};

  std::cout << result.dump(2) << std::endl;

  const Json flat = flatFigures(result, opts, spread);
  if (!opts.out.empty()) {
    std::ofstream f(opts.out);
    if (!f) {
      std::cerr << "bench_aggregate: cannot write " << opts.out << "\n";
      return 1;
    }
    f << flat.dump(2) << "\n";
  }
  return 0;
}
