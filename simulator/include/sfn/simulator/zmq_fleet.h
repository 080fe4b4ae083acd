// ZmqFleet: N real ZeroMQ clients (ClientRunner) in one process, driving a running
// sfn-server for load and soak tests (sfn-sim --connect).
//
// Unlike VirtualFleet, nothing is simulated: every client has its own DEALER socket, CURVE
// key pair and registration, and talks the real protocol over the network. The runners share
// one zmq::context_t (one I/O thread for all sockets).
//
// Threading: one thread per runner, because ClientRunner::run() blocks on its socket; the
// runners mostly wait (5,000 of them cost little CPU if their poll interval is long:
// sfn-sim --connect sets 2 s; see experiments/bench/bench_fleet.py).
// At most max_connecting of them connect at once (ConnectGate), and each closes its
// handshake monitor once connected, so a connected client holds two file descriptors.
// Training does NOT run on
// those threads: every runner hands its training job to ONE shared
// boost::asio::thread_pool of `workers` threads with `torch_threads` intra-op threads each,
// so workers x torch_threads bounds the cores the whole fleet trains on. Jobs still queued
// when the fleet stops are cancelled (their futures fail), so Ctrl-C is not held up by a
// queue of trainings nobody will report.
//
// A runner ends when the fleet is stopped (it says Bye), when the server says Bye (training
// finished or server stopping: the first such Bye stops the whole fleet, since clients
// disconnected at that moment never hear theirs), when its registration is rejected, or
// when it fails locally (bad keys, bad endpoint). The first local failure stops the whole fleet and
// is rethrown by run() on the calling thread.
#pragma once

#include "sfn/client/client_runner.h"
#include "sfn/data/dataset.h"
#include "sfn/data/partitioner.h"
#include "sfn/client/prepared_data.h"
#include "sfn/model/design_space.h"
#include "sfn/net/zmq_transport.h"
#include "sfn/simulator/connect_gate.h"
#include "sfn/simulator/device_profile.h"

#include <boost/asio/thread_pool.hpp>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sfn {

struct ZmqFleetOptions {
  std::string server_endpoint;      // e.g. tcp://10.0.0.1:5555
  std::string server_public_key;    // Z85; ignored when insecure
  bool insecure = false;            // plaintext: the server must run --insecure too
  std::vector<CurveKeyPair> keys;   // one per client unless insecure (see fleet_keys.h)
  std::string name_prefix = "sim";  // client i is named <prefix>-<i>
  std::uint64_t seed = 1;           // device classes and reconnect jitter
  int workers = 1;                  // training pool threads
  int torch_threads = 1;            // intra-op threads per pool thread
  std::string device = "cpu";       // torch device of local training
  // Timing of every runner (poll, heartbeat, liveness, backoff); its name, server label,
  // executor and stop_on_server_bye are set per client by the fleet.
  ClientOptions client;
  std::chrono::milliseconds status_interval{10'000};  // on_status period in run()
  std::size_t max_connecting = 256;                   // clients connecting at once
  void validate(std::size_t clients) const;           // throws ConfigError
};

// A snapshot of the fleet, safe to take from any thread.
struct ZmqFleetStatus {
  std::size_t clients = 0;
  std::size_t registering = 0;  // connecting, registering or in backoff
  std::size_t idle = 0;
  std::size_t training = 0;  // a training job queued or running
  std::size_t ended = 0;     // run() returned
  std::uint64_t updates_sent = 0;
  double wall_s = 0;  // since run() started
};

struct ZmqFleetReport {
  ZmqFleetStatus final_status;
  std::size_t ended_by_server_bye = 0;
  std::size_t rejected = 0;
  std::size_t stopped = 0;  // ended by the fleet's stop
  std::vector<std::uint64_t> updates_per_client;
  std::vector<std::string> device_class;  // per client
};

class ZmqFleet {
 public:
  // `shards[i]` indexes client i's samples in `data`; `profiles` gives device classes by
  // share (names only matter here: the server maps them to MACs budgets). `data` must
  // outlive the fleet; it is prepared with the run's own pipeline (the SuperNet and its
  // settings come from the server's Welcome). `log` gets fleet lines, `client_log` the runners'
  // own. Throws ConfigError for invalid options, a missing key pair or an empty shard.
  ZmqFleet(ZmqFleetOptions options, const Dataset& data, const Partition& shards,
           const std::vector<DeviceProfile>& profiles, std::shared_ptr<spdlog::logger> log,
           std::shared_ptr<spdlog::logger> client_log);
  ~ZmqFleet();
  ZmqFleet(const ZmqFleet&) = delete;
  ZmqFleet& operator=(const ZmqFleet&) = delete;

  // Starts every runner and returns once all of them have ended (see the header comment):
  // when `stop` becomes true, runners say Bye and end within about one poll interval (plus
  // a training step already running). Calls `on_status` every status_interval and once at
  // the end, on the calling thread. Rethrows the first local runner failure. Call once.
  ZmqFleetReport run(const std::atomic<bool>& stop,
                     const std::function<void(const ZmqFleetStatus&)>& on_status = {});

  ZmqFleetStatus status() const;
  std::size_t size() const { return runners_.size(); }

 private:
  // The shared executor handed to every runner (ClientOptions::train_executor).
  std::future<UpdateMsg> submit(std::function<UpdateMsg()> job);
  // Client i's options and ZeroMQ connection.
  ClientOptions clientOptions(std::size_t i, const std::vector<DeviceProfile>& classes);
  ClientTransportFactory transportFactory(std::size_t i, const std::string& name,
                                          const std::shared_ptr<spdlog::logger>& client_log);
  // Sets stop_all_ on an external stop or once the server has ended the run for a client.
  void propagateStop(const std::atomic<bool>& stop);
  // Adds the runners' outcomes to the report.
  void countOutcomes(ZmqFleetReport& report) const;

  ZmqFleetOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<zmq::context_t> context_;
  std::shared_ptr<ConnectGate> gate_;
  std::vector<std::string> device_class_;
  std::vector<std::unique_ptr<PreparedData>> data_;  // per runner; outlives it
  std::vector<std::unique_ptr<ClientRunner>> runners_;
  std::vector<std::optional<RunOutcome>> outcomes_;  // empty: run() threw
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::atomic<bool> stop_all_{false};  // set by the external stop or a local failure
  std::atomic<bool> cancel_jobs_{false};
  std::atomic<bool> server_ended_{false};  // a runner got the server's Bye
  std::atomic<std::size_t> ended_{0};
  std::chrono::steady_clock::time_point started_{};
  mutable std::mutex mu_;
  std::exception_ptr error_;
};

}  // namespace sfn
