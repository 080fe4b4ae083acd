// Tensor shapes as text for error messages and logs.
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace sfn {

// "[8, 1, 3, 3]"; "[]" for a scalar.
std::string shapeText(c10::IntArrayRef shape);

}  // namespace sfn
