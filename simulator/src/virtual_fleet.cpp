#include "sfn/simulator/virtual_fleet.h"

#include "sfn/client/client_data.h"
#include "sfn/client/train_task.h"
#include "sfn/core/error.h"
#include "sfn/core/rng.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/wire/wire.h"

#include <ATen/Parallel.h>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <span>

namespace sfn {

void FleetOptions::validate() const {
  if (workers < 1) SFN_THROW(ConfigError, "simulation.workers must be >= 1 (got ", workers, ")");
  if (torch_threads < 1)
    SFN_THROW(ConfigError, "simulation.torch_threads must be >= 1 (got ", torch_threads, ")");
  if (!(max_wait_s > 0)) SFN_THROW(ConfigError, "simulation.max_wait_s must be > 0");
}

PeerId VirtualFleet::peerName(std::size_t client) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sim-%06zu", client);
  return buf;
}

std::optional<std::size_t> VirtualFleet::clientIndex(const PeerId& peer) const {
  if (peer.size() < 5 || peer.compare(0, 4, "sim-") != 0) return std::nullopt;
  std::size_t v = 0;
  auto res = std::from_chars(peer.data() + 4, peer.data() + peer.size(), v);
  if (res.ec != std::errc() || res.ptr != peer.data() + peer.size() || v >= clients_.size())
    return std::nullopt;
  return v;
}

VirtualFleet::VirtualFleet(FleetOptions options, const DesignSpace& space, const Dataset& data,
                           const Partition& partition, std::vector<DeviceProfile> profiles,
                           VirtualClock& clock)
    : options_(std::move(options)),
      space_(space),
      data_(data),
      profiles_(std::move(profiles)),
      clock_(clock) {
  options_.validate();
  SFN_ENFORCE(!profiles_.empty(), ConfigError, "simulation needs at least one device profile");
  SFN_ENFORCE(profiles_.size() < 65536, ConfigError, "too many device profiles");
  std::size_t total = 0;
  for (const auto& p : partition) total += p.size();
  SFN_ENFORCE(total < (std::size_t{1} << 32), ConfigError, "partition too large for the fleet");
  indices_.reserve(total);
  clients_.reserve(partition.size());
  for (std::size_t c = 0; c < partition.size(); ++c) {
    Client cl;
    cl.offset = static_cast<std::uint32_t>(indices_.size());
    cl.count = static_cast<std::uint32_t>(partition[c].size());
    indices_.insert(indices_.end(), partition[c].begin(), partition[c].end());
    cl.profile = static_cast<std::uint16_t>(profileIndexFor(profiles_, options_.seed, c));
    clients_.push_back(cl);
  }
  // No Register pending until registerAll().
  next_register_ = clients_.size();
  pool_ = std::make_unique<boost::asio::thread_pool>(static_cast<std::size_t>(options_.workers));
}

VirtualFleet::~VirtualFleet() {
  // Joins the workers before the members they use go away.
  pool_->join();
}

const DeviceProfile& VirtualFleet::profileOf(std::size_t client) const {
  return profiles_[clients_.at(client).profile];
}

void VirtualFleet::registerAll() { next_register_ = 0; }

bool VirtualFleet::answers(std::size_t client, std::uint64_t round) const {
  // Dropout: an unavailable device never answers this round.
  const DeviceProfile& prof = profiles_[clients_[client].profile];
  Rng rng(options_.seed ^ 0xa5a11ab1e, round, client);
  return prof.onlineAt(clock_.now()) && rng.uniform() < prof.availability;
}

SendResult VirtualFleet::send(const PeerId& peer, BytesPtr message) {
  auto client = clientIndex(peer);
  if (!client) return {SendStatus::kUnknownPeer, "no virtual client " + peer};
  const std::size_t down_bytes = message->size();
  DecodeResult decoded = decode(std::move(message));
  if (!decoded) return {SendStatus::kError, decoded.error().reason};
  auto* msg = std::get_if<TrainTaskMsg>(&decoded.message());
  if (msg == nullptr) return {};  // Welcome, Reject, Bye: nothing to do for a virtual client
  if (!answers(*client, msg->round)) return {};
  const double sent_at = clock_.now();
  // The client's own check, as sfn-client makes it on receipt: a task it refuses is never
  // answered, and the Coordinator hears why.
  Queued q{0, 0, *client, {}, down_bytes, sent_at};
  try {
    q.task = TrainTask::accept(std::move(*msg), space_, options_.device);
  } catch (const ConfigError& e) {
    return {SendStatus::kError, "virtual client " + peer + " refused the task: " + e.what()};
  }
  // Scheduling cost: MACs x samples x epochs.
  q.cost = static_cast<double>(computeCost(space_, q.task.config).macs) *
           static_cast<double>(clients_[*client].count) * std::max(1, q.task.options.epochs);
  {
    std::lock_guard<std::mutex> lock(mu_);
    q.seq = queue_seq_++;
    queue_.push_back(std::move(q));
    std::push_heap(queue_.begin(), queue_.end(), runsAfter);
    ++in_flight_;
  }
  ++unposted_;
  return {};
}

bool VirtualFleet::runsAfter(const Queued& a, const Queued& b) {
  return a.cost != b.cost ? a.cost < b.cost : a.seq > b.seq;
}

void VirtualFleet::runNextTask() {
  Queued q;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // One job is posted per queued task, so the queue is never empty here.
    std::pop_heap(queue_.begin(), queue_.end(), runsAfter);
    q = std::move(queue_.back());
    queue_.pop_back();
  }
  try {
    trainTask(std::move(q));
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_) error_ = std::current_exception();
    --in_flight_;
    cv_.notify_all();
  }
}

void VirtualFleet::trainTask(Queued q) {
  at::set_num_threads(options_.torch_threads);
  const Client& cl = clients_[q.client];
  IndexList idx(indices_.begin() + cl.offset, indices_.begin() + cl.offset + cl.count);
  const ClientContext context{space_, data_, idx, options_.device, options_.task_clock};
  UpdateMsg upd = runTrainTask(q.task, context);
  const std::uint64_t task_id = upd.task_id;
  const double compute_seconds = upd.compute_seconds;
  BytesPtr out = encode(upd);

  const DeviceProfile& prof = profiles_[cl.profile];
  double compute = 0;
  if (options_.compute_time == ComputeTimeMode::kMacs)
    compute = 3.0 * static_cast<double>(computeCost(space_, q.task.config).macs) *
              static_cast<double>(upd.samples) * q.task.options.epochs / (prof.gmacs * 1e9);
  else
    compute = compute_seconds * prof.speed_factor;
  const double bytes_per_s = prof.bandwidth_mbps * 1e6 / 8.0;
  const double arrival =
      q.sent_at + static_cast<double>(q.down_bytes + out->size()) / bytes_per_s + compute;

  std::lock_guard<std::mutex> lock(mu_);
  arrivals_.push_back(Arrival{arrival, task_id, peerName(q.client), std::move(out)});
  compute_seconds_ += compute_seconds;
  ++done_;
  --in_flight_;
  cv_.notify_all();
}

std::optional<Received> VirtualFleet::recv(std::chrono::milliseconds timeout) {
  if (next_register_ < clients_.size()) {
    const std::size_t c = next_register_++;
    RegisterMsg reg;
    reg.client_name = peerName(c);
    reg.device_class = profiles_[clients_[c].profile].name;
    reg.cores = static_cast<std::uint32_t>(options_.torch_threads);
    reg.samples = clients_[c].count;
    reg.data = describeData(data_, std::span<const std::int64_t>(
                                       indices_.data() + clients_[c].offset, clients_[c].count));
    return Received{peerName(c), encode(reg)};
  }
  for (; unposted_ > 0; --unposted_) boost::asio::post(*pool_, [this]() { runNextTask(); });
  std::unique_lock<std::mutex> lock(mu_);
  // Virtual arrival order is only known once every task in flight has finished.
  const bool settled = cv_.wait_for(lock, std::chrono::duration<double>(options_.max_wait_s),
                                    [&] { return in_flight_ == 0; });
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  SFN_ENFORCE(settled, Error, "virtual fleet: tasks still running after ", options_.max_wait_s,
              " s of real time");
  const double horizon = clock_.now() + static_cast<double>(timeout.count()) / 1000.0;
  auto earliest =
      std::min_element(arrivals_.begin(), arrivals_.end(), [](const auto& a, const auto& b) {
        return a.time != b.time ? a.time < b.time : a.task_id < b.task_id;
      });
  if (earliest == arrivals_.end() || earliest->time > horizon) {
    clock_.advanceTo(horizon);
    return std::nullopt;
  }
  clock_.advanceTo(earliest->time);
  Received r{std::move(earliest->peer), std::move(earliest->message)};
  arrivals_.erase(earliest);
  return r;
}

std::size_t VirtualFleet::tasksDone() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

std::size_t VirtualFleet::tasksInFlight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

double VirtualFleet::computeSecondsTotal() const {
  std::lock_guard<std::mutex> lock(mu_);
  return compute_seconds_;
}

std::size_t VirtualFleet::clientStateBytes() const { return sizeof(Client); }

}  // namespace sfn
