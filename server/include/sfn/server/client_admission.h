// Who may join a run, and what they are told when they do.
//
// A Register is admitted when the client's data fits the run's SuperNet (channels, image
// size, labels inside its classes) and its sample count is in range, or, in shard mode, when
// the server can size the requested shard of its own dataset. The reply to an admitted
// client is a Welcome that carries the run's settings (run id, design space with its input
// normalisation, and for shard mode the [data] settings), so no setting has to be copied to
// a device by hand. A refused client gets a Reject whose reason names what does not fit;
// nothing is ever trained on data that does not fit.
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/wire/wire.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>

namespace sfn {

// Shard mode: the [data] settings shards are cut with, and the size of shard `index` of
// `count` (nothing when the shard does not exist: index >= count, or too few samples).
struct ShardService {
  ShardSettings settings;  // samples is filled per client
  std::function<std::optional<std::uint64_t>(std::uint32_t index, std::uint32_t count)> size;
};

// An admitted client: the samples to register it with and its Welcome (client_id unset).
struct Admitted {
  std::uint64_t samples = 0;
  WelcomeMsg welcome;
};

class ClientAdmission {
 public:
  ClientAdmission(const DesignSpace& space, std::string server_name, std::string run_id,
                  std::uint64_t max_samples);

  // Without a shard service (the default), shard requests are refused.
  void setShardService(ShardService service) { shards_ = std::move(service); }

  // The decision on one Register: Admitted, or the Reject to send (its reason is for the
  // client's log and names what is wrong).
  std::variant<Admitted, RejectMsg> admit(const RegisterMsg& msg) const;

 private:
  std::variant<Admitted, RejectMsg> admitOwnData(const RegisterMsg& msg) const;
  std::variant<Admitted, RejectMsg> admitShard(const ShardRequest& shard) const;
  WelcomeMsg welcome() const;

  DesignSpace space_;
  std::string space_toml_;
  std::string server_name_;
  std::string run_id_;
  std::uint64_t max_samples_;
  std::optional<ShardService> shards_;
};

}  // namespace sfn
