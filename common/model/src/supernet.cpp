#include "sfn/model/supernet.h"

#include "sfn/core/error.h"

#include <torch/torch.h>

namespace sfn {

at::Tensor prefixBox(const at::Tensor& full, const std::vector<std::int64_t>& shape) {
  SFN_ENFORCE(static_cast<std::size_t>(full.dim()) == shape.size(), ShapeError, "prefix box rank ",
              shape.size(), " does not match tensor rank ", full.dim());
  at::Tensor v = full;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    SFN_ENFORCE(shape[d] >= 0 && shape[d] <= full.size(static_cast<int64_t>(d)), ShapeError,
                "prefix box ", c10::IntArrayRef(shape), " exceeds tensor shape ", full.sizes());
    if (shape[d] != full.size(static_cast<int64_t>(d)))
      v = v.narrow(static_cast<int64_t>(d), 0, shape[d]);
  }
  return v;
}

SuperNet::SuperNet(DesignSpace space, std::uint64_t seed) : space_(std::move(space)) {
  space_.validate();
  SubNetModule maxnet(space_, SubNetConfig::maxNet(space_));
  maxnet->initialize(seed);
  tensors_ = maxnet->state().clone();
}

SuperNet::SuperNet(DesignSpace space, NamedTensors tensors)
    : space_(std::move(space)), tensors_(std::move(tensors)) {
  space_.validate();
  const auto spec = superNetSpec(space_);
  SFN_ENFORCE(spec.size() == tensors_.size(), ShapeError, "SuperNet '", space_.name, "' needs ",
              spec.size(), " tensors, got ", tensors_.size());
  for (std::size_t i = 0; i < spec.size(); ++i) {
    SFN_ENFORCE(tensors_[i].name == spec[i].name, ShapeError, "SuperNet tensor ", i, " is '",
                tensors_[i].name, "', expected '", spec[i].name, "'");
    SFN_ENFORCE(tensors_[i].tensor.sizes().vec() == spec[i].shape, ShapeError, "SuperNet tensor '",
                spec[i].name, "' has shape ", tensors_[i].tensor.sizes(), ", expected ",
                c10::IntArrayRef(spec[i].shape));
  }
}

NamedTensors SuperNet::sliceViews(const SubNetConfig& config) const {
  NamedTensors out;
  for (const auto& spec : sliceSpec(space_, config))
    out.add(spec.name, prefixBox(tensors_.at(spec.name), spec.shape));
  return out;
}

NamedTensors SuperNet::extract(const SubNetConfig& config) const {
  return sliceViews(config).clone();
}

SubNetModule SuperNet::buildModule(const SubNetConfig& config) const {
  SubNetModule m(space_, config);
  m->loadState(sliceViews(config));
  return m;
}

void SuperNet::assign(const SubNetConfig& config, const NamedTensors& slice) {
  NamedTensors views = sliceViews(config);
  SFN_ENFORCE(views.size() == slice.size(), ShapeError, "assign: slice has ", slice.size(),
              " tensors, SubNet needs ", views.size());
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < views.size(); ++i) {
    SFN_ENFORCE(
        views[i].name == slice[i].name && views[i].tensor.sizes() == slice[i].tensor.sizes(),
        ShapeError, "assign: tensor '", slice[i].name, "' does not match '", views[i].name, "'");
    views[i].tensor.copy_(slice[i].tensor);
  }
}

}  // namespace sfn
