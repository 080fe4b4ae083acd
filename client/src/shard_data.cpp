#include "sfn/client/shard_data.h"

#include "sfn/core/error.h"
#include "sfn/data/partitioner.h"

namespace sfn {

ShardData::ShardData(std::uint32_t index, std::uint32_t count, std::string dir)
    : index_(index), count_(count), dir_(std::move(dir)) {
  if (count_ == 0 || index_ >= count_)
    SFN_THROW(ConfigError, "--partition must be in [0, --of), got ", index_, " of ", count_);
}

DataClaim ShardData::claim() const {
  DataClaim c;
  c.shard = ShardRequest{index_, count_};
  return c;
}

DataOptions ShardData::optionsFor(const RunSettings& settings) const {
  const ShardSettings& s = *settings.shard;
  DataOptions o;
  o.dataset = std::string(toString(s.dataset));
  o.dir = dir_;
  o.val_fraction = s.val_fraction;
  o.split_seed = s.split_seed;
  o.synthetic_train = static_cast<std::int64_t>(s.synthetic_train);
  o.synthetic_test = static_cast<std::int64_t>(s.synthetic_test);
  o.synthetic_channels = settings.space.in_channels;
  o.synthetic_image_size = settings.space.image_size;
  o.synthetic_classes = settings.space.num_classes;
  o.partition.scheme = std::string(toString(s.scheme));
  o.partition.alpha = s.alpha;
  o.partition.shards_per_client = static_cast<int>(s.shards_per_client);
  o.partition.min_samples = s.min_samples;
  return o;
}

void ShardData::prepare(const RunSettings& settings) {
  if (!settings.shard)
    SFN_THROW(DataError, "shard ", index_, " of ", count_,
              ": the server's Welcome carries no shard settings");
  if (loaded_ && *loaded_ == *settings.shard) return;
  const DataOptions options = optionsFor(settings);
  bundle_ = loadDataBundle(options);  // validates the options: ConfigError names the value
  checkInputShape(bundle_.train, settings.space, "dataset " + options.dataset);
  Partition parts =
      makePartition(options.partition, bundle_.split.train, bundle_.train.labelVector(),
                    bundle_.train.num_classes, count_, settings.shard->seed);
  indices_ = std::move(parts.at(index_));
  if (indices_.size() != settings.shard->samples)
    SFN_THROW(DataError, "shard ", index_, " of ", count_, " holds ", indices_.size(),
              " samples here but ", settings.shard->samples,
              " on the server: this client's copy of the dataset differs from the server's");
  loaded_ = settings.shard;
}

}  // namespace sfn
