#include "sfn/net/inproc_transport.h"

#include "sfn/core/error.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace sfn {
namespace {

// A bounded FIFO with timed waits. close() wakes every waiter; afterwards pushes fail and
// pops drain what is left, so nothing blocks on a queue whose owner is gone.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}

  SendResult push(T item, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!not_full_.wait_for(lock, timeout, [&] { return closed_ || items_.size() < capacity_; }))
      return {SendStatus::kQueueFull, "queue full (" + std::to_string(capacity_) +
                                          " messages) for " + std::to_string(timeout.count()) +
                                          " ms"};
    if (closed_) return {SendStatus::kClosed, "receiver closed"};
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return {};
  }

  std::optional<T> pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); }))
      return std::nullopt;
    if (items_.empty()) return std::nullopt;  // closed and drained
    T item = std::move(items_.front());
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return item;
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<T> items_;
  bool closed_ = false;
};

using ServerQueue = BoundedQueue<Received>;
using ClientQueue = BoundedQueue<BytesPtr>;

}  // namespace

// The registry of endpoints. Its mutex guards only the lookups: queue waits happen after
// it is released, so one slow receiver never blocks other senders.
class InprocNetworkState {
 public:
  explicit InprocNetworkState(const InprocOptions& opts) : options(opts) {}

  const InprocOptions options;
  std::mutex mu;
  std::shared_ptr<ServerQueue> server_inbox;  // null while no server exists
  std::unordered_map<PeerId, std::shared_ptr<ClientQueue>> clients;
};

namespace {

class InprocServer final : public ServerTransport {
 public:
  InprocServer(std::shared_ptr<InprocNetworkState> state, std::shared_ptr<ServerQueue> inbox)
      : state_(std::move(state)), inbox_(std::move(inbox)) {}

  ~InprocServer() override {
    {
      std::lock_guard lock(state_->mu);
      state_->server_inbox.reset();
    }
    inbox_->close();
  }

  SendResult send(const PeerId& peer, BytesPtr message) override {
    std::shared_ptr<ClientQueue> queue;
    {
      std::lock_guard lock(state_->mu);
      auto it = state_->clients.find(peer);
      if (it != state_->clients.end()) queue = it->second;
    }
    if (!queue) return {SendStatus::kUnknownPeer, "no client '" + peer + "'"};
    SendResult r = queue->push(std::move(message), state_->options.send_timeout);
    // A queue closed under us means the client disconnected between lookup and push.
    if (r.status == SendStatus::kClosed)
      return {SendStatus::kUnknownPeer, "client '" + peer + "' disconnected"};
    return r;
  }

  std::optional<Received> recv(std::chrono::milliseconds timeout) override {
    return inbox_->pop(timeout);
  }

 private:
  std::shared_ptr<InprocNetworkState> state_;
  std::shared_ptr<ServerQueue> inbox_;
};

class InprocClient final : public ClientTransport {
 public:
  InprocClient(std::shared_ptr<InprocNetworkState> state, PeerId peer,
               std::shared_ptr<ClientQueue> inbox)
      : state_(std::move(state)), peer_(std::move(peer)), inbox_(std::move(inbox)) {}

  ~InprocClient() override {
    {
      std::lock_guard lock(state_->mu);
      state_->clients.erase(peer_);
    }
    inbox_->close();
  }

  SendResult send(BytesPtr message) override {
    std::shared_ptr<ServerQueue> server;
    {
      std::lock_guard lock(state_->mu);
      server = state_->server_inbox;
    }
    if (!server) return {SendStatus::kClosed, "no server"};
    return server->push(Received{peer_, std::move(message)}, state_->options.send_timeout);
  }

  std::optional<BytesPtr> recv(std::chrono::milliseconds timeout) override {
    return inbox_->pop(timeout);
  }

 private:
  std::shared_ptr<InprocNetworkState> state_;
  const PeerId peer_;
  std::shared_ptr<ClientQueue> inbox_;
};

}  // namespace

void InprocOptions::validate() const {
  SFN_ENFORCE(server_queue_capacity > 0, ConfigError, "inproc server_queue_capacity must be > 0");
  SFN_ENFORCE(client_queue_capacity > 0, ConfigError, "inproc client_queue_capacity must be > 0");
  SFN_ENFORCE(send_timeout.count() >= 0, ConfigError, "inproc send_timeout must be >= 0");
}

InprocNetwork::InprocNetwork(const InprocOptions& options) {
  options.validate();
  state_ = std::make_shared<InprocNetworkState>(options);
}

std::unique_ptr<ServerTransport> InprocNetwork::server() {
  auto inbox = std::make_shared<ServerQueue>(state_->options.server_queue_capacity);
  {
    std::lock_guard lock(state_->mu);
    SFN_ENFORCE(!state_->server_inbox, ConfigError, "inproc network already has a server");
    state_->server_inbox = inbox;
  }
  return std::make_unique<InprocServer>(state_, std::move(inbox));
}

std::unique_ptr<ClientTransport> InprocNetwork::connect(const PeerId& peer) {
  SFN_ENFORCE(!peer.empty(), ConfigError, "inproc client needs a peer name");
  auto inbox = std::make_shared<ClientQueue>(state_->options.client_queue_capacity);
  {
    std::lock_guard lock(state_->mu);
    SFN_ENFORCE(state_->clients.emplace(peer, inbox).second, ConfigError, "inproc client '", peer,
                "' is already connected");
  }
  return std::make_unique<InprocClient>(state_, peer, std::move(inbox));
}

}  // namespace sfn
