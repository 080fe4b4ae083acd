#include <doctest/doctest.h>
#include "temp_dir.h"

#include "sfn/model/checkpoint.h"
#include "sfn/io/crypto.h"
#include "sfn/data/dataset.h"
#include "sfn/core/error.h"
#include "sfn/train/evaluator.h"
#include "sfn/searcher/evolution_search.h"
#include "sfn/model/latency_table.h"
#include "sfn/train/local_trainer.h"
#include "sfn/searcher/pareto_front.h"
#include "sfn/searcher/search_pipeline.h"
#include "sfn/searcher/search_target.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

using namespace sfn;
namespace fs = std::filesystem;

namespace {

using sfn::test::TempDir;

void writeText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  REQUIRE(f.good());
}

std::string readText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A latency table with made-up but shape-dependent entries (work of the block's convs plus
// a fixed cost per layer), so latency budgets constrain the search like real ones.
LatencyTable syntheticTable(const DesignSpace& space, const std::string& device = "synthetic") {
  LatencyTableInfo info;
  info.device = device;
  info.torch_threads = 1;
  info.batch_size = 1;
  info.design_space = space.name;
  info.warmup = 1;
  info.repeats = 1;
  info.measured_at = "2026-01-01T00:00:00Z";
  LatencyTable t(info);
  for (LatencyTableEntry e : LatencyTable::variants(space)) {
    const double out_hw = std::ceil(static_cast<double>(e.hw) / e.stride);
    e.ms = 0.01 +
           1e-6 * out_hw * out_hw * 9.0 * (e.mid > 0 ? e.in * e.mid + e.mid * e.out : e.in * e.out);
    t.setEntry(e);
  }
  return t;
}

SearchTarget macsTarget(const std::string& name, std::int64_t max_macs) {
  SearchTarget t;
  t.name = name;
  t.device = name;
  t.max_macs = max_macs;
  return t;
}

// Fitness that prefers bigger nets with a config-dependent wiggle: it pushes the search
// against the budgets, where violations would show.
double biggerIsBetter(const DesignSpace& space, const SubNetConfig& c) {
  const double macs = static_cast<double>(computeCost(space, c).macs);
  return macs + static_cast<double>(c.hash() % 1000) * 10.0;
}

EvolutionOptions smallOptions(std::uint64_t seed) {
  EvolutionOptions o;
  o.population = 16;
  o.generations = 6;
  o.seed = seed;
  o.max_attempts = 200;
  return o;
}

}  // namespace

// ---- latency table ---------------------------------------------------------------------

TEST_CASE("latency table: JSON round trip, and predict is the sum of the SubNet's entries") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const LatencyTable table = syntheticTable(space);
  TempDir dir;
  table.save(dir.file("lut.json"));
  const LatencyTable loaded = LatencyTable::load(dir.file("lut.json"));
  CHECK(loaded.info().device == "synthetic");
  CHECK(loaded.info().design_space == "tiny");
  CHECK(loaded.info().batch_size == 1);
  REQUIRE(loaded.entries().size() == table.entries().size());
  for (std::size_t i = 0; i < table.entries().size(); ++i) {
    CHECK(loaded.entries()[i].name == table.entries()[i].name);
    CHECK(loaded.entries()[i].sameShape(table.entries()[i]));
    CHECK(loaded.entries()[i].ms == table.entries()[i].ms);
  }
  CHECK_NOTHROW(loaded.checkCovers(space));

  Rng rng(3);
  for (int i = 0; i < 50; ++i) {
    const SubNetConfig c = SubNetConfig::random(space, rng);
    // By hand: stem + every active block's entry + head.
    double sum = loaded.find("stem")->ms + loaded.find("head")->ms;
    int blocks = 0;
    for (int s = 0; s < space.numStages(); ++s)
      for (int b = 0; b <= c.depth[s]; ++b) {
        const int mid = space.midChannels(space.widths[s],
                                          c.expandRatio(space, s * space.blocks_per_stage + b));
        const LatencyTableEntry* e = loaded.find(LatencyTable::blockName(s, b == 0, mid));
        REQUIRE(e != nullptr);
        sum += e->ms;
        ++blocks;
      }
    CHECK(loaded.predictMs(space, c) == doctest::Approx(sum).epsilon(1e-12));
    CHECK(LatencyTable::entriesOf(space, c).size() == static_cast<std::size_t>(blocks + 2));
  }
  // A bigger SubNet never costs less under a table of positive entries.
  CHECK(loaded.predictMs(space, SubNetConfig::maxNet(space)) >
        loaded.predictMs(space, SubNetConfig::minNet(space)));
}

TEST_CASE("latency table: bad files are rejected naming the field") {
  const DesignSpace space = DesignSpace::preset("tiny");
  TempDir dir;
  nlohmann::json good = syntheticTable(space).toJson();

  auto loadError = [&](const nlohmann::json& j) -> std::string {
    writeText(dir.file("bad.json"), j.dump());
    try {
      (void)LatencyTable::load(dir.file("bad.json"));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  {
    auto j = good;
    j["entries"][1]["ms"] = "fast";
    CHECK(loadError(j).find("entries[1].ms") != std::string::npos);
  }
  {
    auto j = good;
    j["entries"][2]["ms"] = -1.0;
    CHECK(loadError(j).find("entries[2].ms") != std::string::npos);
  }
  {
    auto j = good;
    j.erase("batch_size");
    CHECK(loadError(j).find("batch_size") != std::string::npos);
  }
  {
    auto j = good;
    j["torch_threads"] = 0;
    CHECK(loadError(j).find("torch_threads") != std::string::npos);
  }
  {
    auto j = good;
    j["entries"][3]["name"] = j["entries"][0]["name"];
    CHECK(loadError(j).find("duplicate") != std::string::npos);
  }
  {
    auto j = good;
    j["format"] = "something-else";
    CHECK(loadError(j).find("format") != std::string::npos);
  }
  writeText(dir.file("notjson.json"), "{ this is not json");
  CHECK_THROWS_AS((void)LatencyTable::load(dir.file("notjson.json")), IoError);
  CHECK_THROWS_AS((void)LatencyTable::load(dir.file("missing.json")), IoError);

  // A table of another design space does not cover this one.
  const LatencyTable fmnist = syntheticTable(DesignSpace::preset("fmnist"));
  CHECK_THROWS_AS(fmnist.checkCovers(space), ConfigError);
  LatencyTable partial(syntheticTable(space).info());
  partial.setEntry(syntheticTable(space).entries().front());
  try {
    partial.checkCovers(space);
    FAIL("a table without block entries must not cover the space");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("stage0.first.mid") != std::string::npos);
  }
}

TEST_CASE("latency profiling measures every variant on the configured device") {
  setTorchThreads(1);
  const DesignSpace space = DesignSpace::preset("tiny");
  LatencyProfileOptions opts;
  opts.device = "cpu";
  opts.device_name = "test-device";
  opts.warmup = 2;
  opts.repeats = 3;
  opts.min_sample_ms = 0.2;
  std::size_t calls = 0;
  const LatencyTable table = profileLatency(
      space, opts, [&](std::size_t done, std::size_t total, const LatencyTableEntry&) {
        ++calls;
        CHECK(done == calls);
        CHECK(total == LatencyTable::variants(space).size());
      });
  CHECK(calls == LatencyTable::variants(space).size());
  CHECK(table.info().device == "test-device");
  CHECK(table.info().torch_threads == 1);
  CHECK_NOTHROW(table.checkCovers(space));
  for (const auto& e : table.entries()) {
    CHECK(e.ms > 0);
    CHECK(std::isfinite(e.ms));
  }
  const SuperNet net(space, 1);
  SubNetModule m = net.buildModule(SubNetConfig::maxNet(space));
  const double whole = measureSubNetMs(*m, opts);
  CHECK(whole > 0);
  CHECK(std::isfinite(whole));
  CHECK(table.predictMs(space, SubNetConfig::maxNet(space)) > 0);

  LatencyProfileOptions bad = opts;
  bad.repeats = 0;
  CHECK_THROWS_AS(profileLatency(space, bad), ConfigError);
  bad = opts;
  bad.device = "not-a-device";
  CHECK_THROWS_AS(profileLatency(space, bad), ConfigError);
}

// ---- targets ---------------------------------------------------------------------------

TEST_CASE("targets TOML: fields, defaults, relative table paths") {
  const DesignSpace space = DesignSpace::preset("tiny");
  TempDir dir;
  fs::create_directories(dir.path() / "tables");
  syntheticTable(space, "laptop").save(dir.file("tables/laptop.json"));
  writeText(dir.file("targets.toml"), R"(
[[target]]
name = "low"
max_macs = 2.5e5
[[target]]
name = "mid"
device = "phone"
max_params = 20000
[[target]]
name = "laptop-fast"
max_latency_ms = 0.5
max_macs = 400000
latency_table = "tables/laptop.json"
)");
  const auto targets = loadTargets(dir.file("targets.toml"));
  REQUIRE(targets.size() == 3);
  CHECK(targets[0].name == "low");
  CHECK(targets[0].device == "low");
  CHECK(targets[0].max_macs == 250000);
  CHECK_FALSE(targets[0].max_params);
  CHECK_FALSE(targets[0].latency);
  CHECK(targets[1].device == "phone");
  CHECK(targets[1].max_params == 20000);
  CHECK(targets[2].device == "laptop");  // from the table when not given
  REQUIRE(targets[2].latency);
  CHECK(fs::equivalent(targets[2].latency_table_path, dir.file("tables/laptop.json")));
  CHECK(targets[2].max_latency_ms == doctest::Approx(0.5));
  CHECK_NOTHROW(targets[2].checkSpace(space));
  CHECK(targets[2].describe().find("max_latency_ms 0.5") != std::string::npos);

  // Constraint check: MinNet fits a budget of exactly its MACs, one MAC less does not.
  const SubNetConfig minnet = SubNetConfig::minNet(space);
  const Cost mc = computeCost(space, minnet);
  CHECK(macsTarget("t", mc.macs).feasible(space, minnet));
  CHECK_FALSE(macsTarget("t", mc.macs - 1).feasible(space, minnet));
  CHECK(macsTarget("t", mc.macs - 1).violation(space, minnet).find("max_macs") !=
        std::string::npos);
}

TEST_CASE("targets TOML: errors name the key") {
  auto error = [](const std::string& text) -> std::string {
    try {
      (void)parseTargets(text, "t.toml", ".");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(error("[[target]]\nname = \"a\"\nmax_mac = 5\n").find("target[0].max_mac") !=
        std::string::npos);
  CHECK(error("[[target]]\nname = \"a\"\n[[target]]\nname = \"b\"\nmax_macs = \"lots\"\n")
            .find("target[1].max_macs") != std::string::npos);
  CHECK(error("[[target]]\nname = \"a\"\nmax_macs = -3\n").find("target[0].max_macs") !=
        std::string::npos);
  CHECK(error("[[target]]\nname = \"a\"\nmax_params = 1.5\n").find("target[0].max_params") !=
        std::string::npos);
  CHECK(error("[[target]]\nname = \"a\"\nmax_latency_ms = 3\n").find("target[0].latency_table") !=
        std::string::npos);
  CHECK(error("[[target]]\nmax_macs = 3\n").find("target[0].name") != std::string::npos);
  CHECK(error("[[target]]\nname = \"a/b\"\n").find("target[0].name") != std::string::npos);
  CHECK(error("[[target]]\nname = \"a\"\ndevice = \"x,y\"\n").find("target[0].device") !=
        std::string::npos);
  CHECK(error("[[target]]\nname = \"a\"\n[[target]]\nname = \"a\"\n").find("target[1].name") !=
        std::string::npos);
  CHECK(error("budget = 3\n[[target]]\nname = \"a\"\n").find("'budget'") != std::string::npos);
  CHECK(error("# nothing\n").find("no [[target]]") != std::string::npos);
  CHECK(error("[[target]\n").find("t.toml") != std::string::npos);  // syntax error
  // A missing table file is an I/O error naming the file.
  CHECK_THROWS_AS(
      (void)parseTargets("[[target]]\nname = \"a\"\nlatency_table = \"nope.json\"\n", "t", "."),
      IoError);
}

// ---- evolution -------------------------------------------------------------------------

TEST_CASE("every population member and every winner respects the budgets, over many seeds") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const Cost lo = computeCost(space, SubNetConfig::minNet(space));
  const Cost hi = computeCost(space, SubNetConfig::maxNet(space));
  auto table = std::make_shared<const LatencyTable>(syntheticTable(space));
  const double lat_lo = table->predictMs(space, SubNetConfig::minNet(space));
  const double lat_hi = table->predictMs(space, SubNetConfig::maxNet(space));

  std::vector<SearchTarget> targets;
  targets.push_back(macsTarget("macs-tight", lo.macs + (hi.macs - lo.macs) / 10));
  targets.push_back(macsTarget("macs-half", lo.macs + (hi.macs - lo.macs) / 2));
  SearchTarget params;
  params.name = params.device = "params";
  params.max_params = lo.params + (hi.params - lo.params) / 3;
  targets.push_back(params);
  SearchTarget latency;
  latency.name = latency.device = "latency";
  latency.max_latency_ms = lat_lo + 0.3 * (lat_hi - lat_lo);
  latency.latency = table;
  targets.push_back(latency);
  SearchTarget mixed = macsTarget("mixed", lo.macs + (hi.macs - lo.macs) * 6 / 10);
  mixed.max_params = lo.params + (hi.params - lo.params) / 2;
  mixed.max_latency_ms = lat_lo + 0.5 * (lat_hi - lat_lo);
  mixed.latency = table;
  targets.push_back(mixed);

  std::int64_t members_checked = 0;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    EvolutionSearch search(
        space, [&](const SubNetConfig& c) { return biggerIsBetter(space, c); }, smallOptions(seed));
    search.onGeneration([&](const GenerationReport& r) {
      CHECK(r.population.size() == 16);
      for (const auto& m : r.population) {
        ++members_checked;
        const std::string why = r.target.violation(space, m.config);
        if (!why.empty())
          FAIL_CHECK("seed ", seed, " target ", r.target.name, " generation ", r.generation, ": ",
                     m.text, " violates: ", why);
      }
    });
    const auto results = search.searchAll(targets);
    REQUIRE(results.size() == targets.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      REQUIRE(results[i].feasible);
      CHECK(targets[i].feasible(space, results[i].best.config));
      CHECK(results[i].best_per_generation.size() == 7);
      // Elitist: the best never gets worse from one generation to the next.
      for (std::size_t g = 1; g < results[i].best_per_generation.size(); ++g)
        CHECK(results[i].best_per_generation[g] >= results[i].best_per_generation[g - 1]);
    }
  }
  CHECK(members_checked == 20 * 5 * 7 * 16);
}

TEST_CASE("the search finds the known optimum of a synthetic fitness") {
  const DesignSpace space = DesignSpace::preset("tiny");
  for (std::uint64_t trial = 0; trial < 3; ++trial) {
    Rng pick(100 + trial);
    const SubNetConfig optimum = SubNetConfig::random(space, pick).normalized(space);
    // Minus the distance between the networks (depth per stage, mid channels per block, 0
    // for blocks left out), which is what real accuracy depends on: unique maximum 0 at the
    // optimum, where the budget (the optimum's MACs) is tight, so bigger SubNets are off
    // limits and the search must respect that on the way.
    auto mids = [&](const SubNetConfig& c) {
      std::vector<int> m;
      for (int b = 0; b < space.numBlocks(); ++b)
        m.push_back(c.isActive(space, b)
                        ? space.midChannels(space.widths[b / space.blocks_per_stage],
                                            c.expandRatio(space, b))
                        : 0);
      return m;
    };
    const std::vector<int> best_mids = mids(optimum);
    auto fitness = [&](const SubNetConfig& c) {
      const std::vector<int> m = mids(c);
      double d = 0;
      for (std::size_t s = 0; s < c.depth.size(); ++s) d += std::abs(c.depth[s] - optimum.depth[s]);
      for (std::size_t b = 0; b < m.size(); ++b) d += std::abs(m[b] - best_mids[b]);
      return -d;
    };
    EvolutionOptions o;
    o.population = 40;
    o.generations = 40;
    o.seed = trial;
    EvolutionSearch search(space, fitness, o);
    const SearchTarget t = macsTarget("t", computeCost(space, optimum).macs);
    const SearchResult r = search.search(t);
    REQUIRE(r.feasible);
    CHECK(r.best.fitness == 0.0);
    CHECK(r.best.config.depth == optimum.depth);
    CHECK(mids(r.best.config) == best_mids);
    // Far fewer evaluations than the space has SubNets.
    CHECK(search.stats().misses < 40 + 40 * 30);
  }
}

TEST_CASE("the cache: N targets cost far fewer evaluations than N separate searches") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const Cost lo = computeCost(space, SubNetConfig::minNet(space));
  const Cost hi = computeCost(space, SubNetConfig::maxNet(space));
  std::vector<SearchTarget> targets;
  for (int i = 1; i <= 5; ++i)
    targets.push_back(
        macsTarget("t" + std::to_string(i), lo.macs + (hi.macs - lo.macs) * (2 * i) / 11));

  EvolutionOptions o;
  o.population = 32;
  o.generations = 10;
  o.seed = 4;
  std::int64_t separate = 0;
  for (const auto& t : targets) {
    std::int64_t calls = 0;
    EvolutionSearch alone(
        space,
        [&](const SubNetConfig& c) {
          ++calls;
          return biggerIsBetter(space, c);
        },
        o);
    (void)alone.search(t);
    separate += calls;
  }
  std::int64_t shared_calls = 0;
  std::set<std::string> seen;
  EvolutionSearch shared(
      space,
      [&](const SubNetConfig& c) {
        ++shared_calls;
        // Never twice for the same network (depth and mid channels of every block).
        std::string net;
        for (const auto& e : LatencyTable::entriesOf(space, c)) net += e.name + ";";
        CHECK(seen.insert(net).second);
        return biggerIsBetter(space, c);
      },
      o);
  const auto results = shared.searchAll(targets);
  for (const auto& r : results) CHECK(r.feasible);
  CHECK(shared_calls == shared.stats().misses);
  CHECK(shared.stats().hits > 0);
  CHECK(static_cast<std::int64_t>(shared.evaluated().size()) == shared_calls);
  MESSAGE("fitness calls: 5 targets shared ", shared_calls, ", 5 separate searches ", separate);
  CHECK(shared_calls < separate * 3 / 4);
  // Later targets reuse what earlier ones evaluated.
  CHECK(results.back().stats.hits > 0);
}

TEST_CASE("the search is deterministic for a seed") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const Cost hi = computeCost(space, SubNetConfig::maxNet(space));
  std::vector<SearchTarget> targets = {macsTarget("a", hi.macs / 3), macsTarget("b", hi.macs / 2)};
  auto run = [&](std::uint64_t seed) {
    EvolutionSearch s(
        space, [&](const SubNetConfig& c) { return biggerIsBetter(space, c); }, smallOptions(seed));
    std::vector<std::string> out;
    for (const auto& r : s.searchAll(targets)) out.push_back(r.best.text);
    for (const auto& e : s.evaluated()) out.push_back(e.text);
    return out;
  };
  const auto a = run(11);
  CHECK(a == run(11));
  CHECK(a != run(12));
}

TEST_CASE("tight budgets: the MinNet as fallback, and infeasible targets") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const SubNetConfig minnet = SubNetConfig::minNet(space);
  const Cost mc = computeCost(space, minnet);
  std::int64_t calls = 0;
  EvolutionOptions o = smallOptions(1);
  o.max_attempts = 20;
  EvolutionSearch search(
      space,
      [&](const SubNetConfig& c) {
        ++calls;
        return biggerIsBetter(space, c);
      },
      o);
  const SearchResult tight = search.search(macsTarget("tight", mc.macs));
  REQUIRE(tight.feasible);
  CHECK(tight.best.cost.macs == mc.macs);
  CHECK(tight.fallbacks > 0);

  const std::int64_t before = calls;
  const SearchResult none = search.search(macsTarget("none", mc.macs - 1));
  CHECK_FALSE(none.feasible);
  CHECK(none.infeasible_reason.find("MinNet") != std::string::npos);
  CHECK(calls == before);  // nothing evaluated for an impossible target

  EvolutionOptions bad;
  bad.population = 1;
  CHECK_THROWS_AS(EvolutionSearch(
                      space, [](const SubNetConfig&) { return 0.0; }, bad),
                  ConfigError);
}

TEST_CASE("search with real validation accuracy on the tiny SuperNet") {
  setTorchThreads(1);
  const DesignSpace space = DesignSpace::preset("tiny");
  const SuperNet net(space, 3);
  const Dataset data = makeSyntheticDataset(400, 1, 8, 4, 5);
  IndexList val(200);
  for (std::int64_t i = 0; i < 200; ++i) val[static_cast<std::size_t>(i)] = i;
  const Evaluator eval({data, val}, {200, "cpu"});
  EvolutionOptions o = smallOptions(2);
  o.population = 8;
  o.generations = 2;
  EvolutionSearch search(
      space,
      [&](const SubNetConfig& c) {
        return eval.evaluate(net, {"", c}).accuracy;
      },
      o);
  const Cost hi = computeCost(space, SubNetConfig::maxNet(space));
  const auto results = search.searchAll({macsTarget("a", hi.macs / 2), macsTarget("b", hi.macs)});
  for (const auto& r : results) {
    REQUIRE(r.feasible);
    CHECK(r.best.fitness >= 0.0);
    CHECK(r.best.fitness <= 1.0);
    // The cached fitness is the evaluator's accuracy for that SubNet.
    CHECK(r.best.fitness == doctest::Approx(eval.evaluate(net, {"", r.best.config}).accuracy));
  }
  CHECK(results[0].best.cost.macs <= hi.macs / 2);
}

// ---- Pareto front ----------------------------------------------------------------------

TEST_CASE("Pareto front: non-dominated points, CSV and plot") {
  std::vector<ParetoPoint> pts = {
      {"a", 100, 10, 0.50, {{"dev", 1.0}}},
      {"b", 200, 20, 0.70, {{"dev", 2.0}}},
      {"c", 150, 15, 0.45, {{"dev", 1.5}}},  // dominated by a
      {"d", 300, 30, 0.70, {}},              // dominated by b (same accuracy, more MACs)
      {"e", 400, 40, 0.80, {{"dev", 4.0}}},
      {"f", 100, 12, 0.40, {}},  // dominated by a
      {"g", 200, 21, 0.70, {}},  // equal to b: only one of them is kept
  };
  const ParetoFront front(pts);
  std::vector<std::string> names;
  for (const auto& p : front.front()) names.push_back(p.subnet);
  CHECK(names == std::vector<std::string>{"a", "b", "e"});

  TempDir dir;
  front.writePointsCsv(dir.file("all.csv"));
  front.writeFrontCsv(dir.file("front.csv"));
  const std::string all = readText(dir.file("all.csv"));
  CHECK(all.rfind("subnet,macs,params,val_accuracy,latency_ms_dev\n", 0) == 0);
  CHECK(all.find("\nd,300,30,0.7,\n") != std::string::npos);  // empty latency where unknown
  CHECK(std::count(all.begin(), all.end(), '\n') == 8);
  const std::string fr = readText(dir.file("front.csv"));
  CHECK(std::count(fr.begin(), fr.end(), '\n') == 4);
  CHECK(fr.find("\ne,400,40,0.8,4\n") != std::string::npos);

  const PlotResult plot = front.writePlot(dir.file("p.png"), {{"win", 200, 0.7}}, "test plot");
  if (plot.written) {
    std::ifstream f(dir.file("p.png"), std::ios::binary);
    char magic[4] = {};
    f.read(magic, 4);
    CHECK(std::string(magic + 1, 3) == "PNG");
  } else {
    // gnuplot missing or broken: skipped with a reason, never an exception.
    MESSAGE("plot skipped: ", plot.message);
    CHECK_FALSE(plot.message.empty());
  }
  // Helper files are cleaned up; only the CSVs and the PNG remain.
  for (const auto& e : fs::directory_iterator(dir.path())) CHECK(e.path().extension() != ".gp");
}

// ---- the sfn-search pipeline (runSearchPipeline) end to end ------------------------------

namespace {

// A run folder with a checkpoint of the tiny SuperNet, a latency table and three targets:
// a MACs budget, a latency budget, and one no SubNet meets.
struct TinyRun {
  TinyRun() {
    const SuperNet net(space, 7);
    const nlohmann::json meta = {{"format", "sfn-coordinator-1"},
                                 {"design_space", space.toToml()},
                                 {"next_round", 3},
                                 {"run",
                                  {{"dataset", "synthetic"},
                                   {"data_dir", ""},
                                   {"val_fraction", 0.1},
                                   {"split_seed", 5},
                                   {"seed", 5},
                                   {"config", "test"},
                                   {"synthetic_train", 2000},
                                   {"synthetic_test", 300}}}};
    fs::create_directories(dir.path() / "run" / "checkpoints");
    CheckpointDir(dir.path() / "run" / "checkpoints").save(3, net.tensors(), meta);
    syntheticTable(space, "dev").save(dir.file("lut.json"));
    writeText(
        dir.file("targets.toml"),
        "[[target]]\nname = \"small\"\nmax_macs = " + std::to_string(maxMacs()) +
            "\n[[target]]\nname = \"fast\"\nmax_latency_ms = " + std::to_string(maxLatency()) +
            "\nlatency_table = \"lut.json\"\n[[target]]\nname = \"impossible\"\nmax_macs = " +
            std::to_string(lo.macs - 1) + "\n");
    // The signing key lives outside every OUT, as sfn-search's --help asks.
    const Ed25519KeyPair keys = generateKeyPair();
    savePrivateKey(dir.file("signing.key"), keys.privateKey);
    savePublicKey(dir.file("signing.pub"), keys.publicKey);
  }

  std::int64_t maxMacs() const { return (lo.macs + hi.macs) / 2; }
  double maxLatency() const {
    return syntheticTable(space).predictMs(space, SubNetConfig::maxNet(space)) * 0.6;
  }

  SearchPipelineOptions options(const std::string& out) const {
    SearchPipelineOptions o;
    o.checkpoint = dir.file("run").string();
    o.targets = dir.file("targets.toml").string();
    o.out = dir.file(out).string();
    o.evo.population = 8;
    o.evo.generations = 2;
    o.threads = 1;
    o.latency_repeats = 3;
    o.key = dir.file("signing.key").string();
    return o;
  }

  const DesignSpace space = DesignSpace::preset("tiny");
  const Cost hi = computeCost(space, SubNetConfig::maxNet(space));
  const Cost lo = computeCost(space, SubNetConfig::minNet(space));
  TempDir dir;
};

// Discards the pipeline's progress log.
std::shared_ptr<spdlog::logger> quietLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// verifyModelFolders' exit code, as sfn-search verify returns it.
int verifyExit(const fs::path& dir, const fs::path& pubkey) {
  return toInt(verifyModelFolders(dir, pubkey, stdout));
}

}  // namespace

TEST_CASE("search pipeline: results, Pareto front and signed models per target") {
  const TinyRun run;
  const std::atomic<bool> stop{false};
  const SearchPipelineOptions opts = run.options("out");
  const SearchReport report = runSearchPipeline(opts, quietLogger(), stop);
  const fs::path out = opts.out;
  for (const char* f : {"results.csv", "results.json", "pareto.csv", "evaluated.csv",
                        "small/model.pt", "fast/manifest.json", "fast/manifest.sig"})
    CHECK_MESSAGE(fs::exists(out / f), f);
  CHECK_FALSE(fs::exists(out / "keys"));
  CHECK_FALSE(fs::exists(out / "impossible"));
  REQUIRE(report.outcomes.size() == 3);
  CHECK(report.outcomes[0].cost.macs <= run.maxMacs());
  CHECK(*report.outcomes[1].predicted_latency_ms <= run.maxLatency());
  CHECK_FALSE(report.outcomes[2].feasible);
  CHECK(report.round == 3);
  CHECK(report.stats.misses > 0);

  // The files say what the report says.
  const auto results = nlohmann::json::parse(readText(report.results_json.string()));
  REQUIRE(results["results"].size() == 3);
  CHECK(results["results"][0]["macs"].get<std::int64_t>() == report.outcomes[0].cost.macs);
  CHECK(results["results"][0]["subnet"] == report.outcomes[0].subnet);
  CHECK(results["results"][1]["predicted_latency_ms"].get<double>() <= run.maxLatency());
  CHECK(results["results"][1]["measured_latency_ms"].get<double>() > 0);
  CHECK_FALSE(results["results"][2]["feasible"].get<bool>());
  CHECK(results["evaluations"].get<std::int64_t>() == report.stats.misses);
  const std::string csv = readText(report.results_csv.string());
  CHECK(csv.rfind("target,device,feasible,subnet,macs,params,", 0) == 0);
  CHECK(csv.find("\nimpossible,impossible,false,") != std::string::npos);

  // A second search into the same folder replaces the models; they verify with --key's pair.
  (void)runSearchPipeline(opts, quietLogger(), stop);
  CHECK(verifyExit(out, run.dir.file("signing.pub")) == 0);
}

TEST_CASE(
    "search pipeline: without --key the models are unsigned, no key is written, verify fails") {
  const TinyRun run;
  const std::atomic<bool> stop{false};
  SearchPipelineOptions opts = run.options("out");
  // A signed export first: the unsigned one must not leave its signature behind.
  (void)runSearchPipeline(opts, quietLogger(), stop);
  opts.key.clear();
  (void)runSearchPipeline(opts, quietLogger(), stop);
  const fs::path out = opts.out;
  CHECK_FALSE(fs::exists(out / "keys"));
  for (const auto& e : fs::recursive_directory_iterator(out))
    CHECK_MESSAGE(e.path().extension() != ".key", e.path().string());
  CHECK(fs::exists(out / "small" / "model.pt"));
  CHECK_FALSE(fs::exists(out / "small" / "manifest.sig"));
  const auto manifest = nlohmann::json::parse(readText((out / "small" / "manifest.json").string()));
  CHECK(manifest.at("signed") == false);
  CHECK(verifyExit(out / "small", run.dir.file("signing.pub")) == 4);
  const VerifyReport r = verifyModelDir(out / "small", loadPublicKey(run.dir.file("signing.pub")));
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].find("the model is unsigned") == 0);
}

TEST_CASE("search pipeline: a manifest holds no host paths; its latencies name their machines") {
  const TinyRun run;
  const std::atomic<bool> stop{false};
  const SearchPipelineOptions opts = run.options("out");
  (void)runSearchPipeline(opts, quietLogger(), stop);
  const std::string text = readText((fs::path(opts.out) / "fast" / "manifest.json").string());
  // The checkpoint, targets, latency table and output all lie in run.dir.
  CHECK(text.find(run.dir.path().string()) == std::string::npos);
  CHECK(text.find(fs::current_path().string() + "/") == std::string::npos);
  const auto m = nlohmann::json::parse(text);
  CHECK(m.at("source").at("checkpoint") == "ckpt-000003.sfn");
  CHECK(m.at("source").at("checkpoint_sha256").get<std::string>().size() == 64);
  CHECK(m.at("source").at("targets") == "targets.toml");
  CHECK_FALSE(m.at("source").at("run").contains("data_dir"));
  CHECK(m.at("constraints").at("latency_table") == "lut.json");
  // The prediction is the table's device's; the measurement this machine's.
  const auto& latency = m.at("latency");
  CHECK(latency.at("predicted_on").at("device") == "dev");
  CHECK(latency.at("predicted_on").at("latency_table") == "lut.json");
  CHECK_FALSE(latency.at("measured_on").at("host").get<std::string>().empty());
  CHECK_FALSE(latency.at("measured_on").at("cpu").get<std::string>().empty());
  CHECK(latency.at("measured_ms").get<double>() > 0);
  // Without a table, the measured figure alone, still naming its machine.
  const auto small =
      nlohmann::json::parse(readText((fs::path(opts.out) / "small" / "manifest.json").string()));
  CHECK(small.at("latency").at("predicted_on").is_null());
  CHECK(small.at("latency").at("measured_on").contains("host"));
}

// What `sfn-search verify` runs; the CLI only returns its exit code.
TEST_CASE("search pipeline: verify passes, then finds tampering and a foreign key (exit 4)") {
  const TinyRun run;
  const std::atomic<bool> stop{false};
  const SearchPipelineOptions opts = run.options("out");
  (void)runSearchPipeline(opts, quietLogger(), stop);
  const fs::path out = opts.out;
  const fs::path pub = run.dir.file("signing.pub");
  // A model folder, or the whole output folder.
  CHECK(verifyExit(out, pub) == 0);
  CHECK(verifyExit(out / "fast", pub) == 0);
  {
    std::ofstream f(out / "small" / "manifest.json", std::ios::app);
    f << " ";
  }
  CHECK(verifyExit(out / "small", pub) == 4);
  CHECK(verifyExit(out, pub) == 4);
  savePublicKey(run.dir.file("other.pub"), generateKeyPair().publicKey);
  CHECK(verifyExit(out / "fast", run.dir.file("other.pub")) == 4);
}

TEST_CASE("search pipeline: configuration errors throw before OUT is created") {
  const TinyRun run;
  const std::atomic<bool> stop{false};
  // An unknown key in the targets (sfn-search exits 2 for a ConfigError).
  writeText(run.dir.file("bad.toml").string(), "[[target]]\nname = \"x\"\nmax_mac = 1\n");
  SearchPipelineOptions bad_targets = run.options("out1");
  bad_targets.targets = run.dir.file("bad.toml").string();
  CHECK_THROWS_AS(runSearchPipeline(bad_targets, quietLogger(), stop), ConfigError);
  CHECK_FALSE(fs::exists(bad_targets.out));

  SearchPipelineOptions no_ckpt = run.options("out2");
  no_ckpt.checkpoint = run.dir.file("nope").string();
  CHECK_THROWS_WITH_AS(runSearchPipeline(no_ckpt, quietLogger(), stop),
                       doctest::Contains("--checkpoint"), ConfigError);
  SearchPipelineOptions bad_batch = run.options("out3");
  bad_batch.batch = 0;
  CHECK_THROWS_WITH_AS(runSearchPipeline(bad_batch, quietLogger(), stop),
                       doctest::Contains("--batch"), ConfigError);
  for (const char* d : {"out2", "out3"}) CHECK_FALSE(fs::exists(run.dir.file(d)));
}

TEST_CASE("search pipeline: a stop request ends the search before any result is written") {
  const TinyRun run;
  const std::atomic<bool> stop{true};  // as if SIGTERM came before the first evaluation
  const SearchPipelineOptions opts = run.options("out");
  CHECK_THROWS_AS(runSearchPipeline(opts, quietLogger(), stop), SearchStopped);
  CHECK_FALSE(fs::exists(fs::path(opts.out) / "results.csv"));
  CHECK_FALSE(fs::exists(fs::path(opts.out) / "small"));
}
