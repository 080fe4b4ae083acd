// VirtualFleet: thousands of federated clients inside one process, seen by the Coordinator
// as an ordinary ServerTransport.
//
// A virtual client is 16 bytes: a window into one shared index array (its data partition)
// and a device class. It holds no model, no data copy and no random generator: every random
// decision is drawn from a stream derived from (seed, round, client).
//
// Tasks go through the real protocol and the real client: the fleet decodes the TrainTask
// bytes the Coordinator sent (once, in send()), checks them with the client's task handler
// (TrainTask::accept, client/train_task.h), trains them with it (runTrainTask) on a
// boost::asio::thread_pool, encodes the Update and hands it back as bytes. sfn-client's
// ClientRunner runs the same two calls, so a virtual client answers a task with the very
// bytes a real client would.
//
// Time is virtual. A task sent at clock time t arrives back at
//   t + bytes_down / bandwidth + compute_time + bytes_up / bandwidth,
// where compute_time is either 3 x MACs x samples x epochs / (device GMAC/s) ("macs", the
// default: deterministic and independent of host load) or the measured host time x the
// device's speed factor ("measured"). recv() waits (in real time, bounded) for the tasks in
// flight, then delivers updates in virtual arrival order and advances the clock; a device
// that is unavailable this round never answers (a dropout).
//
// Scheduling: a round ends only when its slowest task has finished (virtual arrival order is
// known only then), so the pool runs the most expensive queued task first (MACs x samples x
// epochs; longest-processing-time-first), which keeps workers busy to the end of the round.
// Tasks are handed to the pool at the next recv(), i.e. once the Coordinator has sent the
// whole round, so that the order covers all of them. Results do not depend on the order:
// each task is trained from its own seed.
//
// Threading: send() and recv() are called by the Coordinator's thread only; training runs on
// the pool. Exceptions from the pool are rethrown on the Coordinator's thread.
#pragma once

#include "sfn/client/train_task.h"
#include "sfn/core/clock.h"
#include "sfn/data/dataset.h"
#include "sfn/data/partitioner.h"
#include "sfn/model/design_space.h"
#include "sfn/net/transport.h"
#include "sfn/server/run_config.h"
#include "sfn/simulator/device_profile.h"

#include <boost/asio/thread_pool.hpp>

#include <condition_variable>
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
  ComputeTimeMode compute_time = ComputeTimeMode::kMacs;
  std::string device = "cpu";
  double max_wait_s = 3600;  // real-time bound on waiting for tasks in flight
  // Measures the Updates' compute_seconds (ClientContext::clock). Null: host wall time, which
  // "measured" compute time needs; tests pass a fixed clock to get reproducible Update bytes.
  const Clock* task_clock = nullptr;
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

  // Makes every client register: recv() returns one Register message per client, in client
  // order, before anything else. They are made one at a time on demand, so registering
  // 100,000 clients never holds 100,000 messages.
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
  struct Queued {  // a task waiting for a pool thread
    double cost = 0;
    std::uint64_t seq = 0;  // send order: ties go to the earlier task
    std::size_t client = 0;
    TrainTask task;              // its tensors keep the received message alive
    std::size_t down_bytes = 0;  // size of the TrainTask message
    double sent_at = 0;
  };
  struct Arrival {
    double time = 0;
    std::uint64_t task_id = 0;
    PeerId peer;
    BytesPtr message;
  };
  // Whether `client` answers a task of `round` sent now (device trace and availability).
  bool answers(std::size_t client, std::uint64_t round) const;
  // Pool job body: trains the task with the client's handler and files the Update's arrival.
  void trainTask(Queued queued);
  // Pool job: takes the most expensive queued task and trains it.
  void runNextTask();
  // Heap order of queue_: whether `a` runs after `b`.
  static bool runsAfter(const Queued& a, const Queued& b);
  std::optional<std::size_t> clientIndex(const PeerId& peer) const;

  FleetOptions options_;
  const DesignSpace& space_;
  const Dataset& data_;
  std::vector<DeviceProfile> profiles_;
  VirtualClock& clock_;
  std::vector<std::int64_t> indices_;  // all partitions back to back
  std::vector<Client> clients_;
  std::size_t next_register_ = 0;  // next client whose Register recv() returns
  std::size_t unposted_ = 0;       // queued tasks not yet handed to the pool (recv() does)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Queued> queue_;  // max-heap by (cost, -seq)
  std::uint64_t queue_seq_ = 0;
  std::vector<Arrival> arrivals_;  // finished tasks, not yet delivered
  std::size_t in_flight_ = 0;
  std::size_t done_ = 0;
  double compute_seconds_ = 0;
  std::exception_ptr error_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
};

}  // namespace sfn
