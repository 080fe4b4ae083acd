// What an operator sees of a running sfn-server or sfn-sim: the HTTP endpoint (Prometheus
// /metrics, /healthz, /readyz, /status JSON and the dashboard at /) over the live state of
// the run. The run loop feeds it on the coordinator's thread (phase changes, clients, every
// round, the final evaluation); the HTTP thread only reads the thread-safe OpsMetrics and
// OpsStatus, so serving never touches the Coordinator.
//
//   /healthz   200 while the process serves HTTP at all
//   /readyz    200 once the coordinator accepts clients (after loading data and any
//              checkpoint), 503 before and after the run
#pragma once

#include "sfn/app/http_server.h"
#include "sfn/server/coordinator.h"
#include "sfn/server/federation.h"
#include "sfn/server/ops_metrics.h"
#include "sfn/server/ops_status.h"

#include <spdlog/logger.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sfn {

class OpsEndpoint {
 public:
  // `listen`: "off" or HOST:PORT (ConfigError naming `what` otherwise, or when a named
  // address cannot be bound). A taken default port (kDefaultHttpListen) is a warning, not
  // an error, so that several runs on one machine (tests) do not fail on it.
  OpsEndpoint(const std::string& listen, const std::string& what, std::string run_name,
              std::int64_t rounds_total, std::shared_ptr<spdlog::logger> log);
  ~OpsEndpoint();
  OpsEndpoint(const OpsEndpoint&) = delete;
  OpsEndpoint& operator=(const OpsEndpoint&) = delete;

  // Hooks the coordinator's phase changes (setStateObserver) and records where it stands
  // (a resumed run's rounds). Call once, before the run loop.
  void attach(Coordinator& coordinator);
  // The clients the coordinator knows; call on its thread (the run loop's hooks do).
  void updateClients(const Coordinator& coordinator);
  void observeRound(const Coordinator& coordinator, const RoundMetrics& metrics);
  void setReady(bool ready);
  void setFinal(FinalEval state, const std::vector<EvalRecord>& evals = {});
  // The transport's own counters for /metrics (OpsMetrics::setTransportCounters); nullptr
  // detaches them, which must happen before the transport they read is destroyed.
  void setTransportCounters(std::function<TransportCounters()> source);

  // Chains the endpoint's updates into the run loop's hooks (keeping those already set):
  // clients while waiting and before each round, every round's metrics after it.
  void hook(FederationOptions& options, const Coordinator& coordinator);

  // "HOST:PORT" being served, or empty when off. writeEndpointFile puts it in
  // RUN/http_endpoint (scripts and tests find an ephemeral port there); nothing when off.
  std::string endpoint() const;
  void writeEndpointFile(const std::string& run_dir) const;

 private:
  std::map<std::string, HttpHandler> routes();

  std::shared_ptr<spdlog::logger> log_;
  OpsMetrics metrics_;
  OpsStatus status_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace sfn
