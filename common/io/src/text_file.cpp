#include "sfn/io/text_file.h"

#include "sfn/core/error.h"

#include <fstream>
#include <sstream>

namespace sfn {

std::string readTextFile(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) SFN_THROW(IoError, "cannot read ", what, " '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) SFN_THROW(IoError, "cannot read ", what, " '", path, "'");
  return ss.str();
}

}  // namespace sfn
