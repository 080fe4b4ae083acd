// libsfn-client: an sfn federated client inside a device app.
//
//   #include <sfn/sfn_client.h>
//   sfn::SfnClient client(settings, my_samples);   // my_samples: an sfn::SampleSource
//   client.connect();                              // checks settings, reads the keys
//   std::thread t([&] { outcome = client.run(); }); // registers, trains, reports
//   ...
//   client.stop();                                 // from any thread; run() returns soon
//
// run() connects to sfn-server over ZeroMQ (CURVE-encrypted and authenticated unless
// `insecure`), registers, trains the SubNets the server assigns on the app's samples and
// sends the updates; it reconnects with backoff and registers again when the server
// restarts. The app configures nothing about the run: the SuperNet, its input shape and the
// normalisation come from the server, which refuses samples that do not fit its SuperNet.
//
// Only standard types appear in this header: LibTorch, ZeroMQ, spdlog and toml++ stay inside
// the library (pointer to implementation), and only the declarations below are exported from
// it. The library's SONAME changes whenever this header's ABI does (SFN_CLIENT_SOVERSION).
#pragma once

#include "sfn/data/sample_source.h"
#include "sfn/sfn_client_version.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sfn {

// The client's settings; the names follow sfn-client's config keys and flags.
struct ClientSettings {
  std::string server;           // the server's endpoint, "tcp://HOST:PORT" (--server)
  std::string server_key_file;  // the server's public key file, server.pub (--server-key)
  std::string key_file;         // this client's key pair file from keygen, client.key (--key)
  bool insecure = false;        // no encryption or authentication: local development only

  std::string name;                      // in the logs of both sides; empty: the host name
  std::string device_class = "default";  // selects the server's MACs budget for this client
  std::string device = "cpu";            // torch device for local training ("cuda:0")
  int threads = 1;                       // torch intra-op threads (process-wide); <= 0: default
  bool stay = false;  // after the server's last round, wait for its next run instead of returning

  // Without a SampleSource: the device's data files (an IDX folder, a CIFAR-10 .bin file or
  // folder, or a torch.save file), read once by the constructor.
  std::string data_path;

  double heartbeat_s = 5.0;          // seconds between heartbeats while registered
  double liveness_s = 120.0;         // reconnect after this long without a word (0: never)
  double register_timeout_s = 10.0;  // wait for the server's answer to a registration
  double backoff_max_s = 30.0;       // cap of the reconnect delay (doubles from 1 s)

  // "trace", "debug", "info", "warn", "error" or "off".
  std::string log_level = "info";
  // Receives every log line with its level name; empty: lines go to stderr. Called from the
  // thread that runs run(); must not call back into the client.
  std::function<void(std::string_view level, std::string_view line)> log;
};

// What went wrong; the values are the exit codes sfn-client uses for the same failures.
enum class ClientErrorKind : int {
  kRuntime = 1,      // I/O, network or an internal error
  kConfig = 2,       // invalid settings, a missing or malformed key file
  kAuthRefused = 3,  // the server refused this client's key
  kData = 4,         // the samples do not fit the run's SuperNet, or are malformed
};

class SFN_CLIENT_API ClientError : public std::runtime_error {
 public:
  ClientError(ClientErrorKind kind, const std::string& message);
  ~ClientError() override;
  ClientErrorKind kind() const noexcept { return kind_; }

 private:
  ClientErrorKind kind_;
};

// How run() ended.
enum class ClientOutcome {
  kStopped,      // stop() was called (the server was told goodbye)
  kFinished,     // the server's run is over (and `stay` is off)
  kRejected,     // the server refused the registration (e.g. the samples do not fit)
  kAuthRefused,  // the server refused this client's key (not on its allowlist)
};
SFN_CLIENT_API const char* toString(ClientOutcome outcome) noexcept;

class SFN_CLIENT_API SfnClient {
 public:
  // Trains on `samples`, copied once here (read() is not called again). Throws ClientError:
  // kConfig for invalid settings, kData for samples the copy refuses (empty, a shape that is
  // not positive, a negative label, a pixel outside [0, 1]).
  SfnClient(ClientSettings settings, const SampleSource& samples);
  // Trains on the files at settings.data_path, read here. Throws ClientError (kConfig, or
  // kRuntime for files that cannot be read or parsed).
  explicit SfnClient(ClientSettings settings);
  // run() must have returned.
  ~SfnClient();
  SfnClient(SfnClient&&) noexcept;
  SfnClient& operator=(SfnClient&&) noexcept;
  SfnClient(const SfnClient&) = delete;
  SfnClient& operator=(const SfnClient&) = delete;

  // Makes the connection ready: checks the endpoint, reads the key files and sets torch's
  // thread count. The socket itself connects (and reconnects) inside run(). Does nothing
  // when already done. Throws ClientError (kConfig).
  void connect();
  // Registers with the server (after connect(), which it calls if needed) and trains until
  // stop(), the end of the server's run (unless `stay`) or a refusal. Blocks; call it from
  // one thread at a time. Throws ClientError for what retrying cannot fix: kConfig,
  // kData when the samples do not fit the run.
  ClientOutcome run();
  // Asks run() to say goodbye and return: at once when idle, after the current training
  // step otherwise. Safe from any thread (a lock-free atomic store, so also from a signal
  // handler), before or during run().
  void stop() noexcept;

  // True while registered with the server (between its welcome and the session's end).
  bool registered() const noexcept;
  // Waits until registered() or `timeout`; returns registered(). Any thread.
  bool waitRegistered(std::chrono::milliseconds timeout) const;
  // Updates sent to the server so far.
  std::uint64_t updatesSent() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The library's version at run time, "MAJOR.MINOR.PATCH" (SFN_CLIENT_VERSION is the
// header's).
SFN_CLIENT_API const char* clientLibraryVersion() noexcept;

}  // namespace sfn
