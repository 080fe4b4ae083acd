#include "sfn/io/toml_util.h"

#include "sfn/core/error.h"

#include <fstream>
#include <sstream>

namespace sfn {

toml::table parseToml(std::string_view text, const std::string& origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << origin << ":" << e.source().begin.line << ": " << e.description();
    SFN_THROW(ConfigError, os.str());
  }
}

std::string readTextFile(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) SFN_THROW(IoError, "cannot read ", what, " '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace sfn
