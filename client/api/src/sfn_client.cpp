#include "sfn/sfn_client.h"

#include "sfn/client/client_config.h"
#include "sfn/client/client_runner.h"
#include "sfn/client/client_setup.h"
#include "sfn/client/own_data.h"
#include "sfn/client/zmq_client_factory.h"
#include "sfn/core/error.h"
#include "sfn/data/local_data.h"
#include "sfn/train/local_trainer.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>

namespace sfn {
namespace {

using LogCallback = std::function<void(std::string_view, std::string_view)>;

// Hands each line, without its newline, to the app's callback.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(LogCallback callback) : callback_(std::move(callback)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    std::string_view text(line.data(), line.size());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    const auto level = spdlog::level::to_string_view(msg.level);
    callback_(std::string_view(level.data(), level.size()), text);
  }
  void flush_() override {}

 private:
  LogCallback callback_;
};

// The library's own logger (not in spdlog's global registry: an app may run many clients).
std::shared_ptr<spdlog::logger> makeLogger(const ClientSettings& s) {
  const auto level = spdlog::level::from_str(s.log_level);
  if (level == spdlog::level::off && s.log_level != "off")
    SFN_THROW(ConfigError, "ClientSettings::log_level: unknown level '", s.log_level,
              "' (trace, debug, info, warn, error or off)");
  std::shared_ptr<spdlog::logger> log;
  if (s.log) {
    log = std::make_shared<spdlog::logger>("sfn-client", std::make_shared<CallbackSink>(s.log));
    log->set_pattern("%v");
  } else {
    log = std::make_shared<spdlog::logger>("sfn-client",
                                           std::make_shared<spdlog::sinks::stderr_sink_mt>());
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e [%n] [%l] %v");
  }
  log->set_level(level);
  return log;
}

// sfn-client's config with the same rules. `samples_name` names an app's SampleSource
// (ClientConfig::validate asks for a data source; the SampleSource is it), empty otherwise.
ClientConfig configFrom(const ClientSettings& s, const std::string& samples_name) {
  ClientConfig c;
  c.name = s.name;
  c.device_class = s.device_class;
  c.device = s.device;
  c.threads = s.threads;
  c.stay = s.stay;
  c.endpoint = s.server;
  c.server_key = s.server_key_file;
  c.key = s.key_file;
  c.insecure = s.insecure;
  c.data_path = samples_name.empty() ? s.data_path : samples_name;
  c.heartbeat_s = s.heartbeat_s;
  c.liveness_s = s.liveness_s;
  c.register_timeout_s = s.register_timeout_s;
  c.backoff_max_s = s.backoff_max_s;
  c.validate();
  return c;
}

// Call inside a catch block: sfn's exceptions become ClientErrors of the matching kind (the
// exit codes sfn-client gives them); anything else passes through unchanged.
[[noreturn]] void rethrowAsClientError() {
  try {
    throw;
  } catch (const ClientError&) {
    throw;
  } catch (const AuthError& e) {
    throw ClientError(ClientErrorKind::kAuthRefused, e.what());
  } catch (const DataError& e) {
    throw ClientError(ClientErrorKind::kData, e.what());
  } catch (const ConfigError& e) {
    throw ClientError(ClientErrorKind::kConfig, e.what());
  } catch (const std::exception& e) {
    throw ClientError(ClientErrorKind::kRuntime, e.what());
  }
}

ClientOutcome outcomeOf(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kStopped:
      return ClientOutcome::kStopped;
    case RunOutcome::kRejected:
      return ClientOutcome::kRejected;
    case RunOutcome::kAuthRefused:
      return ClientOutcome::kAuthRefused;
    case RunOutcome::kServerBye:  // only with stop_on_server_bye, which the library leaves off
    case RunOutcome::kFinished:
      break;
  }
  return ClientOutcome::kFinished;
}

}  // namespace

ClientError::ClientError(ClientErrorKind kind, const std::string& message)
    : std::runtime_error(message), kind_(kind) {}
ClientError::~ClientError() = default;

const char* toString(ClientOutcome outcome) noexcept {
  switch (outcome) {
    case ClientOutcome::kStopped:
      return "stopped";
    case ClientOutcome::kFinished:
      return "finished";
    case ClientOutcome::kRejected:
      return "rejected";
    case ClientOutcome::kAuthRefused:
      return "auth refused";
  }
  return "unknown";
}

const char* clientLibraryVersion() noexcept { return SFN_CLIENT_VERSION; }

struct SfnClient::Impl {
  ClientConfig config;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<ClientData> data;
  std::unique_ptr<ClientRunner> runner;  // made by connect()
  // The runner for registered() and updatesSent() on other threads; set once by connect().
  std::atomic<const ClientRunner*> live{nullptr};
  std::atomic<bool> stop{false};
};

SfnClient::SfnClient(ClientSettings settings, const SampleSource& samples)
    : impl_(std::make_unique<Impl>()) {
  const std::string name = "samples of " + (settings.name.empty() ? "the app" : settings.name);
  try {
    impl_->config = configFrom(settings, name);
    impl_->log = makeLogger(settings);
  } catch (...) {
    rethrowAsClientError();
  }
  try {
    impl_->data = std::make_unique<OwnData>(materialize(samples, name));
  } catch (const ConfigError& e) {  // materialize's verdict on the samples themselves
    throw ClientError(ClientErrorKind::kData, e.what());
  } catch (...) {
    rethrowAsClientError();
  }
}

SfnClient::SfnClient(ClientSettings settings) : impl_(std::make_unique<Impl>()) {
  try {
    impl_->config = configFrom(settings, "");
    impl_->log = makeLogger(settings);
    impl_->data = loadClientData(impl_->config, *impl_->log);
  } catch (...) {
    rethrowAsClientError();
  }
}

SfnClient::~SfnClient() = default;
SfnClient::SfnClient(SfnClient&&) noexcept = default;
SfnClient& SfnClient::operator=(SfnClient&&) noexcept = default;

void SfnClient::connect() {
  if (impl_->runner) return;
  try {
    ClientOptions options = clientOptionsFrom(impl_->config);
    ClientTransportFactory factory =
        zmqClientFactory(transportOptionsFrom(impl_->config), nullptr, impl_->log, options.name);
    setTorchThreads(impl_->config.threads);
    impl_->runner = std::make_unique<ClientRunner>(std::move(options), *impl_->data,
                                                   std::move(factory), impl_->log);
    impl_->live.store(impl_->runner.get());
  } catch (...) {
    rethrowAsClientError();
  }
}

ClientOutcome SfnClient::run() {
  connect();
  try {
    return outcomeOf(impl_->runner->run(impl_->stop));
  } catch (...) {
    rethrowAsClientError();
  }
}

void SfnClient::stop() noexcept {
  if (impl_) impl_->stop.store(true);
}

bool SfnClient::registered() const noexcept {
  const ClientRunner* runner = impl_ ? impl_->live.load() : nullptr;
  if (runner == nullptr) return false;
  const ClientState state = runner->state();
  return state == ClientState::kIdle || state == ClientState::kTraining;
}

bool SfnClient::waitRegistered(std::chrono::milliseconds timeout) const {
  // Polled: ClientRunner publishes its state as an atomic, not as an event.
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!registered() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return registered();
}

std::uint64_t SfnClient::updatesSent() const noexcept {
  const ClientRunner* runner = impl_ ? impl_->live.load() : nullptr;
  return runner == nullptr ? 0 : runner->updatesSent();
}

}  // namespace sfn
