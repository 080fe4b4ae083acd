#include <doctest/doctest.h>

#include "sfn/core/error.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <torch/torch.h>

#include <set>

using namespace sfn;

namespace {

// 1 stage of 2 blocks on 1x4x4 inputs: small enough to count MACs by hand.
DesignSpace handSpace(BnMode bn = BnMode::kFrozen) {
  DesignSpace s;
  s.name = "hand";
  s.in_channels = 1;
  s.image_size = 4;
  s.num_classes = 2;
  s.stem_width = 2;
  s.widths = {4};
  s.strides = {1};
  s.blocks_per_stage = 2;
  s.depth_choices = {0, 1};
  s.expand_choices = {0.5, 1.0};
  s.divisor = 1;
  s.bn_mode = bn;
  s.norm_mean = {0.0};
  s.norm_std = {1.0};
  s.validate();
  return s;
}

std::int64_t moduleParams(SubNetModule& m) {
  std::int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST_CASE("makeDivisible follows OFA's rule") {
  CHECK(makeDivisible(25.6, 8) == 24);
  CHECK(makeDivisible(3.0, 8) == 8);
  CHECK(makeDivisible(512 * 0.25, 8) == 128);
  CHECK(makeDivisible(10.0, 8) == 16);  // 8 < 0.9 * 10 = 9, so one divisor is added
  CHECK(makeDivisible(2.0, 1) == 2);
}

TEST_CASE("MACs and params by hand for tiny configs") {
  const DesignSpace s = handSpace();
  // MinNet: stem 4*4*9*1*2 = 288; block0 (in 2, mid 2, out 4): conv1 16*9*2*2 = 576,
  // conv2 16*9*2*4 = 1152, shortcut 16*2*4 = 128; head 4*2 = 8.
  Cost min = computeCost(s, SubNetConfig::minNet(s));
  CHECK(min.macs == 288 + 576 + 1152 + 128 + 8);
  CHECK(min.params == 18 + 36 + 72 + 8 + (8 + 2));
  // MaxNet: block0 mid 4: 1152 + 2304 + 128; block1 (4 -> 4 -> 4): 2304 + 2304.
  Cost max = computeCost(s, SubNetConfig::maxNet(s));
  CHECK(max.macs == 288 + 1152 + 2304 + 128 + 2304 + 2304 + 8);
  CHECK(max.params == 18 + 72 + 144 + 8 + 144 + 144 + 10);

  // Trainable BN adds 2 affine parameters per conv output channel, and no MACs.
  const DesignSpace sb = handSpace(BnMode::kTrainable);
  Cost minb = computeCost(sb, SubNetConfig::minNet(sb));
  CHECK(minb.macs == min.macs);
  CHECK(minb.params == min.params + 2 * (2 + 2 + 4 + 4));
}

TEST_CASE("stride halves spatial MACs with ceil rounding") {
  DesignSpace s = handSpace();
  s.image_size = 5;
  s.strides = {2};  // 5x5 -> 3x3 in the stage
  const Cost c = computeCost(s, SubNetConfig::minNet(s));
  CHECK(c.macs == 25 * 9 * 2 + 9 * 9 * 2 * 2 + 9 * 9 * 2 * 4 + 9 * 2 * 4 + 8);
}

TEST_CASE("analytic params equal the extracted module's, for random SubNets") {
  for (const char* preset : {"tiny", "fmnist"}) {
    for (BnMode bn : {BnMode::kFrozen, BnMode::kTrainable}) {
      DesignSpace s = DesignSpace::preset(preset);
      s.bn_mode = bn;
      SuperNet net(s, 1);
      Rng rng(7);
      for (int i = 0; i < 6; ++i) {
        SubNetConfig c = i == 0 ? SubNetConfig::minNet(s) : SubNetConfig::random(s, rng);
        SubNetModule m = net.buildModule(c);
        CHECK(moduleParams(m) == computeCost(s, c).params);
        // Every tensor of the module is exactly the spec's shape, in the spec's order.
        const auto spec = sliceSpec(s, c);
        NamedTensors st = m->state();
        REQUIRE(st.size() == spec.size());
        for (std::size_t k = 0; k < spec.size(); ++k) {
          CHECK(st[k].name == spec[k].name);
          CHECK(st[k].tensor.sizes().vec() == spec[k].shape);
        }
      }
    }
  }
}

TEST_CASE("presets: documented sizes and at least 5x MACs from MinNet to MaxNet") {
  const DesignSpace f = DesignSpace::preset("fmnist");
  const Cost fmax = computeCost(f, SubNetConfig::maxNet(f));
  const Cost fmin = computeCost(f, SubNetConfig::minNet(f));
  MESSAGE("fmnist MaxNet MACs " << fmax.macs << " params " << fmax.params << "; MinNet MACs "
                                << fmin.macs << " params " << fmin.params);
  CHECK(fmax.macs >= 5 * fmin.macs);
  const DesignSpace p = DesignSpace::preset("paper-cifar10");
  CHECK(p.widths == std::vector<int>{256, 512, 1024, 2048});
  CHECK(p.stem_width == 64);
  const Cost pmax = computeCost(p, SubNetConfig::maxNet(p));
  MESSAGE("paper-cifar10 MaxNet MACs " << pmax.macs << " params " << pmax.params);
  CHECK(pmax.macs > 5 * computeCost(p, SubNetConfig::minNet(p)).macs);
  CHECK_THROWS_AS(DesignSpace::preset("nope"), ConfigError);
}

TEST_CASE("SubNet text form round-trips and invalid configs are rejected") {
  const DesignSpace s = DesignSpace::preset("fmnist");
  Rng rng(3);
  for (int i = 0; i < 200; ++i) {
    SubNetConfig c = SubNetConfig::random(s, rng).normalized(s);
    const std::string text = c.toString(s);
    CHECK(text.find(',') == std::string::npos);
    CHECK(SubNetConfig::parse(text, s) == c);
  }
  CHECK(SubNetConfig::maxNet(s).toString(s) ==
        "d=2-2-2-2;e=0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25");
  CHECK(SubNetConfig::parse(SubNetConfig::minNet(s).toString(s), s).isMinNet(s));

  auto rejects = [&](const std::string& text, const std::string& field) {
    try {
      (void)SubNetConfig::parse(text, s);
      FAIL("accepted invalid config " << text);
    } catch (const ConfigError& e) {
      CHECK_MESSAGE(std::string(e.what()).find(field) != std::string::npos, e.what());
    }
  };
  rejects("d=2-2-2;e=0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25", "stages");
  rejects("d=2-2-2-3;e=0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25", "d[3]");
  rejects("d=2-2-2-2;e=0.25-0.25-0.25-0.25-0.25-0.25-0.3-0.25-0.25-0.25-0.25-0.25", "e[6]");
  rejects("d=2-2-x-2;e=0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25-0.25", "d[2]");
  rejects("d=2-2-2-2;e=0.25-0.25", "blocks");
  rejects("garbage", "expected");
}

TEST_CASE("inactive expand genes do not change the network") {
  const DesignSpace s = DesignSpace::preset("tiny");
  SubNetConfig a = SubNetConfig::minNet(s);
  SubNetConfig b = a;
  b.expand[1] = 4;  // block 1 of stage 0 is inactive at depth 0
  CHECK(a.sameNet(b, s));
  CHECK(a.toString(s) == b.toString(s));
  CHECK(computeCost(s, a).macs == computeCost(s, b).macs);
}

TEST_CASE("design space count matches the paper: (5 + 25 + 125)^4") {
  const DesignSpace s = DesignSpace::preset("paper-cifar10");
  // Distinct networks per stage: depth 0 -> 5, depth 1 -> 25, depth 2 -> 125 expand combos.
  double per_stage = 0;
  for (int d : s.depth_choices) per_stage += std::pow(s.expand_choices.size(), d + 1);
  CHECK(std::pow(per_stage, s.numStages()) == doctest::Approx(5.77e8).epsilon(0.01));
}

TEST_CASE("slicing: views alias the SuperNet, extraction copies exact prefix boxes") {
  const DesignSpace s = DesignSpace::preset("tiny");
  SuperNet net(s, 11);
  Rng rng(5);
  const SubNetConfig c = SubNetConfig::random(s, rng);
  NamedTensors views = net.sliceViews(c);
  NamedTensors copy = net.extract(c);
  CHECK(views.bitEqual(copy));
  for (const auto& v : views) {
    const at::Tensor& full = net.tensors().at(v.name);
    CHECK(v.tensor.data_ptr() == full.data_ptr());  // prefix boxes start at element 0
  }
  // Writing through a copy does not touch the SuperNet; assign() does, in the box only.
  const NamedTensors before = net.tensors().clone();
  for (auto& t : copy) t.tensor.fill_(3.0);
  CHECK(net.tensors().bitEqual(before));
  net.assign(c, copy);
  for (std::size_t i = 0; i < net.tensors().size(); ++i) {
    const auto& name = net.tensors()[i].name;
    const at::Tensor& after = net.tensors()[i].tensor;
    const at::Tensor* box = copy.find(name);
    if (box == nullptr) {
      CHECK(torch::equal(after, before[i].tensor));
      continue;
    }
    at::Tensor in_box = prefixBox(after, box->sizes().vec());
    CHECK(torch::all(in_box == 3.0).item<bool>());
    // Outside the box nothing changed: restoring the box gives back the old tensor.
    at::Tensor restored = after.clone();
    prefixBox(restored, box->sizes().vec()).copy_(prefixBox(before[i].tensor, box->sizes().vec()));
    CHECK(torch::equal(restored, before[i].tensor));
  }
}

TEST_CASE("SubNet module output equals the MaxNet computation restricted to the slice") {
  // A SubNet at MaxNet config built from the SuperNet computes the same function as the
  // SuperNet's own MaxNet module.
  const DesignSpace s = DesignSpace::preset("tiny");
  SuperNet net(s, 2);
  SubNetModule a = net.buildModule(SubNetConfig::maxNet(s));
  SubNetModule b(s, SubNetConfig::maxNet(s));
  b->loadState(net.tensors());
  auto x = torch::randn({3, 1, 8, 8});
  CHECK(torch::allclose(a->forward(x), b->forward(x)));
  CHECK(a->forward(x).sizes() == torch::IntArrayRef({3, 4}));
}

TEST_CASE("SuperNet init is deterministic per seed and independent of torch's global RNG") {
  const DesignSpace s = DesignSpace::preset("tiny");
  torch::manual_seed(1);
  SuperNet a(s, 42);
  torch::manual_seed(999);
  SuperNet b(s, 42);
  SuperNet c(s, 43);
  CHECK(a.tensors().bitEqual(b.tensors()));
  CHECK_FALSE(a.tensors().bitEqual(c.tensors()));
  CHECK_THROWS_AS(SuperNet(s, NamedTensors{}), ShapeError);
}

TEST_CASE("trainable BN: statistics are re-estimated per SubNet") {
  DesignSpace s = DesignSpace::preset("tiny");
  s.bn_mode = BnMode::kTrainable;
  SuperNet net(s, 3);
  SubNetModule m = net.buildModule(SubNetConfig::minNet(s));
  std::vector<at::Tensor> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(torch::randn({16, 1, 8, 8}) * 2.0 + 1.0);
  m->reestimateBn(batches);
  // The stem's BN mean is the exact mean of the stem conv's output over all batches.
  auto all = torch::cat(batches);
  auto conv_out = torch::conv2d(all, net.tensors().at("stem.conv.weight"), {}, 1, 1);
  auto expected = conv_out.mean({0, 2, 3});
  auto got = m->state().at("stem.bn.running_mean");
  CHECK(torch::allclose(got, expected, 1e-4, 1e-4));
}
