#include <doctest/doctest.h>

#include "sfn/data/dataset.h"
#include "sfn/core/error.h"
#include "sfn/train/evaluator.h"
#include "sfn/train/local_trainer.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <numeric>

using namespace sfn;

namespace {
IndexList range(std::int64_t n) {
  IndexList v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

IndexList range(std::int64_t from, std::int64_t to) {
  IndexList v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

DesignSpace trainableTiny() {
  DesignSpace s = DesignSpace::preset("tiny");
  s.bn_mode = BnMode::kTrainable;
  return s;
}

// The accuracy and loss of `config` with BN statistics re-estimated on `bn_batches`.
EvalResult calibratedEval(const SuperNet& net, const SubNetConfig& config,
                          const std::vector<at::Tensor>& bn_batches, const Dataset& data) {
  SubNetModule m = net.buildModule(config);
  m->reestimateBn(bn_batches);
  return evaluate(m, data, {}, 64);
}
}  // namespace

TEST_CASE("local training returns the SubNet's slice, loss and sample count") {
  setTorchThreads(1);
  const DesignSpace s = DesignSpace::preset("tiny");
  SuperNet net(s, 1);
  Dataset data = makeSyntheticDataset(512, 1, 8, 4, 9);
  Rng rng(1);
  const SubNetConfig c = SubNetConfig::random(s, rng);
  TrainOptions opts;
  opts.epochs = 3;
  opts.batch_size = 32;
  opts.lr = 0.05;
  opts.seed = 5;
  const IndexList idx = range(300);
  TrainResult r = trainLocal(s, c, net.extract(c), data, idx, opts);
  CHECK(r.samples == 300);
  CHECK(r.mean_loss > 0);
  CHECK(r.compute_seconds > 0);
  const auto spec = sliceSpec(s, c);
  REQUIRE(r.slice.size() == spec.size());
  for (std::size_t i = 0; i < spec.size(); ++i) {
    CHECK(r.slice[i].name == spec[i].name);
    CHECK(r.slice[i].tensor.sizes().vec() == spec[i].shape);
  }
  CHECK_FALSE(r.slice.bitEqual(net.extract(c)));

  // Training moves the SubNet towards lower loss on its data.
  SuperNet trained = net;
  trained.tensors() = net.tensors().clone();
  trained.assign(c, r.slice);
  SubNetModule before = net.buildModule(c);
  SubNetModule after = trained.buildModule(c);
  CHECK(evaluate(after, data, idx).mean_loss < evaluate(before, data, idx).mean_loss);
}

TEST_CASE("local training is deterministic for a seed with one thread") {
  setTorchThreads(1);
  const DesignSpace s = DesignSpace::preset("tiny");
  SuperNet net(s, 1);
  Dataset data = makeSyntheticDataset(256, 1, 8, 4, 2);
  TrainOptions opts;
  opts.seed = 77;
  opts.momentum = 0.9;
  opts.weight_decay = 5e-4;
  opts.clip_grad_norm = 1.0;
  const auto c = SubNetConfig::maxNet(s);
  TrainResult a = trainLocal(s, c, net.extract(c), data, range(256), opts);
  TrainResult b = trainLocal(s, c, net.extract(c), data, range(256), opts);
  CHECK(a.slice.bitEqual(b.slice));
  CHECK(a.mean_loss == b.mean_loss);
  opts.seed = 78;
  TrainResult d = trainLocal(s, c, net.extract(c), data, range(256), opts);
  CHECK_FALSE(a.slice.bitEqual(d.slice));
}

TEST_CASE("invalid training options are rejected with the key") {
  TrainOptions o;
  o.lr = -1;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("train.lr"), ConfigError);
  o = TrainOptions{};
  o.device = "toaster";
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("train.device"), ConfigError);
  o = TrainOptions{};
  o.batch_size = 0;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("train.batch_size"), ConfigError);
}

TEST_CASE("trainable BN: training and re-estimation on synthetic data") {
  setTorchThreads(1);
  DesignSpace s = DesignSpace::preset("tiny");
  s.bn_mode = BnMode::kTrainable;
  SuperNet net(s, 4);
  Dataset data = makeSyntheticDataset(256, 1, 8, 4, 3);
  const auto c = SubNetConfig::minNet(s);
  TrainOptions opts;
  opts.epochs = 2;
  TrainResult r = trainLocal(s, c, net.extract(c), data, range(256), opts);
  net.assign(c, r.slice);
  SubNetModule m = net.buildModule(c);
  m->reestimateBn(sampleBatches(data, range(256), 64, 4));
  CHECK(evaluate(m, data, range(256)).accuracy > 0.5);
}

// The recipe gate (issue 14): the main job's recipe (trainable BN, the authors' plain SGD at
// lr 0.1, clip 10, batch 64), trained centrally, must take the fmnist MaxNet past 90 % test
// accuracy within 5 epochs; the lr follows a per-epoch cosine, as the federated runs' lr
// follows one over rounds (train.lr_schedule). If this fails, no federated result of the
// net can be trusted: the net or the optimizer is broken, not the federation.
TEST_CASE("centralized sanity: the fmnist MaxNet reaches 90% test accuracy within 5 epochs" *
          doctest::test_suite("slow")) {
  setTorchThreads(2);
  const std::string dir = defaultFashionMnistDir();
  const Dataset train = loadFashionMnist(dir, true);
  const Dataset test = loadFashionMnist(dir, false);
  DesignSpace s = DesignSpace::preset("fmnist");
  s.bn_mode = BnMode::kTrainable;
  SuperNet net(s, 1);
  const auto c = SubNetConfig::maxNet(s);
  const Evaluator ev({test}, {train, range(2000)}, {500, "cpu", 4, 2});
  TrainOptions opts;
  opts.batch_size = 64;
  opts.momentum = 0.0;
  opts.clip_grad_norm = 10.0;
  constexpr int kEpochs = 5;
  double accuracy = 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int epoch = 0; epoch < kEpochs && accuracy < 0.90; ++epoch) {
    opts.lr = 0.1 * 0.5 * (1.0 + std::cos(3.14159265358979 * epoch / kEpochs));
    opts.seed = static_cast<std::uint64_t>(epoch) + 1;
    const TrainResult r = trainLocal(s, c, net.extract(c), train, range(train.size()), opts);
    net.assign(c, r.slice);
    const EvalRecord e = ev.evaluate(net, {"max", c});
    accuracy = e.accuracy;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("fmnist MaxNet, epoch " << epoch + 1 << " (lr " << opts.lr << "): test accuracy "
                                    << e.accuracy << ", train loss " << r.mean_loss << ", " << secs
                                    << " s");
    CHECK(e.samples == 10000);
  }
  CHECK(accuracy >= 0.90);
}

TEST_CASE("evaluator with trainable BN: scores the test set, calibrates on training images") {
  setTorchThreads(1);
  const DesignSpace s = trainableTiny();
  const SuperNet net(s, 4);
  const Dataset train = makeSyntheticDataset(256, 1, 8, 4, 3);
  Dataset test = makeSyntheticDataset(64, 1, 8, 4, 8);
  // Shifted test images: BN statistics taken from them would differ from the training ones.
  test.images = test.images + 3.0;
  const IndexList calib = range(100, 228);  // beyond the test set's 64 samples
  const Evaluator ev({test}, {train, calib}, {64, "cpu", 2});
  CHECK(ev.samples() == 64);

  const std::vector<at::Tensor> batches = ev.bnBatches();
  REQUIRE(batches.size() == 2);
  CHECK(torch::equal(torch::cat(batches), train.images.slice(0, 100, 228)));

  const SubNetConfig c = SubNetConfig::maxNet(s);
  const EvalRecord r = ev.evaluate(net, {"max", c});
  const EvalResult from_train = calibratedEval(net, c, batches, test);
  const EvalResult from_test = calibratedEval(net, c, sampleBatches(test, {}, 64, 2), test);
  CHECK(r.samples == 64);
  CHECK(r.accuracy == from_train.accuracy);
  CHECK(r.loss == from_train.mean_loss);
  CHECK(r.loss != from_test.mean_loss);
}

TEST_CASE("evaluator: the BN calibration set is checked against the scored set") {
  const Dataset train = makeSyntheticDataset(100, 1, 8, 4, 3);
  const Dataset test = makeSyntheticDataset(20, 1, 8, 4, 8);
  // The original bug: the training split's indices over the test tensor.
  CHECK_THROWS_WITH_AS(Evaluator({test}, {test, range(50)}), doctest::Contains("out of range"),
                       Error);
  CHECK_THROWS_WITH_AS(Evaluator({train, range(120)}, {test}), doctest::Contains("out of range"),
                       Error);
  // Statistics from the images being scored, in whole or in part.
  CHECK_THROWS_WITH_AS(Evaluator({test}, {test}), doctest::Contains("training data"), Error);
  CHECK_THROWS_WITH_AS(Evaluator({train, range(10)}, {train}), doctest::Contains("training data"),
                       Error);
  CHECK_THROWS_WITH_AS(Evaluator({train, range(10)}, {train, range(9, 50)}),
                       doctest::Contains("sample 9"), Error);
  Dataset alias = train;  // a copy sharing the images is the same data set
  CHECK_THROWS_AS(Evaluator({train, range(10)}, {alias, range(5, 50)}), Error);
  // Disjoint samples of one set (validation vs training split), or another set: fine.
  CHECK(Evaluator({train, range(10)}, {train, range(10, 100)}).samples() == 10);
  CHECK(Evaluator({test}, {train}).samples() == 20);
  CHECK_THROWS_AS(Evaluator({test}, {train}, {0, "cpu", 10}), ConfigError);
  CHECK_THROWS_AS(Evaluator({test}, {train}, {64, "cpu", 0}), ConfigError);

  // Trainable BN needs a calibration set; frozen BN does not.
  const Evaluator no_bn(SampleSet{test});
  const DesignSpace trainable = trainableTiny();
  CHECK_THROWS_WITH_AS(
      no_bn.evaluate(SuperNet(trainable, 1), {"max", SubNetConfig::maxNet(trainable)}),
      doctest::Contains("no BN calibration set"), Error);
  const DesignSpace frozen = DesignSpace::preset("tiny");
  CHECK(no_bn.evaluate(SuperNet(frozen, 1), {"max", SubNetConfig::maxNet(frozen)}).samples == 20);
}

TEST_CASE("evaluator with frozen BN: results do not depend on the calibration set") {
  setTorchThreads(1);
  const DesignSpace s = DesignSpace::preset("tiny");
  const SuperNet net(s, 6);
  const Dataset train = makeSyntheticDataset(200, 1, 8, 4, 3);
  const Dataset test = makeSyntheticDataset(50, 1, 8, 4, 8);
  const SubNetConfig c = SubNetConfig::minNet(s);
  SubNetModule m = net.buildModule(c);
  const EvalResult plain = evaluate(m, test, {}, 32);
  for (const Evaluator& ev : {Evaluator({test}, {32}), Evaluator({test}, {train}, {32}),
                              Evaluator({test}, {train, range(150, 200)}, {32})}) {
    const EvalRecord r = ev.evaluate(net, {"min", c});
    CHECK(r.accuracy == plain.accuracy);
    CHECK(r.loss == plain.mean_loss);
  }
}

TEST_CASE("evaluator for a run's data: validation and test sets, BN from the training split") {
  setTorchThreads(1);
  DataOptions o;
  o.dataset = "synthetic";
  o.synthetic_train = 300;
  o.synthetic_test = 60;
  o.synthetic_image_size = 8;
  o.synthetic_classes = 4;
  o.val_fraction = 0.2;
  const DataBundle data = loadDataBundle(o);
  const DesignSpace s = trainableTiny();
  const SuperNet net(s, 2);
  const EvalTarget max{"max", SubNetConfig::maxNet(s)};
  const EvalOptions eo{100, "cpu", 2};

  const Evaluator test = Evaluator::test(data, eo);
  CHECK(test.samples() == 60);
  const std::vector<at::Tensor> bn = test.bnBatches();
  REQUIRE(bn.size() == 2);
  CHECK(torch::equal(bn[0], sampleBatches(data.train, data.split.train, 100, 1)[0]));
  CHECK(test.evaluate(net, max).samples == 60);

  const Evaluator val = Evaluator::validation(data, eo);
  CHECK(val.samples() == 60);
  CHECK(val.evaluate(net, max).samples == 60);
}
