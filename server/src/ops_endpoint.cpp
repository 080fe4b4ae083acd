#include "sfn/server/ops_endpoint.h"

#include "sfn/core/error.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace sfn {

OpsEndpoint::OpsEndpoint(const std::string& listen, const std::string& what, std::string run_name,
                         std::int64_t rounds_total, std::shared_ptr<spdlog::logger> log)
    : log_(std::move(log)) {
  SFN_ENFORCE(log_ != nullptr, ConfigError, "OpsEndpoint needs a logger");
  status_.setRun(std::move(run_name), rounds_total);
  metrics_.setRoundsTotal(rounds_total);
  if (!parseHttpListen(listen, what)) {
    log_->info("HTTP endpoint off ({})", what);
    return;
  }
  HttpOptions options;
  options.listen = listen;
  try {
    http_ = std::make_unique<HttpServer>(options, routes(), log_);
  } catch (const ConfigError& e) {
    if (listen != kDefaultHttpListen) throw;
    log_->warn("HTTP endpoint off: {} (pass {} HOST:PORT for another address)", e.what(), what);
    return;
  }
  log_->info(
      "HTTP endpoint on http://{}/ (metrics /metrics, health /healthz, /readyz, "
      "status /status)",
      http_->endpoint());
}

OpsEndpoint::~OpsEndpoint() = default;

std::map<std::string, HttpHandler> OpsEndpoint::routes() {
  std::map<std::string, HttpHandler> r;
  r["/metrics"] = [this] {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics_.text()};
  };
  r["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  r["/readyz"] = [this] {
    const bool ready = status_.toJson().value("ready", false);
    return HttpResponse{ready ? 200 : 503, "text/plain; charset=utf-8",
                        ready ? "ready\n" : "not ready\n"};
  };
  r["/status"] = [this] { return HttpResponse{200, "application/json", status_.toJson().dump()}; };
  r["/"] = [] {
    return HttpResponse{200, "text/html; charset=utf-8", std::string(dashboardHtml())};
  };
  return r;
}

void OpsEndpoint::attach(Coordinator& coordinator) {
  coordinator.setStateObserver([this](RoundState state) {
    metrics_.setPhase(state);
    status_.setPhase(state);
  });
  metrics_.setRoundsDone(coordinator.round());
  status_.setRoundsDone(coordinator.round());
  updateClients(coordinator);
}

void OpsEndpoint::updateClients(const Coordinator& coordinator) {
  const std::size_t connected = coordinator.availableClients();
  metrics_.setClients(coordinator.registry().size(), connected);
  status_.updateClients(coordinator.registry(), coordinator.clock().now(),
                        coordinator.options().liveness_s);
}

void OpsEndpoint::observeRound(const Coordinator& coordinator, const RoundMetrics& metrics) {
  metrics_.observeRound(metrics);
  status_.observeRound(metrics);
  updateClients(coordinator);
}

void OpsEndpoint::setTransportCounters(std::function<TransportCounters()> source) {
  metrics_.setTransportCounters(std::move(source));
}

void OpsEndpoint::setReady(bool ready) {
  metrics_.setReady(ready);
  status_.setReady(ready);
}

void OpsEndpoint::setFinal(FinalEval state, const std::vector<EvalRecord>& evals) {
  status_.setFinal(state, evals);
}

void OpsEndpoint::hook(FederationOptions& options, const Coordinator& coordinator) {
  options.on_wait = [this, &coordinator, prev = std::move(options.on_wait)] {
    updateClients(coordinator);
    if (prev) prev();
  };
  options.before_round = [this, &coordinator, prev = std::move(options.before_round)] {
    updateClients(coordinator);
    if (prev) prev();
  };
  options.after_round = [this, &coordinator,
                         prev = std::move(options.after_round)](const RoundMetrics& m) {
    observeRound(coordinator, m);
    if (prev) prev(m);
  };
}

std::string OpsEndpoint::endpoint() const { return http_ ? http_->endpoint() : std::string(); }

void OpsEndpoint::writeEndpointFile(const std::string& run_dir) const {
  if (!http_) return;
  std::filesystem::create_directories(run_dir);
  std::ofstream(std::filesystem::path(run_dir) / "http_endpoint") << http_->endpoint() << '\n';
}

}  // namespace sfn
