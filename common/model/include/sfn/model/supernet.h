// The SuperNet: the weight-shared state every SubNet is a prefix slice of.
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_module.h"
#include "sfn/model/subnet_shapes.h"

#include <cstdint>

namespace sfn {

class SuperNet {
 public:
  // Initialized like a freshly constructed MaxNet module seeded with `seed`
  // (Kaiming-normal convs, default linear init, BN gamma 1 beta 0).
  SuperNet(DesignSpace space, std::uint64_t seed);
  // Adopts existing tensors (e.g. from a checkpoint); throws ShapeError unless they match
  // superNetSpec(space) in names, shapes and order.
  SuperNet(DesignSpace space, NamedTensors tensors);

  const DesignSpace& space() const { return space_; }
  NamedTensors& tensors() { return tensors_; }
  const NamedTensors& tensors() const { return tensors_; }

  // Views (narrow, no copy) of the SubNet's prefix boxes, in sliceSpec order. Writing
  // into them writes into the SuperNet.
  NamedTensors sliceViews(const SubNetConfig& config) const;
  // Contiguous copies of the slice: what is sent to a client.
  NamedTensors extract(const SubNetConfig& config) const;
  // A standalone module carrying the SubNet's weights (copies).
  SubNetModule buildModule(const SubNetConfig& config) const;
  // Writes a SubNet's slice back into its boxes (overwrites; not an aggregation).
  void assign(const SubNetConfig& config, const NamedTensors& slice);

  std::int64_t nbytes() const { return tensors_.nbytes(); }

 private:
  DesignSpace space_;
  NamedTensors tensors_;
};

// Views of the prefix box `shape` of `full` (narrow along every dimension).
at::Tensor prefixBox(const at::Tensor& full, const std::vector<std::int64_t>& shape);

}  // namespace sfn
