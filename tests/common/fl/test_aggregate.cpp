// Aggregation: the streaming overlap accumulator, client weights and SubNet assignment.
#include "sfn/fl/client_weighting.h"
#include "sfn/core/error.h"
#include "sfn/fl/overlap_accumulator.h"
#include "sfn/fl/subnet_assigner.h"
#include "sfn/model/supernet.h"

#include <doctest/doctest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace {

using sfn::DesignSpace;
using sfn::NamedTensors;
using sfn::OverlapAccumulator;
using sfn::SubNetConfig;
using sfn::SuperNet;

// A client's "trained" slice: the SuperNet slice moved by seeded noise, so every client
// differs from the SuperNet and from every other client.
NamedTensors perturbed(const NamedTensors& slice, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  NamedTensors out;
  for (const auto& it : slice) {
    at::Tensor noise = at::empty_like(it.tensor).normal_(0.0, 0.1, gen);
    out.add(it.name, it.tensor + noise);
  }
  return out;
}

bool allClose(const NamedTensors& a, const NamedTensors& b, double tol) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].tensor.sizes() != b[i].tensor.sizes()) return false;
    if (!at::allclose(a[i].tensor.to(at::kDouble), b[i].tensor.to(at::kDouble), tol, tol))
      return false;
  }
  return true;
}

std::vector<sfn::TensorSpec> handMadeSpec() {
  return {
      {"m", {4, 4}, true},
      {"v", {4}, true},
      {"s", {}, true},        // rank 0: never averaged
      {"steps", {1}, false},  // bookkeeping buffer: never averaged
  };
}

NamedTensors handMadeSuperNet() {
  NamedTensors net;
  net.add("m", at::arange(16, at::kFloat).add_(100).view({4, 4}));
  net.add("v", at::arange(4, at::kFloat).add_(200));
  net.add("s", at::full({}, 7.0f));
  net.add("steps", at::full({1}, 3, at::kLong));
  return net;
}

}  // namespace

TEST_CASE("one full-coverage update with weight 1 leaves the SuperNet bit for bit unchanged") {
  const DesignSpace space = DesignSpace::preset("tiny");
  SuperNet net(space, 11);
  // A negative zero is the value a +0-initialized sum would silently flip to +0.
  net.tensors()[0].tensor.view(-1)[0] = -0.0f;
  const NamedTensors before = net.tensors().clone();
  const SubNetConfig max = SubNetConfig::maxNet(space);

  OverlapAccumulator acc(sfn::superNetSpec(space));
  acc.add(space, max, net.extract(max), 1.0);
  CHECK(acc.updates() == 1);
  acc.finishInto(net.tensors());
  CHECK(net.tensors().bitEqual(before));
  CHECK(std::signbit(net.tensors()[0].tensor.view(-1)[0].item<float>()));
}

TEST_CASE("overlapping slices: elements covered by both, by one and by none") {
  OverlapAccumulator acc(handMadeSpec());
  NamedTensors a;  // weight 1: m[:3, :2] = 1, v[:2] = 2
  a.add("m", at::full({3, 2}, 1.0f));
  a.add("v", at::full({2}, 2.0f));
  a.add("steps", at::full({1}, 99, at::kLong));
  NamedTensors b;  // weight 3: m[:2, :4] = 4, v[:3] = 6
  b.add("m", at::full({2, 4}, 4.0f));
  b.add("v", at::full({3}, 6.0f));
  acc.addPrefixSlice(a, 1.0);
  acc.addPrefixSlice(b, 3.0);

  NamedTensors net = handMadeSuperNet();
  acc.finishInto(net);
  const at::Tensor m = net.at("m");
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      CAPTURE(r);
      CAPTURE(c);
      const bool in_a = r < 3 && c < 2;
      const bool in_b = r < 2;
      float expected = 100.0f + static_cast<float>(r * 4 + c);  // kept
      if (in_a && in_b) expected = (1.0f * 1.0f + 3.0f * 4.0f) / 4.0f;
      if (in_a && !in_b) expected = 1.0f;
      if (!in_a && in_b) expected = 4.0f;
      CHECK(m[r][c].item<float>() == doctest::Approx(expected));
    }
  }
  const at::Tensor v = net.at("v");
  CHECK(v[0].item<float>() == doctest::Approx((2.0 + 3.0 * 6.0) / 4.0));
  CHECK(v[1].item<float>() == doctest::Approx((2.0 + 3.0 * 6.0) / 4.0));
  CHECK(v[2].item<float>() == doctest::Approx(6.0));
  CHECK(v[3].item<float>() == doctest::Approx(203.0));
  CHECK(net.at("s").item<float>() == 7.0f);
  CHECK(net.at("steps").item<std::int64_t>() == 3);
}

TEST_CASE("prefix boxes with kernel dimensions share one weight per [d0, d1] element") {
  OverlapAccumulator acc({{"w", {3, 2, 2, 2}, true}});
  NamedTensors a;
  a.add("w", at::full({2, 1, 2, 2}, 2.0f));
  NamedTensors b;
  b.add("w", at::full({1, 2, 2, 2}, 5.0f));
  acc.addPrefixSlice(a, 1.0);
  acc.addPrefixSlice(b, 1.0);
  NamedTensors net;
  net.add("w", at::zeros({3, 2, 2, 2}));
  acc.finishInto(net);
  const at::Tensor w = net.at("w");
  CHECK(at::equal(w[0][0], at::full({2, 2}, 3.5f)));
  CHECK(at::equal(w[0][1], at::full({2, 2}, 5.0f)));
  CHECK(at::equal(w[1][0], at::full({2, 2}, 2.0f)));
  CHECK(at::equal(w[1][1], at::zeros({2, 2})));
  CHECK(at::equal(w[2], at::zeros({2, 2, 2})));

  NamedTensors partial_kernel;
  partial_kernel.add("w", at::zeros({1, 1, 1, 2}));
  CHECK_THROWS_AS(acc.addPrefixSlice(partial_kernel, 1.0), sfn::ShapeError);
}

TEST_CASE("strided updates and a strided SuperNet are handled like contiguous ones") {
  OverlapAccumulator acc({{"m", {4, 4}, true}});
  NamedTensors a;
  const at::Tensor transposed = at::arange(6, at::kFloat).view({2, 3}).t();  // [3, 2], strided
  REQUIRE_FALSE(transposed.is_contiguous());
  a.add("m", transposed);
  acc.addPrefixSlice(a, 2.0);

  // The SuperNet tensor itself is a transposed view: results must land in its storage.
  at::Tensor storage = at::full({4, 4}, -1.0f);
  NamedTensors net;
  net.add("m", storage.t());
  acc.finishInto(net);
  CHECK(at::equal(net.at("m").narrow(0, 0, 3).narrow(1, 0, 2), transposed));
  CHECK(at::equal(storage.t().narrow(0, 0, 3).narrow(1, 0, 2), transposed));
  CHECK(net.at("m")[3][0].item<float>() == -1.0f);
  CHECK(net.at("m")[0][2].item<float>() == -1.0f);
}

TEST_CASE("every client on the MaxNet with sample-count weights is FedAvg") {
  const DesignSpace space = DesignSpace::preset("tiny");
  SuperNet net(space, 3);
  const SubNetConfig max = SubNetConfig::maxNet(space);
  const std::vector<std::int64_t> samples = {10, 25, 7, 58};

  std::vector<NamedTensors> thetas;
  std::vector<sfn::WeightInput> inputs;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    thetas.push_back(perturbed(net.extract(max), 100 + i));
    inputs.push_back({true, samples[i]});
  }
  sfn::WeightingOptions opts;
  opts.base = "samples";  // maxnet_beta stays "cosine": with only MaxNets it has no effect
  const std::vector<double> w = sfn::clientWeights(opts, 5, inputs);

  OverlapAccumulator acc(sfn::superNetSpec(space));
  for (std::size_t i = 0; i < thetas.size(); ++i) acc.add(space, max, thetas[i], w[i]);
  acc.finishInto(net.tensors());

  // FedAvg in float64, straight from the definition.
  double total = 0.0;
  for (auto n : samples) total += static_cast<double>(n);
  NamedTensors fedavg;
  for (std::size_t t = 0; t < thetas[0].size(); ++t) {
    at::Tensor acc64 = at::zeros_like(thetas[0][t].tensor, at::kDouble);
    for (std::size_t i = 0; i < thetas.size(); ++i)
      acc64 += thetas[i][t].tensor.to(at::kDouble) * static_cast<double>(samples[i]);
    fedavg.add(thetas[0][t].name, acc64 / total);
  }
  CHECK(allClose(net.tensors(), fedavg, 1e-6));
}

TEST_CASE("beta follows the cosine schedule and stays at bT after T") {
  CHECK(sfn::betaCosine(0, 0.9, 0.125, 100) == doctest::Approx(0.9));
  CHECK(sfn::betaCosine(50, 0.9, 0.125, 100) == doctest::Approx((0.9 + 0.125) / 2));
  CHECK(sfn::betaCosine(100, 0.9, 0.125, 100) == doctest::Approx(0.125));
  CHECK(sfn::betaCosine(250, 0.9, 0.125, 100) == doctest::Approx(0.125));
  CHECK(sfn::betaCosine(40, 0.9, 0.125, 0) == doctest::Approx(0.9));
}

TEST_CASE("default schedule: beta starts at b0, reaches 1/K after 80 % of the rounds, holds") {
  const int k = 10;
  const std::int64_t rounds = 30;
  CHECK(sfn::defaultFinalBeta(k) == doctest::Approx(0.1));
  CHECK(sfn::defaultFinalBeta(8) == doctest::Approx(0.125));
  CHECK(sfn::defaultDecayRounds(rounds) == 24.0);
  CHECK(sfn::defaultDecayRounds(1501) == 1201.0);  // round(1200.8)
  CHECK(sfn::defaultDecayRounds(0) == 0.0);
  sfn::WeightingOptions opts;
  opts.bT = sfn::defaultFinalBeta(k);
  opts.decay_rounds = sfn::defaultDecayRounds(rounds);
  CHECK(opts.beta(0) == doctest::Approx(0.9));
  CHECK(opts.beta(12) == doctest::Approx((0.9 + 0.1) / 2));
  CHECK(opts.beta(23) > 0.1);
  for (std::int64_t t = 24; t < rounds; ++t) CHECK(opts.beta(t) == doctest::Approx(0.1));
  // At 1/K the MaxNet client weighs what every other client does: uniform averaging.
  std::vector<sfn::WeightInput> in(static_cast<std::size_t>(k), {false, 100});
  in[3].is_maxnet = true;
  for (double w : sfn::clientWeights(opts, rounds - 1, in)) CHECK(w == doctest::Approx(0.1));
  // The metric reports the share actually used: b0 when constant, none set aside for "none".
  opts.maxnet_beta = "constant";
  CHECK(opts.beta(29) == doctest::Approx(0.9));
  opts.maxnet_beta = "none";
  CHECK(opts.beta(0) == 0.0);
}

TEST_CASE("effective clients: K for equal weights, fewer when one client dominates") {
  CHECK(sfn::effectiveClients({}) == 0.0);
  CHECK(sfn::effectiveClients({0.0, 0.0}) == 0.0);
  CHECK(sfn::effectiveClients({0.7}) == doctest::Approx(1.0));
  CHECK(sfn::effectiveClients(std::vector<double>(10, 0.1)) == doctest::Approx(10.0));
  // Scale-free: weights need not sum to 1 (only accepted updates are counted).
  CHECK(sfn::effectiveClients({2.0, 2.0, 2.0}) == doctest::Approx(3.0));
  for (const double beta : {0.9, 0.5, 0.1}) {
    const int k = 10;
    std::vector<sfn::WeightInput> in(static_cast<std::size_t>(k), {false, 100});
    in[0].is_maxnet = true;
    sfn::WeightingOptions opts;
    opts.maxnet_beta = "constant";
    opts.b0 = beta;
    const double expected = 1.0 / (beta * beta + (1 - beta) * (1 - beta) / (k - 1));
    CHECK(sfn::effectiveClients(sfn::clientWeights(opts, 0, in)) == doctest::Approx(expected));
  }
}

TEST_CASE("client weights sum to 1 and give the MaxNet client beta") {
  sfn::WeightingOptions opts;
  opts.bT = 0.125;
  opts.decay_rounds = 100;
  const std::vector<sfn::WeightInput> round = {{false, 10}, {true, 50}, {false, 30}, {false, 0}};
  auto sum = [](const std::vector<double>& w) {
    double s = 0.0;
    for (double x : w) s += x;
    return s;
  };

  SUBCASE("uniform, cosine") {
    const auto w = sfn::clientWeights(opts, 50, round);
    CHECK(sum(w) == doctest::Approx(1.0));
    CHECK(w[1] == doctest::Approx(0.5125));
    CHECK(w[0] == doctest::Approx((1 - 0.5125) / 3));
    CHECK(w[3] == doctest::Approx((1 - 0.5125) / 3));
  }
  SUBCASE("samples, cosine: others share 1 - beta by sample count") {
    opts.base = "samples";
    const auto w = sfn::clientWeights(opts, 0, round);
    CHECK(sum(w) == doctest::Approx(1.0));
    CHECK(w[1] == doctest::Approx(0.9));
    CHECK(w[0] == doctest::Approx(0.1 * 10 / 40));
    CHECK(w[2] == doctest::Approx(0.1 * 30 / 40));
    CHECK(w[3] == doctest::Approx(0.0));
  }
  SUBCASE("constant beta uses b0 in every round") {
    opts.maxnet_beta = "constant";
    CHECK(sfn::clientWeights(opts, 1000, round)[1] == doctest::Approx(0.9));
  }
  SUBCASE("none treats the MaxNet client like the others") {
    opts.maxnet_beta = "none";
    opts.base = "samples";
    const auto w = sfn::clientWeights(opts, 0, round);
    CHECK(sum(w) == doctest::Approx(1.0));
    CHECK(w[1] == doctest::Approx(50.0 / 90));
  }
  SUBCASE("no MaxNet: plain normalized base weights") {
    opts.base = "samples";
    const auto w = sfn::clientWeights(opts, 0, {{false, 1}, {false, 3}});
    CHECK(w[0] == doctest::Approx(0.25));
    CHECK(w[1] == doctest::Approx(0.75));
  }
  SUBCASE("a single update gets weight 1") {
    CHECK(sfn::clientWeights(opts, 0, {{true, 5}}) == std::vector<double>{1.0});
    CHECK(sfn::clientWeights(opts, 0, {{false, 5}}) == std::vector<double>{1.0});
  }
  SUBCASE("no updates, no weights") { CHECK(sfn::clientWeights(opts, 0, {}).empty()); }
}

TEST_CASE("weighting options are validated with the key named") {
  sfn::WeightingOptions opts;
  CHECK_NOTHROW(opts.validate());
  auto message = [](const sfn::WeightingOptions& o) {
    try {
      o.validate();
    } catch (const sfn::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  opts.base = "clients";
  CHECK(message(opts).find("weighting.base") != std::string::npos);
  opts = {};
  opts.maxnet_beta = "linear";
  CHECK(message(opts).find("weighting.maxnet_beta") != std::string::npos);
  opts = {};
  opts.b0 = 1.5;
  CHECK(message(opts).find("weighting.b0") != std::string::npos);
  opts = {};
  opts.decay_rounds = -1;
  CHECK(message(opts).find("weighting.decay_rounds") != std::string::npos);
}

TEST_CASE("merging two accumulators equals one accumulator fed all updates") {
  const DesignSpace space = DesignSpace::preset("tiny");
  SuperNet net(space, 5);
  const auto spec = sfn::superNetSpec(space);
  OverlapAccumulator all(spec);
  OverlapAccumulator left(spec);
  OverlapAccumulator right(spec);
  sfn::Rng rng(42);
  for (int i = 0; i < 10; ++i) {
    const SubNetConfig config = SubNetConfig::random(space, rng);
    const NamedTensors theta = perturbed(net.extract(config), 500 + i);
    const double weight = 0.1 + rng.uniform();
    all.add(space, config, theta, weight);
    (i % 3 == 0 ? left : right).add(space, config, theta, weight);
  }
  left.merge(right);
  CHECK(left.updates() == 10);
  NamedTensors merged = net.tensors().clone();
  NamedTensors direct = net.tensors().clone();
  left.finishInto(merged);
  all.finishInto(direct);
  CHECK(allClose(merged, direct, 1e-6));
  CHECK_FALSE(merged.bitEqual(net.tensors()));  // the updates did change something

  OverlapAccumulator other(sfn::superNetSpec(DesignSpace::preset("fmnist")));
  CHECK_THROWS_AS(left.merge(other), sfn::ShapeError);
}

TEST_CASE("malformed updates are rejected with ShapeError and leave no trace") {
  const DesignSpace space = DesignSpace::preset("tiny");
  SuperNet net(space, 9);
  const SubNetConfig config = SubNetConfig::minNet(space);
  OverlapAccumulator acc(sfn::superNetSpec(space));
  const NamedTensors good = net.extract(config);
  REQUIRE(good.size() >= 2);

  auto rebuilt = [&](std::size_t which, const std::string& name, const at::Tensor& t) {
    NamedTensors out;
    for (std::size_t i = 0; i < good.size(); ++i)
      out.add(i == which ? name : good[i].name, i == which ? t : good[i].tensor);
    return out;
  };
  const std::size_t last = good.size() - 1;
  const at::Tensor& t = good[last].tensor;

  SUBCASE("wrong shape") {
    std::vector<std::int64_t> bigger = t.sizes().vec();
    bigger[0] += 1;
    CHECK_THROWS_AS(acc.add(space, config, rebuilt(last, good[last].name, at::zeros(bigger)), 1.0),
                    sfn::ShapeError);
  }
  SUBCASE("wrong name") {
    try {
      acc.add(space, config, rebuilt(last, "head.weigth", t), 1.0);
      FAIL("expected ShapeError");
    } catch (const sfn::ShapeError& e) {
      CHECK(std::string(e.what()).find("head.weigth") != std::string::npos);
    }
  }
  SUBCASE("wrong dtype") {
    CHECK_THROWS_AS(acc.add(space, config, rebuilt(last, good[last].name, t.to(at::kDouble)), 1.0),
                    sfn::ShapeError);
  }
  SUBCASE("missing tensor") {
    NamedTensors fewer;
    for (std::size_t i = 0; i < last; ++i) fewer.add(good[i].name, good[i].tensor);
    CHECK_THROWS_AS(acc.add(space, config, fewer, 1.0), sfn::ShapeError);
  }
  SUBCASE("slice of another SubNet") {
    CHECK_THROWS_AS(acc.add(space, SubNetConfig::maxNet(space), good, 1.0), sfn::ShapeError);
  }
  SUBCASE("prefix slice larger than the SuperNet or unknown") {
    NamedTensors huge;
    huge.add(good[0].name, at::zeros({1000, 1, 3, 3}));
    CHECK_THROWS_AS(acc.addPrefixSlice(huge, 1.0), sfn::ShapeError);
    NamedTensors unknown;
    unknown.add("nope", at::zeros({1}));
    CHECK_THROWS_AS(acc.addPrefixSlice(unknown, 1.0), sfn::ShapeError);
  }
  SUBCASE("a valid slice is accepted") { CHECK_NOTHROW(acc.add(space, config, good, 0.5)); }

  if (acc.updates() == 0) {
    NamedTensors after = net.tensors().clone();
    acc.finishInto(after);
    CHECK(after.bitEqual(net.tensors()));
  }
}

TEST_CASE("assign policies parse and print") {
  for (const char* name : {"tracking-sandwich", "sandwich", "random", "static-capacity", "fixed"})
    CHECK(sfn::toString(sfn::parseAssignPolicy(name)) == name);
  CHECK_THROWS_AS(sfn::parseAssignPolicy("round-robin"), sfn::ConfigError);
}

TEST_CASE("tracking sandwich: MaxNet to the fewest MaxNet trainings, MinNet to the fewest MinNet") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const std::vector<sfn::AssignInput> clients = {{1}, {2}, {3}, {4}, {5}};
  for (std::int64_t round = 0; round < 5; ++round) {
    CAPTURE(round);
    sfn::SubNetAssigner assigner(space, sfn::AssignPolicy::kTrackingSandwich, 77);
    // Client 3 has the fewest MaxNet trainings. It also ties client 1 for the fewest MinNet
    // trainings, but it already has the MaxNet, so the MinNet must go to client 1.
    assigner.setCounters({{1, {3, 0}}, {2, {1, 4}}, {3, {0, 0}}, {4, {2, 1}}, {5, {1, 3}}});
    const auto configs = assigner.assign(round, clients);
    REQUIRE(configs.size() == clients.size());
    CHECK(configs[2].isMaxNet(space));
    CHECK(configs[0].isMinNet(space));
    for (std::size_t i : {1u, 3u, 4u}) {
      CHECK_FALSE(configs[i].isMaxNet(space));
      CHECK_FALSE(configs[i].isMinNet(space));
    }
    CHECK(assigner.counters(3).maxnet == 1u);
    CHECK(assigner.counters(3).minnet == 0u);
    CHECK(assigner.counters(1).minnet == 1u);
    CHECK(assigner.counters(1).maxnet == 3u);
    CHECK(assigner.counters(2).maxnet == 1u);
    CHECK(assigner.counters(999).maxnet == 0u);
  }
}

TEST_CASE("tracking sandwich breaks ties by the round's stream") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const std::vector<sfn::AssignInput> clients = {{1}, {2}, {3}, {4}};
  std::vector<int> maxnet_wins(clients.size(), 0);
  for (std::int64_t round = 0; round < 40; ++round) {
    // Fresh assigners: every client ties at zero; the same round gives the same winner.
    sfn::SubNetAssigner a(space, sfn::AssignPolicy::kTrackingSandwich, 5);
    sfn::SubNetAssigner b(space, sfn::AssignPolicy::kTrackingSandwich, 5);
    const auto ca = a.assign(round, clients);
    const auto cb = b.assign(round, clients);
    for (std::size_t i = 0; i < clients.size(); ++i) {
      CHECK(ca[i].sameNet(cb[i], space));
      if (ca[i].isMaxNet(space)) ++maxnet_wins[i];
    }
  }
  // Not always the first client: the tie-break is random, not positional.
  for (int wins : maxnet_wins) CHECK(wins > 0);
}

TEST_CASE("tracking sandwich balances the counters over rounds") {
  const DesignSpace space = DesignSpace::preset("tiny");
  sfn::SubNetAssigner assigner(space, sfn::AssignPolicy::kTrackingSandwich, 2024);
  const std::vector<sfn::AssignInput> fleet = {{1}, {2}, {3}, {4}, {5}};
  const int rounds = 20;
  for (int r = 0; r < rounds; ++r) {
    const auto configs = assigner.assign(r, fleet);
    int maxnets = 0;
    int minnets = 0;
    for (const auto& c : configs) {
      maxnets += c.isMaxNet(space) ? 1 : 0;
      minnets += c.isMinNet(space) ? 1 : 0;
    }
    CHECK(maxnets == 1);
    CHECK(minnets == 1);
  }
  // The MaxNet always goes to a global minimum, so its counts stay level exactly. The MinNet
  // may have to skip the global minimum (when that client got the MaxNet), so its counts
  // may drift apart by one more.
  std::uint32_t min_lo = rounds;
  std::uint32_t min_hi = 0;
  std::uint32_t min_total = 0;
  for (const auto& in : fleet) {
    CAPTURE(in.client_id);
    CHECK(assigner.counters(in.client_id).maxnet == rounds / 5);
    const std::uint32_t m = assigner.counters(in.client_id).minnet;
    min_lo = std::min(min_lo, m);
    min_hi = std::max(min_hi, m);
    min_total += m;
  }
  CHECK(min_total == static_cast<std::uint32_t>(rounds));
  CHECK(min_hi - min_lo <= 2);

  // Random subsets of a larger pool: counters stay within one of each other.
  sfn::SubNetAssigner pool(space, sfn::AssignPolicy::kTrackingSandwich, 9);
  sfn::Rng pick(123);
  for (int r = 0; r < 200; ++r) {
    std::vector<sfn::AssignInput> chosen;
    for (std::uint64_t id = 0; id < 8; ++id)
      if (pick.below(2) == 0) chosen.push_back({id});
    if (chosen.size() < 2) continue;
    pool.assign(r, chosen);
  }
  std::uint32_t lo = std::numeric_limits<std::uint32_t>::max();
  std::uint32_t hi = 0;
  for (std::uint64_t id = 0; id < 8; ++id) {
    lo = std::min(lo, pool.counters(id).maxnet);
    hi = std::max(hi, pool.counters(id).maxnet);
  }
  CHECK(lo > 0);
  CHECK(hi - lo <= 3);
}

TEST_CASE("sandwich and random policies") {
  const DesignSpace space = DesignSpace::preset("tiny");
  sfn::SubNetAssigner sandwich(space, sfn::AssignPolicy::kSandwich, 4);
  const auto c = sandwich.assign(0, {{7}, {8}, {9}});
  CHECK(c[0].isMaxNet(space));
  CHECK(c[1].isMinNet(space));
  CHECK(sandwich.counters(7).maxnet == 1u);
  CHECK(sandwich.counters(8).minnet == 1u);

  sfn::SubNetAssigner random(space, sfn::AssignPolicy::kRandom, 4);
  const auto r = random.assign(0, {{1}, {2}, {3}, {4}});
  CHECK(r.size() == 4);
  for (const auto& cfg : r) CHECK_NOTHROW(cfg.validate(space));
}

TEST_CASE("fixed policy: every client trains the one configured SubNet (iFedAvg)") {
  const DesignSpace space = DesignSpace::preset("fmnist");
  const std::vector<sfn::AssignInput> clients = {{1}, {2}, {3}, {4, 1}, {5}};
  sfn::Rng rng(17);
  // A random SubNet with non-normalized inactive genes: the assigner must hand out the same
  // network to everyone, and count MaxNet/MinNet trainings only when it is one of them.
  SubNetConfig mid = SubNetConfig::random(space, rng);
  mid.depth = {1, 0, 2, 1};
  for (const SubNetConfig& target :
       {SubNetConfig::maxNet(space), SubNetConfig::minNet(space), mid}) {
    CAPTURE(target.toString(space));
    sfn::SubNetAssigner assigner(space, sfn::AssignPolicy::kFixed, 3, target);
    for (std::int64_t round = 0; round < 3; ++round) {
      const auto configs = assigner.assign(round, clients);
      REQUIRE(configs.size() == clients.size());
      for (const auto& c : configs) {
        CHECK(c.sameNet(target, space));
        CHECK(c == target.normalized(space));
      }
    }
    const std::uint32_t expected_max = target.isMaxNet(space) ? 3u : 0u;
    const std::uint32_t expected_min = target.isMinNet(space) ? 3u : 0u;
    for (const auto& in : clients) {
      CHECK(assigner.counters(in.client_id).maxnet == expected_max);
      CHECK(assigner.counters(in.client_id).minnet == expected_min);
    }
  }
  CHECK_FALSE(mid.isMaxNet(space));
  CHECK_FALSE(mid.isMinNet(space));
  // No SubNet, or one from another space, is a configuration error at construction.
  CHECK_THROWS_AS(sfn::SubNetAssigner(space, sfn::AssignPolicy::kFixed, 3), sfn::ConfigError);
  SubNetConfig bad = SubNetConfig::maxNet(space);
  bad.depth.push_back(0);
  CHECK_THROWS_AS(sfn::SubNetAssigner(space, sfn::AssignPolicy::kFixed, 3, bad), sfn::ConfigError);
  // Other policies ignore the fixed SubNet.
  sfn::SubNetAssigner sandwich(space, sfn::AssignPolicy::kSandwich, 3, mid);
  CHECK(sandwich.assign(0, clients)[0].isMaxNet(space));
}

TEST_CASE("static capacity: the largest candidate within each budget") {
  for (const char* preset : {"tiny", "fmnist"}) {
    CAPTURE(preset);
    const DesignSpace space = DesignSpace::preset(preset);
    sfn::SubNetAssigner assigner(space, sfn::AssignPolicy::kStaticCapacity, 31);
    const std::int64_t max_macs = sfn::computeCost(space, SubNetConfig::maxNet(space)).macs;
    const std::int64_t min_macs = sfn::computeCost(space, SubNetConfig::minNet(space)).macs;
    REQUIRE(min_macs < max_macs);

    std::vector<sfn::AssignInput> clients;
    std::vector<std::int64_t> budgets = {0, 1, min_macs - 1, min_macs, max_macs, max_macs * 2};
    for (int i = 1; i <= 8; ++i) budgets.push_back(min_macs + (max_macs - min_macs) * i / 9);
    for (std::size_t i = 0; i < budgets.size(); ++i) clients.push_back({i, budgets[i]});
    const auto configs = assigner.assign(3, clients);

    CHECK(configs[0].isMaxNet(space));  // 0 = unlimited
    CHECK(configs[1].isMinNet(space));  // nothing fits
    CHECK(configs[2].isMinNet(space));
    CHECK(configs[3].isMinNet(space));
    CHECK(configs[4].isMaxNet(space));
    CHECK(configs[5].isMaxNet(space));
    std::int64_t previous = 0;
    for (std::size_t i = 6; i < configs.size(); ++i) {
      CAPTURE(budgets[i]);
      const std::int64_t macs = sfn::computeCost(space, configs[i]).macs;
      CHECK(macs <= budgets[i]);
      CHECK(macs >= previous);
      // 2000 candidates spread over the range: the pick is close to the budget.
      CHECK(static_cast<double>(macs) >= 0.9 * static_cast<double>(budgets[i]));
      previous = macs;
    }
    // The same budget gets the same SubNet every round.
    const auto again = assigner.assign(4, clients);
    for (std::size_t i = 0; i < configs.size(); ++i) CHECK(again[i].sameNet(configs[i], space));
  }
}

TEST_CASE("assignment is deterministic for (seed, round, inputs)") {
  const DesignSpace space = DesignSpace::preset("tiny");
  const std::vector<sfn::AssignInput> clients = {{4}, {8}, {15}, {16}, {23}, {42}};
  for (auto policy : {sfn::AssignPolicy::kTrackingSandwich, sfn::AssignPolicy::kRandom}) {
    sfn::SubNetAssigner a(space, policy, 1234);
    sfn::SubNetAssigner b(space, policy, 1234);
    sfn::SubNetAssigner other_seed(space, policy, 4321);
    bool any_difference = false;
    for (std::int64_t r = 0; r < 6; ++r) {
      const auto ca = a.assign(r, clients);
      const auto cb = b.assign(r, clients);
      const auto cc = other_seed.assign(r, clients);
      for (std::size_t i = 0; i < clients.size(); ++i) {
        CHECK(ca[i].sameNet(cb[i], space));
        if (!ca[i].sameNet(cc[i], space)) any_difference = true;
      }
    }
    CHECK(any_difference);
    CHECK(a.allCounters().size() == b.allCounters().size());
    for (const auto& [id, c] : a.allCounters()) {
      CHECK(b.counters(id).maxnet == c.maxnet);
      CHECK(b.counters(id).minnet == c.minnet);
    }
  }
}
