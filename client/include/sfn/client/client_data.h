// What a client trains on, and the run settings it learns from the server's Welcome.
//
// A client does not need to know the run before it connects: its Register describes its
// data (ClientData::claim), the server checks that description against the run's SuperNet,
// and the Welcome brings the run's settings (RunSettings), with which the client makes its
// data ready (ClientData::prepare) before the first task. Three kinds of data:
//   OwnData       (own_data.h)      the device's own samples: local files or an app's
//                                   SampleSource; normalised with the run's statistics
//   ShardData     (shard_data.h)    experiments: shard I of N of the run's own dataset, cut
//                                   with the [data] settings the Welcome carries
//   PreparedData  (prepared_data.h) samples the caller already prepared with the run's own
//                                   pipeline (sfn-sim's fleet of real clients, tests)
#pragma once

#include "sfn/data/dataset.h"
#include "sfn/model/design_space.h"
#include "sfn/wire/wire.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace sfn {

// The settings of the run a client joined, from its Welcome.
struct RunSettings {
  std::string run_id;
  DesignSpace space;                   // the SuperNet, its input shape and normalisation
  std::optional<ShardSettings> shard;  // shard-mode clients only

  // Throws ProtocolError when the Welcome carries no design space, ConfigError when it
  // does not parse or is invalid.
  static RunSettings fromWelcome(const WelcomeMsg& welcome);
};

// What a Register says about the client's data.
struct DataClaim {
  std::uint64_t samples = 0;          // own data; 0 in shard mode
  std::optional<DataInfo> data;       // own data
  std::optional<ShardRequest> shard;  // shard mode
};

class ClientData {
 public:
  virtual ~ClientData() = default;
  virtual DataClaim claim() const = 0;
  // Makes the data ready for the run described by `settings`; called on every Welcome,
  // before any task of that registration. Throws DataError when the data does not fit the
  // run (the client cannot train; exit code 4).
  virtual void prepare(const RunSettings& settings) = 0;
  // The samples to train on: valid after prepare(), until the next prepare().
  virtual const Dataset& dataset() const = 0;
  virtual const IndexList& indices() const = 0;
};

// Input shape and largest label of `indices` in `data` (a Register's DataInfo).
DataInfo describeData(const Dataset& data, std::span<const std::int64_t> indices);

// Throws DataError unless `data`'s images have the input shape of `space`.
void checkInputShape(const Dataset& data, const DesignSpace& space, const std::string& what);

}  // namespace sfn
