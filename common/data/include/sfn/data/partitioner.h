// Client data partitioners, deterministic from a seed. Every result is a list of index
// lists into one shared Dataset (never a copy of the data).
#pragma once

#include "sfn/data/dataset.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

using Partition = std::vector<IndexList>;

// `pool` is the set of sample indices to distribute (e.g. TrainValSplit::train); `labels`
// is indexed by sample index. Every sample of the pool lands in exactly one client.
// Each client's index list is sorted ascending (which samples, not an order: the local
// trainer shuffles per epoch). Throws ConfigError on invalid arguments, on pool indices
// that repeat or fall outside `labels`, and on labels outside [0, num_classes).

// IID: shuffled, near-equal sizes.
Partition partitionIid(const IndexList& pool, std::int64_t num_clients, std::uint64_t seed);

// Per-class Dirichlet(alpha) as in the paper (and FedML/Hsu et al.): for each class, the
// class's samples are split among clients with proportions ~ Dir(alpha); resampled until
// every client has at least `min_samples`. Throws ConfigError if the pool is too small.
Partition partitionDirichlet(const IndexList& pool, const std::vector<std::int64_t>& labels,
                             int num_classes, std::int64_t num_clients, double alpha,
                             std::uint64_t seed, std::int64_t min_samples = 10);

// Label shards: sort by label, cut into num_clients * shards_per_client shards, deal
// shards_per_client random shards to each client.
Partition partitionShards(const IndexList& pool, const std::vector<std::int64_t>& labels,
                          std::int64_t num_clients, int shards_per_client, std::uint64_t seed);

struct PartitionOptions {
  std::string scheme = "dirichlet";  // iid | dirichlet | shards
  double alpha = 1.0;
  int shards_per_client = 2;
  std::int64_t min_samples = 10;
};
Partition makePartition(const PartitionOptions& opts, const IndexList& pool,
                        const std::vector<std::int64_t>& labels, int num_classes,
                        std::int64_t num_clients, std::uint64_t seed);

// Mean over clients of the total-variation distance between the client's label histogram
// and the pool's: 0 for perfectly IID, approaching 1 for single-class clients.
double labelSkew(const Partition& p, const std::vector<std::int64_t>& labels, int num_classes);

}  // namespace sfn
