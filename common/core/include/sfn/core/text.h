// Small text helpers shared by the line-oriented readers (key files, SubNet text).
#pragma once

#include <string_view>

namespace sfn {

// `s` without leading and trailing white space (space, tab, CR, LF, FF, VT).
std::string_view trim(std::string_view s);

}  // namespace sfn
