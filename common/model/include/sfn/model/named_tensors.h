// An ordered list of (name, tensor): the unit in which weights move around sfn.
//
// A SuperNet's state, a SubNet's slice, a decoded update and a checkpoint are all
// NamedTensors. Order is significant (it is the SuperNet's canonical order) and is
// preserved by every producer, so consumers may walk two lists in lockstep.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sfn {

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

class NamedTensors {
 public:
  NamedTensors() = default;

  void add(std::string name, at::Tensor tensor) {
    items_.push_back(NamedTensor{std::move(name), std::move(tensor)});
  }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

  NamedTensor& operator[](std::size_t i) { return items_[i]; }
  const NamedTensor& operator[](std::size_t i) const { return items_[i]; }

  // Linear search: lists are short (tens of tensors) and lookups are rare.
  const at::Tensor* find(const std::string& name) const {
    for (const auto& it : items_)
      if (it.name == name) return &it.tensor;
    return nullptr;
  }
  // Throws ShapeError naming the missing tensor.
  const at::Tensor& at(const std::string& name) const;

  // Deep copy: every tensor cloned into contiguous memory.
  NamedTensors clone() const;
  // Total number of elements and bytes over all tensors.
  std::int64_t numel() const;
  std::int64_t nbytes() const;
  // True if both lists have the same names, shapes and bit-identical values.
  bool bitEqual(const NamedTensors& other) const;

  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<NamedTensor> items_;
};

}  // namespace sfn
