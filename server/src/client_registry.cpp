#include "sfn/server/client_registry.h"

#include "sfn/core/rng.h"

#include <algorithm>

namespace sfn {

std::uint64_t ClientRegistry::idFor(const PeerId& peer) {
  // FNV-1a then a mixer: stable across processes and builds (std::hash is not).
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : peer) h = (h ^ c) * 0x100000001b3ULL;
  return Rng::mix(h);
}

const ClientInfo* ClientRegistry::upsert(const PeerId& peer, ClientInfo info, double now) {
  info.peer = peer;
  info.id = idFor(peer);
  info.last_seen = now;
  info.gone = false;
  auto it = by_peer_.find(peer);
  if (it != by_peer_.end()) {
    clients_[it->second] = std::move(info);
    return &clients_[it->second];
  }
  if (by_id_.count(info.id)) return nullptr;
  by_id_.emplace(info.id, clients_.size());
  by_peer_.emplace(peer, clients_.size());
  clients_.push_back(std::move(info));
  return &clients_.back();
}

ClientInfo* ClientRegistry::find(const PeerId& peer) {
  auto it = by_peer_.find(peer);
  return it == by_peer_.end() ? nullptr : &clients_[it->second];
}

const ClientInfo* ClientRegistry::find(const PeerId& peer) const {
  auto it = by_peer_.find(peer);
  return it == by_peer_.end() ? nullptr : &clients_[it->second];
}

void ClientRegistry::touch(const PeerId& peer, double now) {
  if (ClientInfo* c = find(peer)) c->last_seen = std::max(c->last_seen, now);
}

void ClientRegistry::markGone(const PeerId& peer) {
  if (ClientInfo* c = find(peer)) c->gone = true;
}

std::vector<const ClientInfo*> ClientRegistry::available(double now, double liveness_s) const {
  std::vector<const ClientInfo*> out;
  out.reserve(clients_.size());
  for (const auto& c : clients_)
    if (!c.gone && now - c.last_seen <= liveness_s) out.push_back(&c);
  std::sort(out.begin(), out.end(),
            [](const ClientInfo* a, const ClientInfo* b) { return a->id < b->id; });
  return out;
}

std::size_t ClientRegistry::countAvailable(double now, double liveness_s) const {
  return static_cast<std::size_t>(std::count_if(
      clients_.begin(), clients_.end(),
      [&](const ClientInfo& c) { return !c.gone && now - c.last_seen <= liveness_s; }));
}

std::size_t ClientRegistry::prune(double now, double stale_after_s) {
  const std::size_t before = clients_.size();
  std::erase_if(clients_,
                [&](const ClientInfo& c) { return c.gone || now - c.last_seen > stale_after_s; });
  if (clients_.size() == before) return 0;
  by_peer_.clear();
  by_id_.clear();
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    by_peer_.emplace(clients_[i].peer, i);
    by_id_.emplace(clients_[i].id, i);
  }
  return before - clients_.size();
}

}  // namespace sfn
