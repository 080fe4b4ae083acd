// [server.rate_limit] (issue 13 item 2): each key read into ZmqServerOptions' receive
// budget, defaults generous, bad values refused with the key named. And
// server.max_pending_connections (item 4).
#include "sfn/core/error.h"
#include "sfn/server/run_config.h"

#include <doctest/doctest.h>
#include "error_text.h"

#include <string>
#include <vector>

namespace {

std::string overrideError(std::vector<std::string> overrides) {
  return sfn::test::errorText<sfn::ConfigError>(
      [&] { (void)sfn::RunConfig::parse("", "r.toml", ".", overrides); });
}

}  // namespace

TEST_CASE("run config: server.rate_limit keys set the per-key receive budget") {
  const sfn::RunConfig defaults = sfn::RunConfig::parse("", "r.toml", ".");
  // An honest client sends about one message per task plus a heartbeat every few seconds.
  CHECK(defaults.server.rate_limit.enabled);
  CHECK(defaults.server.rate_limit.messages_per_s >= 10);
  CHECK(defaults.server.rate_limit.message_burst >= 100);

  const sfn::RunConfig c = sfn::RunConfig::parse(
      "[server.rate_limit]\nmessages_per_s = 5\nmessage_burst = 12\nbytes_per_s = 1e6\n"
      "bytes_burst = 3e9\nsustained_s = 2.5\ncut_off_s = 30\n",
      "r.toml", ".");
  const sfn::RateLimitOptions& r = c.server.rate_limit;
  CHECK(r.messages_per_s == 5);
  CHECK(r.message_burst == 12);
  CHECK(r.bytes_per_s == 1e6);
  CHECK(r.bytes_burst == 3e9);
  CHECK(r.sustained.count() == 2500);
  CHECK(r.cut_off.count() == 30'000);
  CHECK_FALSE(sfn::RunConfig::parse("", "r.toml", ".", {"server.rate_limit.enabled=false"})
                  .server.rate_limit.enabled);
}

TEST_CASE("run config: bad server.rate_limit values name their key") {
  CHECK(overrideError({"server.rate_limit.messages_per_s=0"}) ==
        "server.rate_limit.messages_per_s must be a positive number (got 0)");
  CHECK(overrideError({"server.rate_limit.bytes_burst=-1"}) ==
        "server.rate_limit.bytes_burst must be a positive number (got -1)");
  CHECK(overrideError({"server.rate_limit.sustained_s=0"}) ==
        "server.rate_limit.sustained_s must be > 0 (got 0)");
  CHECK(overrideError({"server.rate_limit.cut_off_s=-3"}).find("'server.rate_limit.cut_off_s'") !=
        std::string::npos);
  CHECK(overrideError({"server.rate_limit.burst=3"}).find("server.rate_limit.burst") !=
        std::string::npos);  // unknown key
}

TEST_CASE("run config: server.max_pending_connections caps handshakes in progress") {
  CHECK(sfn::RunConfig::parse("", "r.toml", ".").server.max_pending_connections == 1024);
  const sfn::RunConfig c =
      sfn::RunConfig::parse("[server]\nmax_pending_connections = 64\n", "r.toml", ".");
  CHECK(c.server.max_pending_connections == 64);
  CHECK(sfn::RunConfig::parse(c.toToml(), "again.toml", ".").server.max_pending_connections == 64);
  CHECK(sfn::RunConfig::parse("", "r.toml", ".", {"server.max_pending_connections=0"})
            .server.max_pending_connections == 0);  // no cap
  CHECK(overrideError({"server.max_pending_connections=-1"}) ==
        "server.max_pending_connections must be in [0, 1000000] (0: no cap; got -1)");
  CHECK(overrideError({"server.max_pending_connections=5000000"}) ==
        "server.max_pending_connections must be in [0, 1000000] (0: no cap; got 5000000)");
}
