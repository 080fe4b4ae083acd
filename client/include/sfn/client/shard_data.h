// ClientData for experiments: shard `index` of `count` of the run's own dataset
// (sfn-client --partition I --of N). The client reads the dataset from its local copy and
// cuts the shard with the [data] settings of the server's Welcome (dataset, seeds,
// validation fraction, partition scheme), exactly as sfn-sim and the server cut it; it
// trains only on the training part of the split, never on the held-out validation samples.
// The server's size of the shard is checked against the local one, so a different copy of
// the dataset is caught before training (DataError).
#pragma once

#include "sfn/client/client_data.h"
#include "sfn/data/data_source.h"

#include <optional>
#include <string>

namespace sfn {

class ShardData final : public ClientData {
 public:
  // `dir`: the local copy of the run's dataset (empty: the dataset's default folder).
  ShardData(std::uint32_t index, std::uint32_t count, std::string dir);

  DataClaim claim() const override;
  // Loads the dataset (again only when the settings change) and cuts the shard.
  void prepare(const RunSettings& settings) override;
  const Dataset& dataset() const override { return bundle_.train; }
  const IndexList& indices() const override { return indices_; }

 private:
  DataOptions optionsFor(const RunSettings& settings) const;

  std::uint32_t index_;
  std::uint32_t count_;
  std::string dir_;
  std::optional<ShardSettings> loaded_;  // what bundle_ and indices_ were made with
  DataBundle bundle_;
  IndexList indices_;
};

}  // namespace sfn
