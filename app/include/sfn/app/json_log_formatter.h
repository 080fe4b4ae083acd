// spdlog formatter for --log-format json: one JSON object per line,
//   {"time":"2026-11-28T20:38:00.123Z","level":"info","logger":"sfn-server","msg":"..."}
// with the message escaped, so log shippers can parse every line.
#pragma once

#include <spdlog/formatter.h>

#include <memory>

namespace sfn {

std::unique_ptr<spdlog::formatter> makeJsonLogFormatter();

}  // namespace sfn
