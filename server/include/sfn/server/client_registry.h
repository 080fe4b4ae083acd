// Registered clients and their liveness, keyed by the transport's authenticated peer id.
//
// A client's numeric id is a hash of its peer id, so it is stable across server restarts
// (assignment counters in checkpoints stay attached to the right client). Entries are
// small (no per-client buffers), so 100,000 registered clients fit easily. An entry is one
// session: a Register from the same peer replaces it, and prune() forgets sessions that
// ended or went silent, so identities that come and go (new routing ids on every
// connection in plaintext mode) do not pile up. A pruned client that speaks again is told
// it is not registered, and registers anew.
#pragma once

#include "sfn/net/transport.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace sfn {

struct ClientInfo {
  std::uint64_t id = 0;
  PeerId peer;
  std::string name;
  std::string device_class;
  std::uint32_t cores = 0;
  std::uint64_t samples = 0;
  std::int64_t macs_budget = 0;  // 0 = unlimited
  double last_seen = 0.0;
  bool gone = false;  // said Bye, a send to it failed, or its session was ended
};

class ClientRegistry {
 public:
  static std::uint64_t idFor(const PeerId& peer);

  // Adds or refreshes a client. Returns nullptr if its id collides with another peer's.
  const ClientInfo* upsert(const PeerId& peer, ClientInfo info, double now);
  ClientInfo* find(const PeerId& peer);
  const ClientInfo* find(const PeerId& peer) const;
  void touch(const PeerId& peer, double now);
  void markGone(const PeerId& peer);

  // Clients seen within `liveness_s` and not gone, ordered by id (deterministic selection).
  std::vector<const ClientInfo*> available(double now, double liveness_s) const;
  // How many available() would return, without building or sorting the list: waiting for
  // 10,000 clients asks this after every batch of messages.
  std::size_t countAvailable(double now, double liveness_s) const;
  std::size_t size() const { return clients_.size(); }
  // Forgets clients that are gone or not heard from within `stale_after_s`; returns how
  // many. Invalidates every ClientInfo pointer handed out before.
  std::size_t prune(double now, double stale_after_s);

 private:
  std::vector<ClientInfo> clients_;
  std::unordered_map<PeerId, std::size_t> by_peer_;
  std::unordered_map<std::uint64_t, std::size_t> by_id_;
};

}  // namespace sfn
