#include "sfn/fl/covered_backup.h"

#include "sfn/core/error.h"
#include "sfn/model/supernet.h"
#include "prefix_box.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

namespace sfn {

CoveredBackup::CoveredBackup(const std::vector<TensorSpec>& supernet_spec)
    : spec_(supernet_spec), box_(spec_.size()), copy_(spec_.size()) {}

void CoveredBackup::cover(const NamedTensors& slice) {
  const std::vector<std::size_t> index = fl_detail::indexPrefixSlice(spec_, slice);
  for (std::size_t k = 0; k < slice.size(); ++k) {
    const std::size_t i = index[k];
    if (!fl_detail::isAveraged(spec_[i])) continue;
    const auto sizes = slice[k].tensor.sizes();
    std::vector<std::int64_t>& box = box_[i];
    if (box.empty()) box.assign(sizes.size(), 0);
    for (std::size_t d = 0; d < sizes.size(); ++d) box[d] = std::max(box[d], sizes[d]);
  }
}

void CoveredBackup::save(const NamedTensors& supernet) {
  fl_detail::checkSuperNet(spec_, supernet);
  at::NoGradGuard no_grad;  // plain copies, whatever the SuperNet's tensors require
  for (std::size_t i = 0; i < spec_.size(); ++i)
    copy_[i] = box_[i].empty() ? at::Tensor() : prefixBox(supernet[i].tensor, box_[i]).clone();
  saved_ = true;
}

void CoveredBackup::restoreInto(NamedTensors& supernet) const {
  SFN_ENFORCE(saved_, Error, "covered backup: nothing saved to restore");
  fl_detail::checkSuperNet(spec_, supernet);
  at::NoGradGuard no_grad;
  for (std::size_t i = 0; i < spec_.size(); ++i)
    if (copy_[i].defined()) prefixBox(supernet[i].tensor, box_[i]).copy_(copy_[i]);
}

void CoveredBackup::reset() {
  for (auto& b : box_) b.clear();
  for (auto& c : copy_) c = at::Tensor();
  saved_ = false;
}

std::int64_t CoveredBackup::nbytes() const {
  std::int64_t n = 0;
  for (const auto& c : copy_)
    if (c.defined()) n += static_cast<std::int64_t>(c.nbytes());
  return n;
}

}  // namespace sfn
