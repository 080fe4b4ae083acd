#include <doctest/doctest.h>

#include "sfn/data/dataset.h"
#include "sfn/core/error.h"
#include "sfn/train/local_trainer.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <torch/torch.h>

#include <chrono>
#include <numeric>

using namespace sfn;

namespace {
IndexList range(std::int64_t n) {
  IndexList v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
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

TEST_CASE("centralized sanity: the fmnist MaxNet reaches 80% test accuracy in one epoch" *
          doctest::test_suite("slow")) {
  setTorchThreads(2);
  const std::string dir = defaultFashionMnistDir();
  Dataset train = loadFashionMnist(dir, true);
  Dataset test = loadFashionMnist(dir, false);
  const DesignSpace s = DesignSpace::preset("fmnist");
  SuperNet net(s, 0);
  const auto c = SubNetConfig::maxNet(s);
  TrainOptions opts;
  opts.epochs = 1;
  opts.batch_size = 64;
  opts.lr = 0.05;
  opts.momentum = 0.9;
  opts.clip_grad_norm = 10.0;
  opts.seed = 1;
  const auto t0 = std::chrono::steady_clock::now();
  TrainResult r = trainLocal(s, c, net.extract(c), train, range(train.size()), opts);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  net.assign(c, r.slice);
  SubNetModule m = net.buildModule(c);
  const EvalResult e = evaluate(m, test, {});
  MESSAGE("fmnist MaxNet, 1 epoch: test accuracy " << e.accuracy << ", train loss " << r.mean_loss
                                                   << ", " << secs << " s");
  CHECK(e.samples == 10000);
  CHECK(e.accuracy >= 0.80);
}
