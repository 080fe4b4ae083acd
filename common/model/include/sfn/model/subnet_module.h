// A standalone LibTorch module for one SubNet, with exactly the SubNet's shapes.
//
// Its parameter and buffer names (named_parameters()/named_buffers()) are the tensor names of
// sliceSpec(): stem.conv.weight, stages.<s>.<b>.conv1.weight, ..., head.weight, head.bias.
// Building it needs no SuperNet; load weights with loadState().
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_config.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace sfn {

// conv3x3/conv1x1 + optional BN (absent when BN is frozen to identity).
class ConvBnImpl : public torch::nn::Module {
 public:
  ConvBnImpl(int in, int out, int kernel, int stride, bool with_bn);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBn);

class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int in, int mid, int out, int stride, bool with_bn);
  torch::Tensor forward(const torch::Tensor& x);
  ConvBn conv1{nullptr};
  ConvBn conv2{nullptr};
  ConvBn shortcut{nullptr};  // null when identity
  int stride = 1;
};
TORCH_MODULE(ResBlock);

class SubNetModuleImpl : public torch::nn::Module {
 public:
  SubNetModuleImpl(const DesignSpace& space, const SubNetConfig& config);
  torch::Tensor forward(torch::Tensor x);  // [N,C,H,W] -> logits [N, classes]

  // Deterministic initialization from `seed` (Kaiming-normal convs, fan_out, as OFA; BN
  // gamma 1 beta 0). Construction alone leaves torch's default init.
  void initialize(std::uint64_t seed);

  // Parameters and buffers in canonical (sliceSpec) order; tensors are the module's own
  // (no copy), so writing into them changes the module.
  NamedTensors state();
  // Copies `src` (names and shapes must equal sliceSpec; throws ShapeError) into the module.
  void loadState(const NamedTensors& src);
  // Resets BN running statistics and re-estimates them as a cumulative average over
  // `batches` forward passes in train mode (no-op when BN is frozen).
  void reestimateBn(const std::vector<torch::Tensor>& batches);

  const DesignSpace& space() const { return space_; }
  const SubNetConfig& config() const { return config_; }

 private:
  DesignSpace space_;
  SubNetConfig config_;
  ConvBn stem{nullptr};
  torch::nn::ModuleList stages{nullptr};  // ModuleList of ModuleList of ResBlock
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(SubNetModule);

}  // namespace sfn
