#include "sfn/model/named_tensors.h"

#include "sfn/core/error.h"

#include <ATen/ATen.h>

#include <cstring>

namespace sfn {

const at::Tensor& NamedTensors::at(const std::string& name) const {
  const at::Tensor* t = find(name);
  if (t == nullptr) SFN_THROW(ShapeError, "tensor '", name, "' is missing");
  return *t;
}

NamedTensors NamedTensors::clone() const {
  NamedTensors out;
  for (const auto& it : items_) out.add(it.name, it.tensor.clone(at::MemoryFormat::Contiguous));
  return out;
}

std::int64_t NamedTensors::numel() const {
  std::int64_t n = 0;
  for (const auto& it : items_) n += it.tensor.numel();
  return n;
}

std::int64_t NamedTensors::nbytes() const {
  std::int64_t n = 0;
  for (const auto& it : items_) n += static_cast<std::int64_t>(it.tensor.nbytes());
  return n;
}

bool NamedTensors::bitEqual(const NamedTensors& other) const {
  if (size() != other.size()) return false;
  for (std::size_t i = 0; i < size(); ++i) {
    const auto& a = items_[i];
    const auto& b = other.items_[i];
    if (a.name != b.name || a.tensor.sizes() != b.tensor.sizes() ||
        a.tensor.scalar_type() != b.tensor.scalar_type())
      return false;
    // Compare bytes, not values: NaN != NaN and -0 == +0 would both mislead here.
    auto ca = a.tensor.contiguous().cpu();
    auto cb = b.tensor.contiguous().cpu();
    if (ca.nbytes() != cb.nbytes()) return false;
    if (ca.nbytes() != 0 && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) != 0)
      return false;
  }
  return true;
}

}  // namespace sfn
