#include "sfn/data/partitioner.h"

#include "sfn/core/error.h"
#include "sfn/core/rng.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <utility>

namespace sfn {
namespace {

// Each scheme draws from its own stream, so one run seed gives unrelated IID, Dirichlet,
// shard and train/val shuffles.
constexpr std::uint64_t kIidStream = 0x494944ULL;            // "IID"
constexpr std::uint64_t kDirichletStream = 0x4449524943ULL;  // "DIRIC"
constexpr std::uint64_t kShardStream = 0x5348415244ULL;      // "SHARD"
constexpr int kMaxDirichletAttempts = 1000;

// Our own shuffle, normal and gamma instead of std::shuffle / std::*_distribution, whose
// algorithms are implementation-defined: a federation of machines built with different
// standard libraries must derive the same partition from the same seed.
template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

double standardNormal(Rng& rng) {
  const double u1 = 1.0 - rng.uniform();  // (0, 1], so log() is finite
  const double u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// log of a Gamma(a, 1) draw (Marsaglia-Tsang). Working in logs keeps Dirichlet draws with
// tiny alpha from underflowing to all-zero proportions.
double logGamma(double a, Rng& rng) {
  if (a < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a)
    const double u = 1.0 - rng.uniform();
    return logGamma(a + 1.0, rng) + std::log(u) / a;
  }
  const double d = a - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double x = standardNormal(rng);
    double v = 1.0 + c * x;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = 1.0 - rng.uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x ||
        std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
      return std::log(d) + std::log(v);
    }
  }
}

// Fills `p` with a Dir(alpha, ..., alpha) draw.
void dirichlet(double alpha, Rng& rng, std::vector<double>& p) {
  double hi = -std::numeric_limits<double>::infinity();
  for (auto& x : p) {
    x = logGamma(alpha, rng);
    hi = std::max(hi, x);
  }
  double sum = 0.0;
  for (auto& x : p) {
    x = std::exp(x - hi);
    sum += x;
  }
  for (auto& x : p) x /= sum;
}

void requireClients(std::int64_t num_clients, const char* where) {
  if (num_clients <= 0)
    SFN_THROW(ConfigError, where, ": num_clients = ", num_clients, " must be > 0");
}

// Rejects negative and repeated indices: either would break "every sample exactly once".
void checkPoolIndices(const IndexList& pool, const char* where) {
  IndexList sorted = pool;
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty() && sorted.front() < 0) {
    SFN_THROW(ConfigError, where, ": pool index ", sorted.front(), " is negative");
  }
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) SFN_THROW(ConfigError, where, ": pool index ", *dup, " appears twice");
}

std::int64_t labelOf(std::int64_t idx, const std::vector<std::int64_t>& labels, int num_classes,
                     const char* where) {
  if (idx < 0 || idx >= static_cast<std::int64_t>(labels.size())) {
    SFN_THROW(ConfigError, where, ": sample index ", idx, " is outside the ", labels.size(),
              " labels");
  }
  const std::int64_t y = labels[static_cast<std::size_t>(idx)];
  if (y < 0 || y >= num_classes) {
    SFN_THROW(ConfigError, where, ": label ", y, " of sample ", idx, " is not in [0, ", num_classes,
              ")");
  }
  return y;
}

void sortEach(Partition& p) {
  for (auto& list : p) std::sort(list.begin(), list.end());
}

void checkDirichletArgs(const IndexList& pool, int num_classes, std::int64_t num_clients,
                        double alpha, std::int64_t min_samples) {
  constexpr const char* kWhere = "partitionDirichlet";
  requireClients(num_clients, kWhere);
  if (num_classes <= 0)
    SFN_THROW(ConfigError, kWhere, ": num_classes = ", num_classes, " must be > 0");
  if (!(alpha > 0.0) || !std::isfinite(alpha)) {
    SFN_THROW(ConfigError, kWhere, ": alpha = ", alpha, " must be finite and > 0");
  }
  if (min_samples < 0)
    SFN_THROW(ConfigError, kWhere, ": min_samples = ", min_samples, " is negative");
  checkPoolIndices(pool, kWhere);
  const auto n = static_cast<std::int64_t>(pool.size());
  // Division instead of num_clients * min_samples, which could overflow.
  if (min_samples > 0 && num_clients > n / min_samples) {
    SFN_THROW(ConfigError, kWhere, ": pool of ", n, " samples is too small for ", num_clients,
              " clients with at least ", min_samples, " samples each (needs ",
              static_cast<double>(num_clients) * static_cast<double>(min_samples), ")");
  }
}

// The pool's indices per class, in pool order.
std::vector<IndexList> groupByClass(const IndexList& pool, const std::vector<std::int64_t>& labels,
                                    int num_classes, const char* where) {
  std::vector<IndexList> by_class(static_cast<std::size_t>(num_classes));
  for (const std::int64_t idx : pool) {
    by_class[static_cast<std::size_t>(labelOf(idx, labels, num_classes, where))].push_back(idx);
  }
  return by_class;
}

// Deals one class's samples to the clients in Dirichlet proportions (scratch `props`),
// skipping clients that already hold their fair share.
void dealClass(const IndexList& members, double alpha, double fair_share, Rng& rng,
               std::vector<double>& props, Partition& parts) {
  const std::size_t k = parts.size();
  IndexList idx = members;
  shuffle(idx, rng);
  dirichlet(alpha, rng, props);
  double kept = 0.0;
  for (std::size_t j = 0; j < k; ++j) {
    if (static_cast<double>(parts[j].size()) >= fair_share) props[j] = 0.0;
    kept += props[j];
  }
  // Some client is always below its fair share while samples remain, so kept > 0
  // unless every one of those clients drew an exact zero; then give it all to one.
  if (kept > 0.0) {
    for (auto& x : props) x /= kept;
  } else {
    std::fill(props.begin(), props.end(), 0.0);
    props[rng.below(k)] = 1.0;
  }
  const std::size_t m = idx.size();
  double cum = 0.0;
  std::size_t start = 0;
  for (std::size_t j = 0; j < k; ++j) {
    cum += props[j];
    std::size_t end =
        j + 1 == k
            ? m
            : std::min(m, static_cast<std::size_t>(std::floor(cum * static_cast<double>(m))));
    end = std::max(end, start);
    parts[j].insert(parts[j].end(), idx.begin() + static_cast<std::ptrdiff_t>(start),
                    idx.begin() + static_cast<std::ptrdiff_t>(end));
    start = end;
  }
}

}  // namespace

Partition partitionIid(const IndexList& pool, std::int64_t num_clients, std::uint64_t seed) {
  requireClients(num_clients, "partitionIid");
  checkPoolIndices(pool, "partitionIid");
  const auto n = static_cast<std::int64_t>(pool.size());
  if (n < num_clients) {
    SFN_THROW(ConfigError, "partitionIid: pool of ", n, " samples cannot give each of ",
              num_clients, " clients at least one");
  }
  IndexList perm = pool;
  Rng rng(seed, kIidStream);
  shuffle(perm, rng);
  Partition out(static_cast<std::size_t>(num_clients));
  const std::int64_t base = n / num_clients;
  const std::int64_t extra = n % num_clients;
  auto it = perm.begin();
  for (std::int64_t c = 0; c < num_clients; ++c) {
    const std::int64_t size = base + (c < extra ? 1 : 0);
    out[static_cast<std::size_t>(c)].assign(it, it + size);
    it += size;
  }
  sortEach(out);
  return out;
}

Partition partitionDirichlet(const IndexList& pool, const std::vector<std::int64_t>& labels,
                             int num_classes, std::int64_t num_clients, double alpha,
                             std::uint64_t seed, std::int64_t min_samples) {
  constexpr const char* kWhere = "partitionDirichlet";
  checkDirichletArgs(pool, num_classes, num_clients, alpha, min_samples);
  const auto n = static_cast<std::int64_t>(pool.size());
  const std::vector<IndexList> by_class = groupByClass(pool, labels, num_classes, kWhere);
  const auto k = static_cast<std::size_t>(num_clients);
  // FedML stops feeding a client once it holds its fair share; that keeps client sizes from
  // drifting so far apart that the min_samples retry loop would rarely succeed.
  const double fair_share = static_cast<double>(n) / static_cast<double>(num_clients);
  Rng rng(seed, kDirichletStream);
  Partition parts(k);
  std::vector<double> props(k);
  for (int attempt = 0; attempt < kMaxDirichletAttempts; ++attempt) {
    for (auto& p : parts) p.clear();
    for (const IndexList& members : by_class) {
      if (!members.empty()) dealClass(members, alpha, fair_share, rng, props, parts);
    }
    const bool ok = std::all_of(parts.begin(), parts.end(), [&](const IndexList& p) {
      return static_cast<std::int64_t>(p.size()) >= min_samples;
    });
    if (ok) {
      sortEach(parts);
      return parts;
    }
  }
  SFN_THROW(ConfigError, kWhere, ": no Dirichlet(alpha = ", alpha, ") split of ", n,
            " samples gave all ", num_clients, " clients at least ", min_samples, " samples in ",
            kMaxDirichletAttempts, " attempts; raise alpha or lower num_clients/min_samples");
}

Partition partitionShards(const IndexList& pool, const std::vector<std::int64_t>& labels,
                          std::int64_t num_clients, int shards_per_client, std::uint64_t seed) {
  constexpr const char* kWhere = "partitionShards";
  requireClients(num_clients, kWhere);
  if (shards_per_client <= 0) {
    SFN_THROW(ConfigError, kWhere, ": shards_per_client = ", shards_per_client, " must be > 0");
  }
  checkPoolIndices(pool, kWhere);
  const auto n = static_cast<std::int64_t>(pool.size());
  if (num_clients > n / shards_per_client) {
    SFN_THROW(ConfigError, kWhere, ": pool of ", n, " samples cannot be cut into ", num_clients,
              " x ", shards_per_client, " non-empty shards");
  }
  const std::int64_t num_shards = num_clients * shards_per_client;

  // Ties broken by index so the order (and thus the shards) does not depend on the sort.
  std::vector<std::pair<std::int64_t, std::int64_t>> keyed;
  keyed.reserve(pool.size());
  for (const std::int64_t idx : pool) {
    keyed.emplace_back(labelOf(idx, labels, std::numeric_limits<int>::max(), kWhere), idx);
  }
  std::sort(keyed.begin(), keyed.end());

  std::vector<std::int64_t> shard_ids(static_cast<std::size_t>(num_shards));
  for (std::size_t s = 0; s < shard_ids.size(); ++s) shard_ids[s] = static_cast<std::int64_t>(s);
  Rng rng(seed, kShardStream);
  shuffle(shard_ids, rng);

  Partition out(static_cast<std::size_t>(num_clients));
  for (std::int64_t s = 0; s < num_shards; ++s) {
    const std::int64_t shard = shard_ids[static_cast<std::size_t>(s)];
    const std::int64_t begin = shard * n / num_shards;
    const std::int64_t end = (shard + 1) * n / num_shards;
    auto& dst = out[static_cast<std::size_t>(s / shards_per_client)];
    for (std::int64_t i = begin; i < end; ++i)
      dst.push_back(keyed[static_cast<std::size_t>(i)].second);
  }
  sortEach(out);
  return out;
}

Partition makePartition(const PartitionOptions& opts, const IndexList& pool,
                        const std::vector<std::int64_t>& labels, int num_classes,
                        std::int64_t num_clients, std::uint64_t seed) {
  if (opts.scheme == "iid") return partitionIid(pool, num_clients, seed);
  if (opts.scheme == "dirichlet") {
    return partitionDirichlet(pool, labels, num_classes, num_clients, opts.alpha, seed,
                              opts.min_samples);
  }
  if (opts.scheme == "shards") {
    return partitionShards(pool, labels, num_clients, opts.shards_per_client, seed);
  }
  SFN_THROW(ConfigError, "partition scheme '", opts.scheme,
            "' is unknown (expected iid, dirichlet or shards)");
}

double labelSkew(const Partition& p, const std::vector<std::int64_t>& labels, int num_classes) {
  constexpr const char* kWhere = "labelSkew";
  if (num_classes <= 0)
    SFN_THROW(ConfigError, kWhere, ": num_classes = ", num_classes, " must be > 0");
  const auto nc = static_cast<std::size_t>(num_classes);
  std::vector<std::vector<double>> hist(p.size(), std::vector<double>(nc, 0.0));
  std::vector<double> pool_hist(nc, 0.0);
  double pool_total = 0.0;
  for (std::size_t c = 0; c < p.size(); ++c) {
    for (const std::int64_t idx : p[c]) {
      const auto y = static_cast<std::size_t>(labelOf(idx, labels, num_classes, kWhere));
      hist[c][y] += 1.0;
      pool_hist[y] += 1.0;
      pool_total += 1.0;
    }
  }
  if (pool_total == 0.0) return 0.0;
  double sum = 0.0;
  std::size_t clients = 0;
  for (std::size_t c = 0; c < p.size(); ++c) {
    // An empty client has no label distribution; counting it as 0 or 1 would both mislead.
    if (p[c].empty()) continue;
    const auto size = static_cast<double>(p[c].size());
    double tv = 0.0;
    for (std::size_t y = 0; y < nc; ++y)
      tv += std::abs(hist[c][y] / size - pool_hist[y] / pool_total);
    sum += 0.5 * tv;
    ++clients;
  }
  return sum / static_cast<double>(clients);
}

}  // namespace sfn
