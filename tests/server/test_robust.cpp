// Issue 13, item 1: one poisoned update must never destroy the federation. The pieces one
// by one (change measure, update bound, clipping, trimmed mean, rollback copy, probe,
// back-off, [robust] config), then the Coordinator using them against a scripted transport
// where the test plays the clients.
#include "sfn/core/error.h"
#include "sfn/data/dataset.h"
#include "sfn/fl/change_norm.h"
#include "sfn/fl/covered_backup.h"
#include "sfn/fl/overlap_accumulator.h"
#include "sfn/fl/trimmed_mean_aggregator.h"
#include "sfn/fl/update_bound.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/health_probe.h"
#include "sfn/server/robust_options.h"
#include "sfn/server/round_metrics.h"
#include "sfn/server/run_config.h"
#include "server/scripted_transport.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <set>

using namespace sfn;

namespace {

// ---------------------------------------------------------------------------------------
// Hand-made tensors

// A 4x4 matrix, a 4-vector and an int64 buffer (never averaged), like test_aggregate's.
std::vector<TensorSpec> handSpec() {
  return {{"m", {4, 4}, true}, {"v", {4}, true}, {"steps", {1}, false}};
}

NamedTensors handNet() {
  NamedTensors net;
  net.add("m", at::arange(16, at::kFloat).view({4, 4}));
  net.add("v", at::arange(4, at::kFloat).add_(100));
  net.add("steps", at::full({1}, 3, at::kLong));
  return net;
}

// The [:rows, :cols] / [:len] boxes of handNet() plus `delta` (the int buffer unchanged).
NamedTensors handSlice(const NamedTensors& net, std::int64_t rows, std::int64_t cols,
                       std::int64_t len, float delta) {
  NamedTensors s;
  s.add("m", net[0].tensor.narrow(0, 0, rows).narrow(1, 0, cols).clone().add_(delta));
  s.add("v", net[1].tensor.narrow(0, 0, len).clone().add_(delta));
  s.add("steps", net[2].tensor.clone());
  return s;
}

float at2(const NamedTensors& t, std::size_t i, std::int64_t r, std::int64_t c) {
  return t[i].tensor[r][c].item<float>();
}

using test::ScriptedTransport;

// The slice of `task` moved by small seeded noise (an honest client's training), or scaled
// / shifted as an attacker would.
UpdateMsg updateOf(const TrainTaskMsg& task,
                   const std::function<at::Tensor(const at::Tensor&)>& f) {
  UpdateMsg u;
  u.round = task.round;
  u.task_id = task.task_id;
  u.samples = 100;
  u.mean_loss = 1.0;
  for (const auto& t : task.tensors)
    u.tensors.add(t.name, t.tensor.scalar_type() == at::kFloat ? f(t.tensor) : t.tensor.clone());
  return u;
}

UpdateMsg honest(const TrainTaskMsg& task, double noise = 0.01) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(task.task_id * 7919 + 13);
  return updateOf(
      task, [&](const at::Tensor& t) { return t + at::empty_like(t).normal_(0.0, noise, gen); });
}

CoordinatorOptions options(int k) {
  CoordinatorOptions o;
  o.clients_per_round = k;
  o.round_deadline_s = 10;
  o.eval_every = 0;
  o.seed = 3;
  return o;
}

// Per round, what each client answers: a function of (round, client peer, task).
using Behaviour =
    std::function<std::optional<UpdateMsg>(std::int64_t, const PeerId&, const TrainTaskMsg&)>;

struct Harness {
  VirtualClock clock;
  ScriptedTransport transport{clock};
  Coordinator coord;
  std::vector<std::pair<std::int64_t, PeerId>> tasks;  // (round, peer) of every task sent
  Behaviour behaviour = [](std::int64_t, const PeerId&, const TrainTaskMsg& t) {
    return std::optional<UpdateMsg>(honest(t));
  };

  explicit Harness(CoordinatorOptions o)
      : coord(std::move(o), SuperNet(DesignSpace::preset("tiny"), 5), transport, clock, nullptr,
              nullptr) {
    transport.on_send = [this](const PeerId& peer, Message& m) {
      if (auto* t = std::get_if<TrainTaskMsg>(&m)) {
        tasks.emplace_back(static_cast<std::int64_t>(t->round), peer);
        if (auto u = behaviour(static_cast<std::int64_t>(t->round), peer, *t))
          transport.push(peer, *u);
      }
    };
  }
  void registerClients(int n) {
    for (int i = 0; i < n; ++i) {
      RegisterMsg r;
      r.client_name = fmt::format("c{}", i);
      r.data = DataInfo{1, 8, 8, 3};  // the "tiny" SuperNet's input, labels 0..3
      r.samples = 100;
      transport.push(fmt::format("peer-{}", i), r);
    }
    REQUIRE(coord.waitForClients(static_cast<std::size_t>(n), 1.0));
  }
  std::set<PeerId> peersOf(std::int64_t round) const {
    std::set<PeerId> out;
    for (const auto& [r, p] : tasks)
      if (r == round) out.insert(p);
    return out;
  }
};

bool allFinite(const NamedTensors& t) {
  for (const auto& it : t)
    if (it.tensor.is_floating_point() && !at::isfinite(it.tensor).all().item<bool>()) return false;
  return true;
}

// 64 learnable images for the tiny preset (1x8x8, 4 classes).
HealthProbe tinyProbe(const Dataset& data) {
  IndexList idx(64);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>(i);
  return HealthProbe(data, idx, 64);
}

int reasonCount(const RoundMetrics& m, RejectReason r) {
  const auto it = m.rejected_reasons.find(r);
  return it == m.rejected_reasons.end() ? 0 : it->second;
}

}  // namespace

// =======================================================================================
// The change measure

TEST_CASE("measureChange: exact sums over the averaged elements of a slice, finite for 3e38") {
  const NamedTensors net = handNet();
  // m[:2, :3] + 2 (6 elements), v[:3] + 2 (3 elements): 9 changed elements of 2.
  ChangeNorm c = measureChange(handSlice(net, 2, 3, 3, 2.0f), net);
  CHECK(c.elements == 9);
  CHECK(c.sum_squares == doctest::Approx(36.0));
  CHECK(c.rms() == doctest::Approx(2.0));
  CHECK(c.l2() == doctest::Approx(6.0));
  REQUIRE(c.tensors.size() == 2);  // the int64 buffer is not measured
  CHECK(c.tensors[0].name == "m");
  CHECK(c.tensors[0].elements == 6);
  CHECK(c.tensors[1].index == 1);
  // Only the changed element counts: the box is compared with the SuperNet's box.
  NamedTensors one = handSlice(net, 4, 4, 4, 0.0f);
  one[0].tensor[3][3] = 15.0f + 4.0f;
  c = measureChange(one, net);
  CHECK(c.sum_squares == doctest::Approx(16.0));
  CHECK(c.elements == 20);
  // 3e38 - (-3e38) overflows float, not the double accumulation.
  NamedTensors neg = net.clone();
  neg[0].tensor.fill_(-3e38f);
  NamedTensors huge = handSlice(net, 4, 4, 4, 0.0f);
  huge[0].tensor.fill_(3e38f);
  c = measureChange(huge, neg);
  CHECK(std::isfinite(c.rms()));
  CHECK(c.tensors[0].rms() == doctest::Approx(6e38));
  // Not a prefix box of the SuperNet: refused.
  NamedTensors bad = handSlice(net, 2, 2, 2, 0.0f);
  bad[0].tensor = at::zeros({5, 1});
  CHECK_THROWS_AS(measureChange(bad, net), ShapeError);
}

TEST_CASE("measureChange does not depend on the thread count, and matches ATen in double") {
  const DesignSpace space = DesignSpace::preset("fmnist");
  SuperNet net(space, 3);
  const SubNetConfig max = SubNetConfig::maxNet(space);
  NamedTensors update = net.extract(max);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(17);
  for (auto& t : update)
    if (t.tensor.scalar_type() == at::kFloat)
      t.tensor.add_(at::empty_like(t.tensor).normal_(0, 0.01, gen));
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const ChangeNorm one = measureChange(update, net.tensors());
  at::set_num_threads(2);
  const ChangeNorm two = measureChange(update, net.tensors());
  at::set_num_threads(threads);
  CHECK(one.sum_squares == two.sum_squares);  // bit for bit
  double ref = 0.0;
  for (std::size_t i = 0; i < update.size(); ++i)
    if (update[i].tensor.scalar_type() == at::kFloat)
      ref += (update[i].tensor.to(at::kDouble) - net.tensors()[i].tensor.to(at::kDouble))
                 .pow(2)
                 .sum()
                 .item<double>();
  CHECK(one.sum_squares == doctest::Approx(ref).epsilon(1e-12));
  CHECK(one.rms() == doctest::Approx(0.01).epsilon(0.02));
}

TEST_CASE("clipScale: 1 when off or under the norm, norm / rms above it") {
  CHECK(clipScale(5.0, 0.0) == 1.0);
  CHECK(clipScale(0.5, 1.0) == 1.0);
  CHECK(clipScale(1.0, 1.0) == 1.0);
  CHECK(clipScale(4.0, 1.0) == doctest::Approx(0.25));
}

// =======================================================================================
// The update bound

namespace {
ChangeNorm changeOf(double rms, std::int64_t n = 100) {
  ChangeNorm c;
  c.elements = n;
  c.sum_squares = rms * rms * static_cast<double>(n);
  c.tensors.push_back({0, "w", c.sum_squares, n});
  return c;
}
}  // namespace

TEST_CASE("UpdateBound: only the cap before min_history, then multiple x the median") {
  UpdateBoundOptions o;
  o.multiple = 10;
  o.cap = 100;
  o.min_history = 4;
  UpdateBound b(o);
  // No history: 50 passes (cap only), 3e38 and non-finite do not.
  CHECK(b.check(changeOf(50)).ok());
  CHECK(b.check(changeOf(3e38)).verdict == BoundVerdict::kOverCap);
  CHECK(b.check(changeOf(std::numeric_limits<double>::infinity())).verdict ==
        BoundVerdict::kOverCap);
  for (double v : {0.01, 0.02, 0.03}) b.accept(changeOf(v));
  CHECK_FALSE(b.median().has_value());
  CHECK(b.check(changeOf(50)).ok());  // 3 < min_history
  b.accept(changeOf(0.04));
  REQUIRE(b.median().has_value());
  CHECK(*b.median() == doctest::Approx(0.02));  // the lower median of 4
  const BoundCheck over = b.check(changeOf(0.25));
  CHECK(over.verdict == BoundVerdict::kOverMedian);
  CHECK(over.limit == doctest::Approx(0.2));
  CHECK(over.describe().find("over the bound 0.2") != std::string::npos);
  CHECK(b.check(changeOf(0.19)).ok());
  // Free riders (no change at all) are not recorded.
  for (int i = 0; i < 10; ++i) b.accept(changeOf(0.0));
  CHECK(b.history() == 4);
  CHECK(b.check(changeOf(0.19)).ok());
}

TEST_CASE("UpdateBound: a rolled-back round is forgotten, the window trims, restore rebuilds") {
  UpdateBoundOptions o;
  o.min_history = 2;
  o.window = 3;
  UpdateBound b(o);
  b.accept(changeOf(1));
  b.accept(changeOf(1));
  b.endRound(true);
  b.accept(changeOf(100));
  b.accept(changeOf(100));
  b.accept(changeOf(100));
  CHECK(*b.median() == doctest::Approx(100));  // the round counts at once
  b.endRound(false);                           // ... and is forgotten when rolled back
  CHECK(b.history() == 2);
  CHECK(*b.median() == doctest::Approx(1));
  for (double v : {2.0, 3.0, 4.0}) b.accept(changeOf(v));
  b.endRound(true);
  CHECK(b.history() == 3);  // the last 3
  CHECK(*b.median() == doctest::Approx(3));
  UpdateBound r(o);
  r.restore({1, 1, 2, 3, 4});
  CHECK(r.history() == 3);
  CHECK(*r.median() == *b.median());
}

TEST_CASE("UpdateBound per_tensor: a change concentrated in one small tensor is caught") {
  UpdateBoundOptions o;
  o.min_history = 3;
  o.per_tensor = true;
  UpdateBound b(o);
  // 10,000 conv elements that moved 0.01 each and a 10-element bias.
  auto update = [](double bias_rms) {
    ChangeNorm c;
    c.tensors.push_back({0, "conv", 0.01 * 0.01 * 10000, 10000});
    c.tensors.push_back({1, "bias", bias_rms * bias_rms * 10, 10});
    for (const auto& t : c.tensors) {
      c.sum_squares += t.sum_squares;
      c.elements += t.elements;
    }
    return c;
  };
  for (int i = 0; i < 3; ++i) b.accept(update(0.01));
  // The bias moved 2 per element: 6.4x the median RMS over the whole update (within 10x),
  // 200x the bias's own median.
  const ChangeNorm sneaky = update(2.0);
  CHECK(sneaky.rms() == doctest::Approx(0.064).epsilon(0.01));
  const BoundCheck c = b.check(sneaky);
  CHECK(c.verdict == BoundVerdict::kOverMedian);
  CHECK(c.tensor == "bias");
  o.per_tensor = false;
  UpdateBound whole(o);
  for (int i = 0; i < 3; ++i) whole.accept(update(0.01));
  CHECK(whole.check(sneaky).ok());  // what per_tensor is for
}

TEST_CASE("UpdateBound options are validated with the robust.* key named") {
  UpdateBoundOptions o;
  o.multiple = 0.5;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("robust.bound_multiple"), ConfigError);
  o = {};
  o.cap = -1;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("robust.bound_cap"), ConfigError);
  o = {};
  o.window = 2;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("robust.bound_window"), ConfigError);
}

// =======================================================================================
// Robust aggregation: clipping and the trimmed mean

TEST_CASE("clipping: the accumulator adds ref + scale x change; scale 1 is bit for bit add") {
  const NamedTensors net = handNet();
  // Two updates over m[:2, :2] and v[:2]: +4 (clipped to scale 0.25 -> +1) weight 1, and
  // +2 unclipped weight 3: covered elements move by (1 * 1 + 3 * 2) / 4 = 1.75.
  OverlapAccumulator acc(handSpec());
  acc.addScaledChange(handSlice(net, 2, 2, 2, 4.0f), net, 1.0, 0.25);
  acc.addScaledChange(handSlice(net, 2, 2, 2, 2.0f), net, 3.0, 1.0);
  NamedTensors out = net.clone();
  acc.finishInto(out);
  CHECK(at2(out, 0, 1, 1) == doctest::Approx(at2(net, 0, 1, 1) + 1.75));
  CHECK(out[1].tensor[0].item<float>() == doctest::Approx(100 + 1.75));
  CHECK(at2(out, 0, 2, 2) == at2(net, 0, 2, 2));  // uncovered
  CHECK(out[1].tensor[3].item<float>() == 103.0f);
  // scale 1 is exactly addPrefixSlice.
  OverlapAccumulator a(handSpec()), b(handSpec());
  const NamedTensors s = handSlice(net, 3, 2, 3, 0.37f);
  a.addScaledChange(s, net, 0.7, 1.0);
  b.addPrefixSlice(s, 0.7);
  NamedTensors oa = net.clone(), ob = net.clone();
  a.finishInto(oa);
  b.finishInto(ob);
  CHECK(oa.bitEqual(ob));
  CHECK_THROWS(a.addScaledChange(s, net, 1.0, 0.0));
  CHECK_THROWS(a.addScaledChange(s, net, 1.0, 1.5));
}

TEST_CASE("trimmed mean: hand-made values, coverage, weights and clipping") {
  const NamedTensors net = handNet();
  SUBCASE("five covering updates, trim 0.2: the extremes go, the middle three average") {
    TrimmedMeanAggregator agg(handSpec(), 0.2);
    // m[0][0] = 0 in the SuperNet; deltas 1, 2, 3, 4, 100 over the full box.
    for (float d : {100.0f, 1.0f, 4.0f, 2.0f, 3.0f}) agg.add(handSlice(net, 4, 4, 4, d), 1.0);
    NamedTensors out = net.clone();
    agg.finishInto(out);
    CHECK(at2(out, 0, 0, 0) == doctest::Approx(3.0));
    CHECK(at2(out, 0, 3, 3) == doctest::Approx(15 + 3.0));
    CHECK(out[1].tensor[2].item<float>() == doctest::Approx(102 + 3.0));
    CHECK(agg.nbytes() > 0);
    agg.reset();
    CHECK(agg.updates() == 0);
    CHECK(agg.nbytes() == 0);
  }
  SUBCASE("elements covered by fewer clients are trimmed less; uncovered ones kept") {
    TrimmedMeanAggregator agg(handSpec(), 0.34);
    agg.add(handSlice(net, 4, 4, 4, 30.0f), 1.0);  // covers everything
    agg.add(handSlice(net, 2, 2, 2, 1.0f), 1.0);
    agg.add(handSlice(net, 2, 2, 2, 2.0f), 1.0);
    NamedTensors out = net.clone();
    agg.finishInto(out);
    // [0][0]: 3 values {1, 2, 30}, t = floor(1.02) = 1: the median 2.
    CHECK(at2(out, 0, 0, 0) == doctest::Approx(2.0));
    // [3][3]: one value (30), nothing trimmed.
    CHECK(at2(out, 0, 3, 3) == doctest::Approx(15 + 30.0));
    TrimmedMeanAggregator two(handSpec(), 0.34);
    two.add(handSlice(net, 2, 2, 2, 1.0f), 1.0);
    two.add(handSlice(net, 2, 2, 2, 2.0f), 3.0);
    NamedTensors out2 = net.clone();
    two.finishInto(out2);
    // Two values, t = floor(0.68) = 0: the weighted mean (1 + 3 x 2) / 4.
    CHECK(at2(out2, 0, 1, 0) == doctest::Approx(4 + 1.75));
    CHECK(at2(out2, 0, 2, 0) == at2(net, 0, 2, 0));   // uncovered
    CHECK(out2[2].tensor.item<std::int64_t>() == 3);  // the int buffer untouched
  }
  SUBCASE("weights weigh the kept values; a clipped change is scaled before sorting") {
    TrimmedMeanAggregator agg(handSpec(), 0.25);
    agg.add(handSlice(net, 1, 1, 1, 1.0f), 1.0);
    agg.add(handSlice(net, 1, 1, 1, 2.0f), 1.0);
    agg.add(handSlice(net, 1, 1, 1, 3.0f), 3.0);
    agg.add(handSlice(net, 1, 1, 1, 40.0f), 1.0, 0.1);  // clipped: +4, the largest
    NamedTensors out = net.clone();
    agg.finishInto(out);
    // Values {1, 2, 3, 4}, t = 1: {2 (w 1), 3 (w 3)} -> (2 + 9) / 4.
    CHECK(at2(out, 0, 0, 0) == doctest::Approx(2.75));
  }
  CHECK_THROWS_AS(TrimmedMeanAggregator(handSpec(), 0.5), Error);
  TrimmedMeanAggregator agg(handSpec(), 0.1);
  NamedTensors bad = handSlice(net, 2, 2, 2, 0.0f);
  bad[0].tensor = at::zeros({5, 1});
  CHECK_THROWS_AS(agg.add(bad, 1.0), ShapeError);
  CHECK(agg.updates() == 0);
}

// =======================================================================================
// Rollback copy and probe

TEST_CASE("CoveredBackup copies the covered boxes only and restores them bit for bit") {
  NamedTensors net = handNet();
  const NamedTensors before = net.clone();
  CoveredBackup backup(handSpec());
  backup.cover(handSlice(net, 1, 3, 2, 0.0f));
  backup.cover(handSlice(net, 2, 1, 1, 0.0f));
  backup.save(net);
  CHECK(backup.nbytes() == (2 * 3 + 2) * 4);  // m[:2, :3] and v[:2]
  net[0].tensor.narrow(0, 0, 2).narrow(1, 0, 3).fill_(std::nanf(""));
  net[1].tensor.narrow(0, 0, 2).fill_(-0.0f);
  backup.restoreInto(net);
  CHECK(net.bitEqual(before));
  backup.reset();
  CHECK_FALSE(backup.saved());
  CHECK_THROWS(backup.restoreInto(net));
}

TEST_CASE("HealthProbe: finite losses of MaxNet and MinNet; problems named") {
  const Dataset data = makeSyntheticDataset(200, 1, 8, 4, 9);
  const HealthProbe probe = tinyProbe(data);
  CHECK(probe.enabled());
  CHECK(probe.samples() == 64);
  CHECK_FALSE(HealthProbe().enabled());
  CHECK_FALSE(HealthProbe(data, {1, 2}, 0).enabled());
  SuperNet net(DesignSpace::preset("tiny"), 5);
  const NamedTensors before = net.tensors().clone();
  const ProbeLosses l = probe.run(net);
  CHECK(l.finite());
  CHECK(l.max > 0.1);
  CHECK(l.max < 10);
  CHECK(net.tensors().bitEqual(before));  // only reads
  CHECK(probe.run(net).max == l.max);     // deterministic
  net.tensors()[0].tensor.fill_(std::numeric_limits<float>::infinity());
  const ProbeLosses broken = probe.run(net);
  CHECK_FALSE(broken.finite());

  const double ln4 = std::log(4.0);
  CHECK_FALSE(probeProblem({1.0, 1.2}, std::nullopt, 4, 100, 4));
  CHECK(probeProblem(broken, std::nullopt, 4, 100, 4)->find("not finite") != std::string::npos);
  CHECK(probeProblem({150, 1}, std::nullopt, 4, 100, 4)->find("MaxNet") != std::string::npos);
  // Relative to the previous loss, but never below 4 x ln(classes): a tiny loss growing
  // tenfold is an ordinary fluctuation, not an explosion.
  CHECK_FALSE(probeProblem({0.5, 0.5}, ProbeLosses{0.01, 0.01}, 4, 100, 4));
  CHECK(probeProblem({1.0, 4 * ln4 + 0.01}, ProbeLosses{0.01, 0.01}, 4, 100, 4)
            ->find("MinNet probe loss") != std::string::npos);
  CHECK(probeProblem({41, 1}, ProbeLosses{10, 1}, 4, 100, 4).has_value());
  CHECK_FALSE(probeProblem({39, 1}, ProbeLosses{10, 1}, 4, 100, 4));
  CHECK(probeProblem({99, 1}, ProbeLosses{30, 1}, 4, 50, 4).has_value());  // the cap
}

// =======================================================================================
// [robust] config

TEST_CASE("[robust]: every key read, defaults kept, bad values and unknown keys named") {
  const RunConfig d = RunConfig::parse("", "r.toml");
  const RobustOptions& def = d.coordinator.robust;
  CHECK(def.bound.multiple == 10.0);
  CHECK(def.clip_norm == 0.0);
  CHECK(def.trim_fraction == 0.0);
  CHECK(def.probe_samples == 64);
  const RunConfig c = RunConfig::parse(
      "[robust]\nbound_multiple = 20\nbound_cap = 5.5\nbound_min_history = 3\nbound_window = 40\n"
      "bound_per_tensor = true\nclip_norm = 0.1\ntrim_fraction = 0.2\nprobe_samples = 0\n"
      "probe_loss_multiple = 3\nprobe_loss_cap = 50\nquarantine_rounds = 7\nbackoff_after = 2\n"
      "backoff_base_s = 1.5\nbackoff_max_s = 60\n",
      "r.toml");
  const RobustOptions& r = c.coordinator.robust;
  CHECK(r.bound.multiple == 20);
  CHECK(r.bound.cap == 5.5);
  CHECK(r.bound.min_history == 3);
  CHECK(r.bound.window == 40);
  CHECK(r.bound.per_tensor);
  CHECK(r.clip_norm == 0.1);
  CHECK(r.trim_fraction == 0.2);
  CHECK(r.probe_samples == 0);
  CHECK(r.probe_loss_multiple == 3);
  CHECK(r.probe_loss_cap == 50);
  CHECK(r.quarantine_rounds == 7);
  CHECK(r.backoff_after == 2);
  CHECK(r.backoff_base_s == 1.5);
  CHECK(r.backoff_max_s == 60);
  CHECK_THROWS_WITH_AS(RunConfig::parse("[robust]\ntrim_fraction = 0.5\n", "r.toml"),
                       doctest::Contains("robust.trim_fraction"), ConfigError);
  CHECK_THROWS_WITH_AS(RunConfig::parse("[robust]\nclip = 1\n", "r.toml"),
                       doctest::Contains("clip"), ConfigError);
  CHECK_THROWS_WITH_AS(RunConfig::parse("[robust]\nbackoff_max_s = 1\n", "r.toml"),
                       doctest::Contains("robust.backoff_max_s"), ConfigError);
  CHECK_THROWS_WITH_AS(RunConfig::parse("", "r.toml", ".", {"robust.probe_loss_multiple=0.5"}),
                       doctest::Contains("robust.probe_loss_multiple"), ConfigError);
}

TEST_CASE("back-off: 0 below backoff_after, then doubling up to the cap") {
  RobustOptions r;
  r.backoff_after = 3;
  r.backoff_base_s = 10;
  r.backoff_max_s = 300;
  CHECK(r.backoffSeconds(0) == 0);
  CHECK(r.backoffSeconds(2) == 0);
  CHECK(r.backoffSeconds(3) == 10);
  CHECK(r.backoffSeconds(4) == 20);
  CHECK(r.backoffSeconds(7) == 160);
  CHECK(r.backoffSeconds(8) == 300);
  CHECK(r.backoffSeconds(1'000'000) == 300);
  r.backoff_after = 0;
  CHECK(r.backoffSeconds(50) == 0);
}

// =======================================================================================
// Metrics

TEST_CASE("metrics: rolled_back, reasons, probe losses and task change round-trip; old rows load") {
  RoundMetrics m;
  m.outcome = RoundOutcome::kRolledBack;
  m.rejected = 3;
  m.rejected_reasons[RejectReason::kChangeOverCap] = 2;
  m.rejected_reasons[RejectReason::kMalformed] = 1;
  m.probe_loss_max = std::numeric_limits<double>::infinity();
  m.probe_loss_min = 1.5;
  m.backoff_s = 20;
  m.clipped = 1;
  m.quarantined = 2;
  m.tasks.push_back({7, "c0", "max", TaskStatus::kAccepted, 0.5, 42, 0.125});
  const nlohmann::json j = m.toJson();
  CHECK(j.at("outcome") == "rolled_back");
  CHECK(j.at("rejected_reasons").at("change_over_cap") == 2);
  CHECK(j.at("probe_loss_max").is_null());
  const RoundMetrics back = RoundMetrics::fromJson(nlohmann::json::parse(j.dump()));
  CHECK((back.outcome == RoundOutcome::kRolledBack));
  CHECK((back.rejected_reasons == m.rejected_reasons));
  CHECK(std::isinf(back.probe_loss_max));
  CHECK(back.probe_loss_min == 1.5);
  CHECK(back.backoff_s == 20);
  CHECK(back.clipped == 1);
  CHECK(back.quarantined == 2);
  CHECK(back.tasks.at(0).client_id == 42);
  CHECK(back.tasks.at(0).change_rms == 0.125);
  CHECK(toString(parseRoundOutcome("abandoned")) == "abandoned");
  // A row written before these fields existed.
  const nlohmann::json old = nlohmann::json::parse(
      R"({"round": 3, "outcome": "completed", "accepted": 2, "rejected": 1,
          "tasks": [{"task_id": 1, "client": "a", "subnet": "max", "status": "accepted"}]})");
  const RoundMetrics o = RoundMetrics::fromJson(old);
  CHECK((o.outcome == RoundOutcome::kCompleted));
  CHECK(o.rejected_reasons.empty());
  CHECK(o.probe_loss_max == 0.0);
  CHECK(o.tasks.at(0).change_rms == -1.0);
  nlohmann::json bad = j;
  bad["rejected_reasons"] = {{"bored", 1}};
  CHECK_THROWS_WITH_AS(RoundMetrics::fromJson(bad), doctest::Contains("'bored'"), DataError);
  CHECK(RoundMetrics::csvHeader({}).find(",probe_loss_max,probe_loss_min,backoff_s") !=
        std::string::npos);
}

// =======================================================================================
// The Coordinator

TEST_CASE("coordinator: an all-3e38 update is refused by the cap, the round completes, finite") {
  Harness h(options(3));
  h.registerClients(3);
  const NamedTensors before = h.coord.supernet().tensors().clone();
  h.behaviour = [](std::int64_t, const PeerId& peer, const TrainTaskMsg& t) {
    if (peer == "peer-1")
      return std::optional(
          updateOf(t, [](const at::Tensor& x) { return at::full_like(x, 3e38f); }));
    return std::optional(honest(t));
  };
  for (int round = 0; round < 3; ++round) {
    const RoundMetrics m = h.coord.runRound();
    CHECK((m.outcome == RoundOutcome::kCompleted));
    CHECK(m.accepted == 2);
    CHECK(m.rejected == 1);
    CHECK(reasonCount(m, RejectReason::kChangeOverCap) == 1);
    for (const TaskRecord& t : m.tasks) {
      CHECK((t.status == (t.client == "c1" ? TaskStatus::kRejected : TaskStatus::kAccepted)));
      CHECK(t.change_rms > 0);
      if (t.client == "c1") CHECK(t.change_rms > 1e38);
    }
  }
  CHECK(allFinite(h.coord.supernet().tensors()));
  CHECK_FALSE(h.coord.supernet().tensors().bitEqual(before));  // the honest updates merged
  CHECK(h.coord.updateBound().history() == 6);                 // the poison taught it nothing
}

TEST_CASE("coordinator: a 100x-scaled update is refused by the median rule, honest ones pass") {
  CoordinatorOptions o = options(3);
  o.robust.bound.min_history = 6;
  Harness h(o);
  h.registerClients(3);
  // Two honest rounds build the history; from then on c2 scales its slice by 100 (RMS of
  // its change ~100x the weights', far below the cap) but the median rule refuses it.
  h.behaviour = [](std::int64_t round, const PeerId& peer, const TrainTaskMsg& t) {
    if (round >= 2 && peer == "peer-2")
      return std::optional(updateOf(t, [](const at::Tensor& x) { return x * 100.0f; }));
    return std::optional(honest(t));
  };
  for (int round = 0; round < 2; ++round) {
    const RoundMetrics m = h.coord.runRound();
    CHECK(m.accepted == 3);
    CHECK(m.rejected == 0);
  }
  const double median = h.coord.updateBound().median().value();
  CHECK(median == doctest::Approx(0.01).epsilon(0.2));
  for (int round = 2; round < 4; ++round) {
    const RoundMetrics m = h.coord.runRound();
    CHECK((m.outcome == RoundOutcome::kCompleted));
    CHECK(m.accepted == 2);
    CHECK(reasonCount(m, RejectReason::kChangeOverBound) == 1);
    for (const TaskRecord& t : m.tasks)
      if (t.client == "c2") {
        CHECK((t.status == TaskStatus::kRejected));
        CHECK(t.change_rms < o.robust.bound.cap);  // the cap alone would have let it in
      }
  }
  // Honest updates 5x the usual size still pass (the multiple is 10).
  h.behaviour = [](std::int64_t, const PeerId&, const TrainTaskMsg& t) {
    return std::optional(honest(t, 0.05));
  };
  const RoundMetrics m = h.coord.runRound();
  CHECK(m.accepted == 3);
  CHECK(m.rejected == 0);
}

TEST_CASE("coordinator: clip_norm scales each large change; trim_fraction takes the median") {
  SUBCASE("clipping") {
    CoordinatorOptions o = options(3);
    o.robust.clip_norm = 0.5;
    Harness h(o);
    h.registerClients(3);
    const NamedTensors before = h.coord.supernet().tensors().clone();
    // Every client moves every weight by +1: RMS 1, clipped to +0.5.
    h.behaviour = [](std::int64_t, const PeerId&, const TrainTaskMsg& t) {
      return std::optional(updateOf(t, [](const at::Tensor& x) { return x + 1.0f; }));
    };
    const RoundMetrics m = h.coord.runRound();
    CHECK(m.accepted == 3);
    CHECK(m.clipped == 3);
    const NamedTensors& after = h.coord.supernet().tensors();
    for (std::size_t i = 0; i < after.size(); ++i)
      if (after[i].tensor.scalar_type() == at::kFloat)
        CHECK(at::allclose(after[i].tensor, before[i].tensor + 0.5, 1e-5, 1e-5));
  }
  SUBCASE("trimmed mean") {
    CoordinatorOptions o = options(3);
    o.robust.trim_fraction = 0.34;
    o.robust.bound.cap = 1000;
    Harness h(o);
    h.registerClients(3);
    const NamedTensors before = h.coord.supernet().tensors().clone();
    h.behaviour = [](std::int64_t, const PeerId& peer, const TrainTaskMsg& t) {
      const float d = peer == "peer-0" ? 1.0f : peer == "peer-1" ? 2.0f : 300.0f;
      return std::optional(updateOf(t, [d](const at::Tensor& x) { return x + d; }));
    };
    const RoundMetrics m = h.coord.runRound();
    REQUIRE(m.accepted == 3);
    // Elements all three cover (the MinNet's, inside every slice) get the middle value +2:
    // the attacker's +300 is trimmed away whatever its weight.
    const DesignSpace& space = h.coord.supernet().space();
    const NamedTensors min_after = h.coord.supernet().sliceViews(SubNetConfig::minNet(space));
    SuperNet old(space, before.clone());
    const NamedTensors min_before = old.sliceViews(SubNetConfig::minNet(space));
    for (std::size_t i = 0; i < min_after.size(); ++i)
      if (min_after[i].tensor.scalar_type() == at::kFloat)
        CHECK(at::allclose(min_after[i].tensor, min_before[i].tensor + 2.0, 1e-4, 1e-4));
  }
}

namespace {
// Honest rounds from the first until `peer` is selected again (in a round after the first);
// every one completes with finite probe losses. Returns that round.
std::int64_t honestRoundsUntilSelected(Harness& h, const PeerId& peer) {
  std::int64_t round = 0;
  for (; round < 20; ++round) {
    const RoundMetrics m = h.coord.runRound();
    REQUIRE((m.outcome == RoundOutcome::kCompleted));
    CHECK(m.probe_loss_max > 0);
    CHECK(std::isfinite(m.probe_loss_min));
    if (round >= 1 && h.peersOf(round).count(peer)) break;
  }
  REQUIRE(round < 20);
  return round;
}

// The first round after `after` that selects `peer`: its number, its metrics and the
// SuperNet's tensors before it. Rounds without the peer must complete.
struct SelectedRound {
  std::int64_t round = 0;
  RoundMetrics metrics;
  NamedTensors before;
};
SelectedRound runUntilSelected(Harness& h, const PeerId& peer, std::int64_t after) {
  SelectedRound s;
  for (s.round = after + 1; s.round < 40; ++s.round) {
    s.before = h.coord.supernet().tensors().clone();
    s.metrics = h.coord.runRound();
    if (h.peersOf(s.round).count(peer)) break;
    REQUIRE((s.metrics.outcome == RoundOutcome::kCompleted));
  }
  REQUIRE(s.round < 40);
  return s;
}

// The quarantine_rounds (2) rounds after `rollback` select none of the barred clients; the
// round after them may select them again.
void checkQuarantine(Harness& h, std::int64_t rollback, const std::set<std::uint64_t>& barred,
                     const std::set<PeerId>& barred_peers) {
  for (int q = 1; q <= 2; ++q) {
    const RoundMetrics m = h.coord.runRound();
    CHECK(m.quarantined == 3);
    CHECK((m.outcome == RoundOutcome::kCompleted));
    for (const PeerId& p : h.peersOf(rollback + q)) CHECK(barred_peers.count(p) == 0);
    for (const TaskRecord& t : m.tasks) CHECK(barred.count(t.client_id) == 0);
  }
  const RoundMetrics free = h.coord.runRound();
  CHECK(free.quarantined == 0);
}

// A coordinator restored from `h`'s snapshot cut right after the rollback quarantines the
// same clients (a resumed run decides alike).
void checkQuarantineRestored(const CoordinatorOptions& o, Harness& h, std::int64_t rollback,
                             const std::set<std::uint64_t>& barred) {
  Harness h2(o);
  h2.registerClients(6);
  CoordinatorSnapshot snap = h.coord.snapshot();
  snap.history.resize(static_cast<std::size_t>(rollback + 1));
  snap.next_round = rollback + 1;
  h2.coord.restore(snap);
  const RoundMetrics resumed = h2.coord.runRound();
  CHECK(resumed.quarantined == 3);
  for (const TaskRecord& t : resumed.tasks) CHECK(barred.count(t.client_id) == 0);
}
}  // namespace

TEST_CASE("coordinator: a broken SuperNet is rolled back exactly and its clients quarantined") {
  const Dataset data = makeSyntheticDataset(200, 1, 8, 4, 9);
  CoordinatorOptions o = options(3);
  o.robust.bound.cap = 0;  // no bound: the probe alone must catch it
  o.robust.bound.multiple = 0;
  o.robust.quarantine_rounds = 2;
  Harness h(o);
  h.coord.setHealthProbe(tinyProbe(data));
  h.registerClients(6);
  const std::string poisoner = "peer-4";
  bool poison = false;
  h.behaviour = [&](std::int64_t, const PeerId& peer, const TrainTaskMsg& t) {
    if (poison && peer == poisoner)
      return std::optional(updateOf(t, [](const at::Tensor& x) { return x * 1e4f; }));
    return std::optional(honest(t));
  };
  const std::int64_t honest_until = honestRoundsUntilSelected(h, poisoner);
  // From now on the poisoner multiplies its slice by 1e4 (the bound is off); the next round
  // it is in must be rolled back.
  poison = true;
  const SelectedRound bad = runUntilSelected(h, poisoner, honest_until);
  CHECK((bad.metrics.outcome == RoundOutcome::kRolledBack));
  CHECK(bad.metrics.accepted == 3);
  CHECK(h.coord.supernet().tensors().bitEqual(bad.before));  // the exact prior tensors
  std::set<std::uint64_t> barred;
  for (const TaskRecord& t : bad.metrics.tasks) barred.insert(t.client_id);
  CHECK(barred.size() == 3);
  poison = false;
  checkQuarantine(h, bad.round, barred, h.peersOf(bad.round));
  // The quarantine and the bound survive a snapshot/restore.
  checkQuarantineRestored(o, h, bad.round, barred);
}

TEST_CASE("coordinator: non-finite probe outputs roll back; the probe never changes results") {
  const Dataset data = makeSyntheticDataset(200, 1, 8, 4, 9);
  CoordinatorOptions o = options(3);
  o.robust.bound.cap = 0;
  o.robust.bound.multiple = 0;
  SUBCASE("inf weights after aggregation") {
    Harness h(o);
    h.coord.setHealthProbe(tinyProbe(data));
    h.registerClients(3);
    h.behaviour = [](std::int64_t, const PeerId&, const TrainTaskMsg& t) {
      // Finite values whose weighted sum overflows float: the aggregate is infinite.
      return std::optional(
          updateOf(t, [](const at::Tensor& x) { return at::full_like(x, 3e38f); }));
    };
    const NamedTensors before = h.coord.supernet().tensors().clone();
    const RoundMetrics m = h.coord.runRound();
    CHECK((m.outcome == RoundOutcome::kRolledBack));
    CHECK(std::isinf(m.probe_loss_max));
    CHECK(h.coord.supernet().tensors().bitEqual(before));
  }
  SUBCASE("finite outputs, exploding loss: a head bias that always answers class 0") {
    Harness h(o);
    h.coord.setHealthProbe(tinyProbe(data));
    h.registerClients(3);
    h.behaviour = [](std::int64_t, const PeerId&, const TrainTaskMsg& t) {
      UpdateMsg u = honest(t);
      for (auto& it : u.tensors)
        if (it.name == "head.bias") {
          it.tensor.fill_(-2000.0f);
          it.tensor[0] = 2000.0f;
        }
      return std::optional(u);
    };
    const NamedTensors before = h.coord.supernet().tensors().clone();
    const RoundMetrics m = h.coord.runRound();
    CHECK((m.outcome == RoundOutcome::kRolledBack));
    CHECK(std::isfinite(m.probe_loss_max));
    CHECK(m.probe_loss_max > o.robust.probe_loss_cap);
    CHECK(h.coord.supernet().tensors().bitEqual(before));
  }
  SUBCASE("with and without a probe, honest rounds give the same SuperNet bit for bit") {
    auto run = [&](bool probe) {
      Harness h(options(3));
      if (probe) h.coord.setHealthProbe(tinyProbe(data));
      h.registerClients(4);
      for (int r = 0; r < 4; ++r) CHECK((h.coord.runRound().outcome == RoundOutcome::kCompleted));
      return h.coord.supernet().tensors().clone();
    };
    CHECK(run(true).bitEqual(run(false)));
  }
}

TEST_CASE("coordinator: failed rounds in a row back off in clock time, doubling to the cap") {
  CoordinatorOptions o = options(3);
  o.robust.backoff_after = 2;
  o.robust.backoff_base_s = 5;
  o.robust.backoff_max_s = 12;
  Harness h(o);
  h.registerClients(3);
  bool answer = false;
  h.behaviour = [&](std::int64_t, const PeerId&, const TrainTaskMsg& t) {
    return answer ? std::optional(honest(t)) : std::nullopt;
  };
  std::vector<RoundMetrics> rounds;
  for (int r = 0; r < 5; ++r) rounds.push_back(h.coord.runRound());
  answer = true;
  rounds.push_back(h.coord.runRound());  // completes after a last back-off
  rounds.push_back(h.coord.runRound());  // no back-off after a completed round
  const std::vector<double> waits = {0, 0, 5, 10, 12, 12, 0};
  for (std::size_t r = 0; r < rounds.size(); ++r) {
    CAPTURE(r);
    CHECK(rounds[r].round == static_cast<std::int64_t>(r));
    CHECK(rounds[r].backoff_s == waits[r]);
    CHECK((rounds[r].outcome == (r < 5 ? RoundOutcome::kAbandoned : RoundOutcome::kCompleted)));
    // The clock time between the end of a round and the start of the next is the wait.
    if (r > 0)
      CHECK(rounds[r].clock_start - rounds[r - 1].clock_end ==
            doctest::Approx(waits[r]).epsilon(1e-6));
  }
  CHECK(toString(RoundState::kBackingOff) == std::string("backing_off"));
}
