// The server's view of shard mode: the sizes of the shards its own dataset is cut into,
// for shard-mode clients (sfn-client --partition I --of N) that register without knowing
// the run's settings. The shards are cut exactly as sfn-sim and the client cut them
// (makePartition over the training part of the split, with the run's seed), so the size
// the server registers a client with is the size of the shard the client trains on.
#pragma once

#include "sfn/data/data_source.h"
#include "sfn/server/client_admission.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace sfn {

class ShardCatalog {
 public:
  // `data` is the server's loaded bundle (its split and training labels are copied).
  ShardCatalog(const DataOptions& options, const DataBundle& data, std::uint64_t partition_seed);

  // The size of shard `index` of `count`; nothing if index >= count or the training data
  // cannot be cut into `count` shards (too few samples). Partitions are computed once per
  // count and cached.
  std::optional<std::uint64_t> size(std::uint32_t index, std::uint32_t count);

  // What shard-mode clients are sent (samples unset).
  ShardSettings settings() const { return settings_; }

  // A ShardService sharing `catalog`, for ClientAdmission::setShardService.
  static ShardService service(std::shared_ptr<ShardCatalog> catalog);

 private:
  PartitionOptions partition_;
  ShardSettings settings_;
  IndexList pool_;
  std::vector<std::int64_t> labels_;
  int num_classes_ = 0;
  std::map<std::uint32_t, std::vector<std::uint64_t>> sizes_;  // count -> size per shard
};

}  // namespace sfn
