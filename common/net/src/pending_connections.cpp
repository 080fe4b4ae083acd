#include "sfn/net/pending_connections.h"

#include "sfn/core/error.h"

#include <iterator>
#include <utility>

namespace sfn {

PendingConnections::PendingConnections(std::size_t cap, std::chrono::milliseconds max_age)
    : cap_(cap), max_age_(max_age) {
  SFN_ENFORCE(max_age.count() > 0, ConfigError, "pending connections: max_age must be > 0 (got ",
              max_age.count(), " ms)");
}

void PendingConnections::accepted(int fd, std::string address, TimePoint now) {
  if (auto it = by_fd_.find(fd); it != by_fd_.end()) erase(it->second);  // a missed close
  by_age_.push_back(Connection{fd, std::move(address), now});
  by_fd_[fd] = std::prev(by_age_.end());
}

void PendingConnections::authenticated(TimePoint now) {
  successes_.push_back(now);
  // A success with nothing recorded is one whose ACCEPTED was never seen: it names nothing.
  while (successes_.size() > by_fd_.size()) successes_.pop_front();
}

bool PendingConnections::heardFrom(int fd) {
  const auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return false;
  dropOneSuccess();  // this connection's, or (if that was missed) the oldest other one
  erase(it->second);
  return true;
}

bool PendingConnections::disconnected(int fd, bool handshake_failed) {
  const auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return false;
  // Closed after its handshake completed, before any message: its success goes with it.
  if (!handshake_failed) dropOneSuccess();
  erase(it->second);
  return true;
}

std::vector<PendingConnections::Connection> PendingConnections::overCap(TimePoint now) {
  forgetOlderThan(now);
  std::vector<Connection> cut;
  if (cap_ == 0) return cut;
  while (pending() > cap_) {
    cut.push_back(by_age_.front());
    erase(by_age_.begin());
    ++evictions_;
  }
  return cut;
}

std::size_t PendingConnections::pending() const { return by_fd_.size() - successes_.size(); }

void PendingConnections::forgetOlderThan(TimePoint now) {
  while (!successes_.empty() && now - successes_.front() >= max_age_) successes_.pop_front();
  while (!by_age_.empty() && now - by_age_.front().accepted >= max_age_) {
    erase(by_age_.begin());
    ++expired_;
  }
}

void PendingConnections::erase(std::list<Connection>::iterator it) {
  by_fd_.erase(it->fd);
  by_age_.erase(it);
  // Never more unidentified successes than connections they could belong to.
  while (successes_.size() > by_fd_.size()) successes_.pop_front();
}

void PendingConnections::dropOneSuccess() {
  if (!successes_.empty()) successes_.pop_front();
}

}  // namespace sfn
