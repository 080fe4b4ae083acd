#include "sfn/model/subnet_module.h"

#include "sfn/core/error.h"
#include "sfn/model/subnet_shapes.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <unordered_map>

namespace sfn {

ConvBnImpl::ConvBnImpl(int in, int out, int kernel, int stride, bool with_bn) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                       .stride(kernel == 1 ? 1 : stride)
                                                       .padding(kernel / 2)
                                                       .bias(false)));
  if (with_bn) bn = register_module("bn", torch::nn::BatchNorm2d(out));
}

torch::Tensor ConvBnImpl::forward(const torch::Tensor& x) {
  auto y = conv->forward(x);
  return bn ? bn->forward(y) : y;
}

ResBlockImpl::ResBlockImpl(int in, int mid, int out, int stride_, bool with_bn) : stride(stride_) {
  conv1 = register_module("conv1", ConvBn(in, mid, 3, stride, with_bn));
  conv2 = register_module("conv2", ConvBn(mid, out, 3, 1, with_bn));
  // The 1x1 shortcut conv runs after an average pool that does the striding, as in OFA.
  if (stride != 1 || in != out)
    shortcut = register_module("shortcut", ConvBn(in, out, 1, 1, with_bn));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(conv1->forward(x));
  // The authors' NewResidualBlock (and DESIGN.md section 1) applies ReLU after conv2 + BN,
  // before the shortcut is added.
  y = torch::relu(conv2->forward(y));
  torch::Tensor sc = x;
  if (shortcut) {
    if (stride != 1)
      sc = torch::avg_pool2d(sc, {stride, stride}, {stride, stride}, {0, 0}, /*ceil_mode=*/true);
    sc = shortcut->forward(sc);
  }
  return torch::relu(y + sc);
}

SubNetModuleImpl::SubNetModuleImpl(const DesignSpace& space, const SubNetConfig& config)
    : space_(space), config_(config.normalized(space)) {
  config_.validate(space_);
  const bool bn = space_.bn_mode == BnMode::kTrainable;
  stem = register_module("stem", ConvBn(space_.in_channels, space_.stem_width, 3, 1, bn));
  stages = register_module("stages", torch::nn::ModuleList());
  int in = space_.stem_width;
  int total_blocks = 0;
  for (int s = 0; s < space_.numStages(); ++s) total_blocks += 1 + config_.depth[s];
  for (int s = 0; s < space_.numStages(); ++s) {
    torch::nn::ModuleList blocks;
    const int out = space_.widths[s];
    for (int b = 0; b <= config_.depth[s]; ++b) {
      const int block = s * space_.blocks_per_stage + b;
      const int mid = space_.midChannels(out, config_.expandRatio(space_, block));
      blocks->push_back(ResBlock(in, mid, out, b == 0 ? space_.strides[s] : 1, bn));
      in = out;
    }
    stages->push_back(blocks);
  }
  head = register_module("head", torch::nn::Linear(in, space_.num_classes));
}

void SubNetModuleImpl::initialize(std::uint64_t seed) {
  // An explicit generator: initialization must neither depend on nor disturb torch's global
  // RNG, which other clients in the same process may be using.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // OFA's init: Kaiming normal (fan_out) for convs. Without BN a deep residual stack's
  // activations grow with depth, so (Fixup-style) the last conv of each residual branch is
  // scaled down by 1/sqrt(#blocks of the MaxNet) in frozen-BN mode.
  const bool bn = space_.bn_mode == BnMode::kTrainable;
  const double branch_scale =
      bn ? 1.0 : 1.0 / std::sqrt(static_cast<double>(space_.numStages() * space_.blocks_per_stage));
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    const auto& name = p.key();
    auto t = p.value();
    auto cpu = torch::empty(t.sizes(), torch::kFloat32);
    if (t.dim() == 4) {
      const double fan_out = static_cast<double>(t.size(0)) * t.size(2) * t.size(3);
      double std_dev = std::sqrt(2.0 / fan_out);
      if (name.find(".conv2.conv.weight") != std::string::npos) std_dev *= branch_scale;
      cpu.normal_(0.0, std_dev, gen);
    } else if (name == "head.weight" || name == "head.bias") {
      const double bound = 1.0 / std::sqrt(static_cast<double>(space_.widths.back()));
      cpu.uniform_(-bound, bound, gen);
    } else if (name.ends_with(".bn.weight")) {
      cpu.fill_(1.0);
    } else {
      cpu.zero_();
    }
    t.copy_(cpu);
  }
}

torch::Tensor SubNetModuleImpl::forward(torch::Tensor x) {
  x = torch::relu(stem->forward(x));
  for (const auto& stage : *stages)
    for (const auto& block : *stage->as<torch::nn::ModuleList>())
      x = block->as<ResBlock>()->forward(x);
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  return head->forward(x);
}

NamedTensors SubNetModuleImpl::state() {
  std::unordered_map<std::string, torch::Tensor> all;
  for (auto& p : named_parameters()) all.emplace(p.key(), p.value());
  for (auto& b : named_buffers()) all.emplace(b.key(), b.value());
  NamedTensors out;
  for (const auto& spec : sliceSpec(space_, config_)) {
    auto it = all.find(spec.name);
    SFN_ENFORCE(it != all.end(), ShapeError, "module has no tensor '", spec.name, "'");
    SFN_ENFORCE(it->second.sizes().vec() == spec.shape, ShapeError, "module tensor '", spec.name,
                "' has shape ", it->second.sizes(), ", spec says ", c10::IntArrayRef(spec.shape));
    out.add(spec.name, it->second);
  }
  SFN_ENFORCE(out.size() == all.size(), ShapeError, "module has ", all.size(),
              " tensors, its slice spec ", out.size());
  return out;
}

void SubNetModuleImpl::loadState(const NamedTensors& src) {
  NamedTensors dst = state();
  SFN_ENFORCE(src.size() == dst.size(), ShapeError, "loadState: got ", src.size(),
              " tensors, SubNet ", config_.toString(space_), " has ", dst.size());
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < dst.size(); ++i) {
    SFN_ENFORCE(src[i].name == dst[i].name, ShapeError, "loadState: tensor ", i, " is '",
                src[i].name, "', expected '", dst[i].name, "'");
    SFN_ENFORCE(src[i].tensor.sizes() == dst[i].tensor.sizes(), ShapeError, "loadState: '",
                dst[i].name, "' has shape ", src[i].tensor.sizes(), ", expected ",
                dst[i].tensor.sizes());
    dst[i].tensor.copy_(src[i].tensor);
  }
}

void SubNetModuleImpl::reestimateBn(const std::vector<torch::Tensor>& batches) {
  if (space_.bn_mode != BnMode::kTrainable || batches.empty()) return;
  std::vector<torch::nn::BatchNorm2dImpl*> bns;
  for (auto& m : modules(/*include_self=*/false))
    if (auto* b = m->as<torch::nn::BatchNorm2dImpl>()) bns.push_back(b);
  // Cumulative averaging (momentum = None) gives the exact mean over the batches.
  std::vector<c10::optional<double>> saved;
  for (auto* b : bns) {
    saved.push_back(b->options.momentum());
    b->options.momentum(c10::nullopt);
    b->reset_running_stats();
  }
  const bool was_training = is_training();
  train(true);
  {
    torch::NoGradGuard no_grad;
    const auto device = stem->conv->weight.device();
    for (const auto& x : batches) forward(x.to(device));
  }
  train(was_training);
  for (std::size_t i = 0; i < bns.size(); ++i) bns[i]->options.momentum(saved[i]);
}

}  // namespace sfn
