#include "sfn/server/shard_catalog.h"

#include "sfn/core/error.h"

namespace sfn {
namespace {

// More shards than this would give a shard-mode Register the power to make the server cut
// a huge partition; no experiment uses more clients than this.
constexpr std::uint32_t kMaxShards = 1'000'000;
constexpr std::size_t kMaxCachedCounts = 16;

}  // namespace

ShardCatalog::ShardCatalog(const DataOptions& options, const DataBundle& data,
                           std::uint64_t partition_seed)
    : partition_(options.partition),
      pool_(data.split.train),
      labels_(data.train.labelVector()),
      num_classes_(data.train.num_classes) {
  settings_.dataset = parseDatasetKind(options.dataset);
  settings_.seed = partition_seed;
  settings_.split_seed = options.split_seed;
  settings_.val_fraction = options.val_fraction;
  settings_.scheme = parsePartitionScheme(options.partition.scheme);
  settings_.alpha = options.partition.alpha;
  settings_.shards_per_client = static_cast<std::uint32_t>(options.partition.shards_per_client);
  settings_.min_samples = options.partition.min_samples;
  settings_.synthetic_train = static_cast<std::uint64_t>(options.synthetic_train);
  settings_.synthetic_test = static_cast<std::uint64_t>(options.synthetic_test);
}

std::optional<std::uint64_t> ShardCatalog::size(std::uint32_t index, std::uint32_t count) {
  if (count == 0 || index >= count || count > kMaxShards || count > pool_.size())
    return std::nullopt;
  auto it = sizes_.find(count);
  if (it == sizes_.end()) {
    // A federation uses one or two counts; a peer cycling through counts must not grow
    // the cache without bound.
    if (sizes_.size() >= kMaxCachedCounts) sizes_.clear();
    std::vector<std::uint64_t> sizes;
    try {
      for (const IndexList& shard :
           makePartition(partition_, pool_, labels_, num_classes_, count, settings_.seed))
        sizes.push_back(shard.size());
    } catch (const ConfigError&) {
      // Too few samples for `count` shards under this scheme: no such shard.
    }
    it = sizes_.emplace(count, std::move(sizes)).first;
  }
  if (index >= it->second.size()) return std::nullopt;
  return it->second[index];
}

ShardService ShardCatalog::service(std::shared_ptr<ShardCatalog> catalog) {
  ShardService s;
  s.settings = catalog->settings();
  s.size = [catalog](std::uint32_t index, std::uint32_t count) {
    return catalog->size(index, count);
  };
  return s;
}

}  // namespace sfn
