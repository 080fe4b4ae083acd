// Analytic shapes and costs of a SubNet: the slice spec and MACs/params.
//
// The slice of a SubNet is, for every tensor it has, the PREFIX box of the SuperNet tensor
// with the same name (conv [:out, :in, :, :], BN [:ch], linear [:, :in]). Tensor names are
// the names of the standalone module's parameters and buffers (stem.conv.weight,
// stages.1.2.conv1.weight, head.weight, ...), so a SubNet tensor maps to the SuperNet
// tensor of the same name, and its box is simply its shape.
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/model/subnet_config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  // false for integer bookkeeping buffers (num_batches_tracked): never averaged.
  bool averaged = true;
  std::int64_t numel() const;
};

// In canonical order (the order of the module's named_parameters() then buffers, per layer).
std::vector<TensorSpec> sliceSpec(const DesignSpace& space, const SubNetConfig& config);
// The full SuperNet's spec: sliceSpec(space, maxNet).
std::vector<TensorSpec> superNetSpec(const DesignSpace& space);

struct Cost {
  std::int64_t macs = 0;  // conv + linear multiply-accumulates for one image (OFA's count)
  std::int64_t params =
      0;  // trainable parameters (conv, linear incl. bias, BN affine if trainable)
};
Cost computeCost(const DesignSpace& space, const SubNetConfig& config);

}  // namespace sfn
