#include "sfn/simulator/zmq_fleet.h"

#include "sfn/client/zmq_client_factory.h"
#include "sfn/core/error.h"

#include <ATen/Parallel.h>
#include <boost/asio/post.hpp>

#include <thread>
#include <utility>

namespace sfn {

void ZmqFleetOptions::validate(std::size_t clients) const {
  SFN_ENFORCE(clients > 0, ConfigError, "a fleet needs at least one client");
  SFN_ENFORCE(!server_endpoint.empty(), ConfigError, "the fleet needs a server endpoint");
  SFN_ENFORCE(workers >= 1, ConfigError, "fleet workers must be >= 1 (got ", workers, ")");
  SFN_ENFORCE(torch_threads >= 1, ConfigError, "fleet torch threads must be >= 1 (got ",
              torch_threads, ")");
  SFN_ENFORCE(status_interval.count() > 0, ConfigError, "fleet status interval must be > 0");
  SFN_ENFORCE(max_connecting > 0, ConfigError, "fleet max_connecting must be > 0");
  if (!insecure) {
    SFN_ENFORCE(isValidCurveKey(server_public_key), ConfigError,
                "the fleet needs the server's public key (40 Z85 characters) unless insecure");
    SFN_ENFORCE(keys.size() >= clients, ConfigError, "the fleet has ", keys.size(),
                " key pairs for ", clients, " clients");
  }
}

ZmqFleet::ZmqFleet(ZmqFleetOptions options, const Dataset& data, const Partition& shards,
                   const std::vector<DeviceProfile>& profiles, std::shared_ptr<spdlog::logger> log,
                   std::shared_ptr<spdlog::logger> client_log)
    : options_(std::move(options)), log_(std::move(log)) {
  SFN_ENFORCE(log_ != nullptr && client_log != nullptr, ConfigError, "ZmqFleet needs loggers");
  options_.validate(shards.size());
  context_ = makeZmqContext();
  gate_ = ConnectGate::make(options_.max_connecting);
  pool_ = std::make_unique<boost::asio::thread_pool>(static_cast<std::size_t>(options_.workers));
  const std::vector<DeviceProfile> classes =
      profiles.empty() ? std::vector<DeviceProfile>{DeviceProfile{}} : profiles;
  data_.reserve(shards.size());
  runners_.reserve(shards.size());
  device_class_.reserve(shards.size());
  for (std::size_t i = 0; i < shards.size(); ++i) {
    ClientOptions co = clientOptions(i, classes);
    ClientTransportFactory connect = transportFactory(i, co.name, client_log);
    device_class_.push_back(co.device_class);
    data_.push_back(std::make_unique<PreparedData>(data, shards[i]));
    runners_.push_back(std::make_unique<ClientRunner>(std::move(co), *data_.back(),
                                                      std::move(connect), client_log));
  }
  outcomes_.assign(runners_.size(), std::nullopt);
}

ClientOptions ZmqFleet::clientOptions(std::size_t i, const std::vector<DeviceProfile>& classes) {
  ClientOptions co = options_.client;
  co.name = options_.name_prefix + "-" + std::to_string(i);
  co.device_class = classes[profileIndexFor(classes, options_.seed, i)].name;
  co.cores = static_cast<std::uint32_t>(options_.torch_threads);
  co.device = options_.device;
  co.server = options_.server_endpoint;
  co.jitter_seed = options_.seed * 0x9E3779B97F4A7C15ULL + i + 1;  // never 0 (= random)
  co.stop_on_server_bye = true;
  co.train_executor = [this](std::function<UpdateMsg()> job) { return submit(std::move(job)); };
  return co;
}

ClientTransportFactory ZmqFleet::transportFactory(
    std::size_t i, const std::string& name, const std::shared_ptr<spdlog::logger>& client_log) {
  ZmqClientOptions zo;
  zo.server_endpoint = options_.server_endpoint;
  zo.insecure = options_.insecure;
  if (!options_.insecure) {
    zo.server_public_key = options_.server_public_key;
    zo.client_keys = options_.keys[i];
  }
  zo.watch = ZmqClientOptions::Watch::kUntilConnected;  // two descriptors per client
  // All sockets on the fleet's one context (one I/O thread).
  return gate_->wrap(zmqClientFactory(std::move(zo), context_, client_log, name));
}

ZmqFleet::~ZmqFleet() {
  // Queued jobs reference the runners (their data and shards): drain the pool first.
  cancel_jobs_.store(true);
  pool_->join();
}

std::future<UpdateMsg> ZmqFleet::submit(std::function<UpdateMsg()> job) {
  auto task = std::make_shared<std::packaged_task<UpdateMsg()>>(
      [this, job = std::move(job)]() -> UpdateMsg {
        // A job still queued at shutdown would only delay the Bye of its runner.
        if (cancel_jobs_.load()) SFN_THROW(Error, "training cancelled: the fleet is stopping");
        // Per pool thread (OpenMP's thread count is per calling thread).
        at::set_num_threads(options_.torch_threads);
        return job();
      });
  std::future<UpdateMsg> result = task->get_future();
  boost::asio::post(*pool_, [task]() { (*task)(); });
  return result;
}

ZmqFleetStatus ZmqFleet::status() const {
  ZmqFleetStatus s;
  s.clients = runners_.size();
  for (const auto& r : runners_) {
    switch (r->state()) {
      case ClientState::kIdle:
        ++s.idle;
        break;
      case ClientState::kTraining:
        ++s.training;
        break;
      case ClientState::kConnecting:
      case ClientState::kRegistering:
      case ClientState::kBackoff:
        ++s.registering;
        break;
      case ClientState::kStopping:
        break;
    }
    s.updates_sent += r->updatesSent();
  }
  s.ended = ended_.load();
  if (started_ != std::chrono::steady_clock::time_point{})
    s.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return s;
}

ZmqFleetReport ZmqFleet::run(const std::atomic<bool>& stop,
                             const std::function<void(const ZmqFleetStatus&)>& on_status) {
  SFN_ENFORCE(started_ == std::chrono::steady_clock::time_point{}, Error,
              "ZmqFleet::run called twice");
  started_ = std::chrono::steady_clock::now();
  log_->info("fleet: starting {} clients against {} ({} training workers x {} torch threads)",
             runners_.size(), options_.server_endpoint, options_.workers, options_.torch_threads);
  std::vector<std::thread> threads;
  threads.reserve(runners_.size());
  for (std::size_t i = 0; i < runners_.size(); ++i) {
    threads.emplace_back([this, i] {
      try {
        outcomes_[i] = runners_[i]->run(stop_all_);
        if (*outcomes_[i] == RunOutcome::kServerBye || *outcomes_[i] == RunOutcome::kFinished)
          server_ended_.store(true);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        stop_all_.store(true);  // the same keys/endpoint would fail every other runner too
      }
      ended_.fetch_add(1);
    });
  }

  // The calling thread watches: copies the stop flag, reports status, notices the end.
  auto next_status = std::chrono::steady_clock::now() + options_.status_interval;
  while (ended_.load() < runners_.size()) {
    propagateStop(stop);
    const auto now = std::chrono::steady_clock::now();
    if (on_status && now >= next_status) {
      on_status(status());
      next_status = now + options_.status_interval;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : threads) t.join();
  cancel_jobs_.store(true);

  ZmqFleetReport report;
  report.final_status = status();
  if (on_status) on_status(report.final_status);
  report.device_class = device_class_;
  countOutcomes(report);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) std::rethrow_exception(error_);
  }
  return report;
}

void ZmqFleet::propagateStop(const std::atomic<bool>& stop) {
  if (stop.load() && !stop_all_.load()) {
    log_->info("fleet: stopping {} clients", runners_.size() - ended_.load());
    stop_all_.store(true);
  }
  // One Bye ends the run for the whole fleet: a client whose connection was down when the
  // server said it (10,000 clients on a loaded machine: about 2,000 of them) would otherwise
  // keep reconnecting to a server that is gone.
  if (server_ended_.load() && !stop_all_.load()) {
    log_->info("fleet: the server ended the run; stopping the {} clients not told yet",
               runners_.size() - ended_.load());
    stop_all_.store(true);
  }
  if (stop_all_.load()) {
    cancel_jobs_.store(true);
    gate_->stop();
  }
}

void ZmqFleet::countOutcomes(ZmqFleetReport& report) const {
  for (std::size_t i = 0; i < runners_.size(); ++i) {
    report.updates_per_client.push_back(runners_[i]->updatesSent());
    if (!outcomes_[i]) continue;  // the runner failed locally; run() rethrows it
    switch (*outcomes_[i]) {
      case RunOutcome::kServerBye:
      case RunOutcome::kFinished:
        ++report.ended_by_server_bye;
        break;
      case RunOutcome::kRejected:
      case RunOutcome::kAuthRefused:
        ++report.rejected;
        break;
      case RunOutcome::kStopped:
        ++report.stopped;
        break;
    }
  }
}

}  // namespace sfn
