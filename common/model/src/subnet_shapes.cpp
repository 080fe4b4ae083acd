#include "sfn/model/subnet_shapes.h"

#include <string>

namespace sfn {

std::int64_t TensorSpec::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

namespace {

// Walks the architecture of one SubNet once; sliceSpec and computeCost both use it so the
// two can never disagree about which layers exist.
struct Walker {
  const DesignSpace& space;
  const SubNetConfig& config;
  std::vector<TensorSpec>* spec = nullptr;
  Cost cost;

  void convBn(const std::string& prefix, int in, int out, int kernel, int out_hw) {
    if (spec) spec->push_back({prefix + ".conv.weight", {out, in, kernel, kernel}, true});
    cost.macs += static_cast<std::int64_t>(out_hw) * out_hw * kernel * kernel * in * out;
    cost.params += static_cast<std::int64_t>(out) * in * kernel * kernel;
    if (space.bn_mode == BnMode::kTrainable) {
      if (spec) {
        spec->push_back({prefix + ".bn.weight", {out}, true});
        spec->push_back({prefix + ".bn.bias", {out}, true});
        spec->push_back({prefix + ".bn.running_mean", {out}, true});
        spec->push_back({prefix + ".bn.running_var", {out}, true});
        spec->push_back({prefix + ".bn.num_batches_tracked", {}, false});
      }
      cost.params += 2 * out;
    }
  }

  void run() {
    int hw = space.image_size;
    convBn("stem", space.in_channels, space.stem_width, 3, hw);
    int in = space.stem_width;
    for (int s = 0; s < space.numStages(); ++s) {
      const int out = space.widths[s];
      for (int b = 0; b <= config.depth[s]; ++b) {
        const int stride = b == 0 ? space.strides[s] : 1;
        const int out_hw = (hw + stride - 1) / stride;  // conv3x3 pad 1 and ceil avg-pool agree
        const int block = s * space.blocks_per_stage + b;
        const int mid = space.midChannels(out, config.expandRatio(space, block));
        const std::string p = "stages." + std::to_string(s) + "." + std::to_string(b);
        convBn(p + ".conv1", in, mid, 3, out_hw);
        convBn(p + ".conv2", mid, out, 3, out_hw);
        if (stride != 1 || in != out) convBn(p + ".shortcut", in, out, 1, out_hw);
        in = out;
        hw = out_hw;
      }
    }
    if (spec) {
      spec->push_back({"head.weight", {space.num_classes, in}, true});
      spec->push_back({"head.bias", {space.num_classes}, true});
    }
    cost.macs += static_cast<std::int64_t>(in) * space.num_classes;
    cost.params += static_cast<std::int64_t>(in) * space.num_classes + space.num_classes;
  }
};

}  // namespace

std::vector<TensorSpec> sliceSpec(const DesignSpace& space, const SubNetConfig& config) {
  config.validate(space);
  std::vector<TensorSpec> spec;
  Walker w{space, config, &spec, {}};
  w.run();
  return spec;
}

std::vector<TensorSpec> superNetSpec(const DesignSpace& space) {
  return sliceSpec(space, SubNetConfig::maxNet(space));
}

Cost computeCost(const DesignSpace& space, const SubNetConfig& config) {
  config.validate(space);
  Walker w{space, config, nullptr, {}};
  w.run();
  return w.cost;
}

}  // namespace sfn
