// Small helpers shared by every TOML reader (design spaces, run configs, device files), so
// parse errors and unreadable files are reported the same way everywhere.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>

namespace sfn {

// Parses TOML; a syntax error becomes ConfigError "origin:line: description".
toml::table parseToml(std::string_view text, const std::string& origin);

// Reads a whole text file; IoError "cannot read <what> '<path>'" if it cannot be opened.
std::string readTextFile(const std::string& path, const std::string& what);

}  // namespace sfn
