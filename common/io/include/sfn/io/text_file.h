// Whole-file text reads with errors that name the file and what it was meant to be.
#pragma once

#include <string>

namespace sfn {

// Reads a whole text file; IoError "cannot read <what> '<path>'" if it cannot be read.
std::string readTextFile(const std::string& path, const std::string& what);

}  // namespace sfn
