// VirtualFleet: thousands of federated clients inside one process, seen by the Coordinator
// as an ordinary ServerTransport.
//
// A virtual client is 16 bytes: a window into one shared index array (its data partition)
// and a device class. It holds no model, no data copy and no random generator: every random
// decision is drawn from a stream derived from (seed, round, client).
//
// Tasks go through the real protocol: the fleet decodes the TrainTask bytes the Coordinator
// sent, trains on a boost::asio::thread_pool, encodes the Update and hands it back as bytes.
//
// Time is virtual. A task sent at clock time t arrives back at
//   t + bytes_down / bandwidth + compute_time + bytes_up / bandwidth,
// where compute_time is either 3 x MACs x samples x epochs / (device GMAC/s) ("macs", the
// default: deterministic and independent of host load) or the measured host time x the
// device's speed factor ("measured"). recv() waits (in real time, bounded) for the tasks in
// flight, then delivers updates in virtual arrival order and advances the clock; a device
// that is unavailable this round never answers (a dropout).
//
// Threading: send() and recv() are called by the Coordinator's thread only; training runs on
// the pool. Exceptions from the pool are rethrown on the Coordinator's thread.
#pragma once

#include "sfn/clock.h"
#include "sfn/dataset.h"
#include "sfn/design_space.h"
#include "sfn/device_profile.h"
#include "sfn/partitioner.h"
#include "sfn/transport.h"

#include <boost/asio/thread_pool.hpp>

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sfn {

struct FleetOptions {
  std::uint64_t seed = 1;
  int workers = 1;        // pool threads training in parallel
  int torch_threads = 1;  // intra-op threads per worker (workers x torch_threads <= cores)
  std::string compute_time = "macs";  // "macs" | "measured"
  std::string device = "cpu";
  double max_wait_s = 3600;  // real-time bound on waiting for tasks in flight
  void validate() const;
};

class VirtualFleet final : public ServerTransport {
 public:
  // `partition` is flattened: the fleet keeps one index array. Clients get device classes
  // by the profiles' shares, deterministically from the seed.
  VirtualFleet(FleetOptions options, const DesignSpace& space, const Dataset& data,
               const Partition& partition, std::vector<DeviceProfile> profiles,
               VirtualClock& clock);
  ~VirtualFleet() override;
  VirtualFleet(const VirtualFleet&) = delete;
  VirtualFleet& operator=(const VirtualFleet&) = delete;

  // Queues a Register message from every client (the Coordinator receives them).
  void registerAll();

  [[nodiscard]] SendResult send(const PeerId& peer, BytesPtr message) override;
  [[nodiscard]] std::optional<Received> recv(std::chrono::milliseconds timeout) override;

  std::size_t numClients() const { return clients_.size(); }
  static PeerId peerName(std::size_t client);
  const DeviceProfile& profileOf(std::size_t client) const;
  std::size_t tasksDone() const;
  std::size_t tasksInFlight() const;
  double computeSecondsTotal() const;  // host seconds spent in local training
  // Bytes of per-client state (for the scale benchmark).
  std::size_t clientStateBytes() const;

 private:
  struct Client {
    std::uint32_t offset = 0;  // into indices_
    std::uint32_t count = 0;
    std::uint16_t profile = 0;
  };
  struct Arrival {
    double time = 0;
    std::uint64_t task_id = 0;
    PeerId peer;
    BytesPtr message;
  };
  void trainTask(std::size_t client, BytesPtr task_bytes, double sent_at);
  std::optional<std::size_t> clientIndex(const PeerId& peer) const;

  FleetOptions options_;
  const DesignSpace& space_;
  const Dataset& data_;
  std::vector<DeviceProfile> profiles_;
  VirtualClock& clock_;
  std::vector<std::int64_t> indices_;  // all partitions back to back
  std::vector<Client> clients_;
  std::deque<Received> control_;  // registrations etc., delivered at once

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Arrival> arrivals_;  // finished tasks, not yet delivered
  std::size_t in_flight_ = 0;
  std::size_t done_ = 0;
  double compute_seconds_ = 0;
  std::exception_ptr error_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
};

}  // namespace sfn
