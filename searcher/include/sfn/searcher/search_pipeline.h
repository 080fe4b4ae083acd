// The whole one-shot search of sfn-search as one library call, so that tests, benchmarks
// and the CLI run the same code:
//   1. load: the checkpoint, the targets (checked against its design space), the run's data
//      options from its metadata; everything a configuration can get wrong fails here,
//      before the slow parts and before OUT is created;
//   2. search: evolution per target on a fixed, seeded subset of the run's VALIDATION split
//      (rebuilt from the run info in the checkpoint), one fitness cache for all targets;
//   3. winners: accuracy on the whole validation split and the test split (reported only),
//      latency measured here, export as a TorchScript model per target, signed with --key
//      (without it unsigned: no key is ever generated or written into OUT);
//   4. report: evaluated.csv, pareto.csv, pareto.png, results.json and results.csv in OUT.
#pragma once

#include "sfn/core/error.h"
#include "sfn/core/exit_code.h"
#include "sfn/data/dataset.h"
#include "sfn/searcher/evolution_search.h"
#include "sfn/searcher/model_exporter.h"

#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sfn {

// Options of one search; the error messages name the sfn-search flags.
struct SearchPipelineOptions {
  // Every fitness evaluation is a real forward pass over the validation subset, so the
  // defaults are smaller than OFA's (population 100), which scores with a cheap predictor.
  SearchPipelineOptions() {
    evo.population = 32;
    evo.generations = 10;
  }

  std::string checkpoint;  // run folder (its checkpoints/latest), checkpoint folder or file
  std::string targets;     // targets TOML
  std::string out;         // output folder
  // Ed25519 signing key (sfn-search keygen). Empty: the models are exported unsigned (their
  // manifests say "signed": false, `verify` fails them) and a warning is logged; no key is
  // generated, so none ever lands in OUT beside the models it would vouch for.
  std::string key;
  EvolutionOptions evo;
  int val_samples = 1000;  // validation images the fitness is measured on; 0 = all
  int bn_samples = 2000;   // training images for BN re-estimation (trainable BN only)
  int batch = 500;
  int threads = 2;  // torch intra-op threads
  std::string device = "cpu";
  std::string data_dir;  // data folder, if not where the run found it
  int latency_repeats = 100;
  int latency_threads = 1;  // when measuring a winner whose target has no latency table
  double plot_timeout_s = 30;

  void validate() const;  // throws ConfigError naming the flag
};

// What the search found for one target.
struct TargetOutcome {
  std::string target;
  std::string device;
  bool feasible = false;
  std::string infeasible_reason;  // set when !feasible; the fields below only when feasible
  std::string subnet;             // canonical text
  SubNetConfig config;
  Cost cost;
  double val_accuracy_search = 0.0;  // the fitness: on the validation subset
  double val_accuracy = 0.0;         // on the whole validation split
  double test_accuracy = 0.0;
  std::optional<double> predicted_latency_ms;  // from the target's latency table
  std::optional<double> measured_latency_ms;   // measured here
  int measured_batch = 1;
  int measured_threads = 1;
  std::string measured_clock;
  std::filesystem::path export_dir;
};

struct SearchReport {
  std::filesystem::path checkpoint;
  std::string checkpoint_sha256;
  std::int64_t round = -1;  // the checkpoint's next_round
  std::string design_space;
  std::size_t val_samples = 0;          // size of the validation subset searched on
  std::vector<TargetOutcome> outcomes;  // in the order of the targets file
  CacheStats stats;                     // the shared fitness cache, all targets
  std::size_t pareto_points = 0;
  double wall_s = 0.0;
  std::filesystem::path results_csv;
  std::filesystem::path results_json;
};

// Thrown when `stop` was set during a search; OUT may hold the models exported so far but
// no results files.
class SearchStopped : public Interrupted {
 public:
  using Interrupted::Interrupted;
};

// Runs the search described at the top of this file and writes its files into opts.out.
// `stop` is polled before every fitness evaluation and every winner's export. Sets torch's
// thread count. Throws ConfigError for bad options, targets or checkpoints (before writing
// anything), IoError/DataError for unreadable inputs or failed writes, SearchStopped.
SearchReport runSearchPipeline(const SearchPipelineOptions& opts,
                               const std::shared_ptr<spdlog::logger>& log,
                               const std::atomic<bool>& stop);

// A run folder (its checkpoints/latest), a checkpoint folder, or a checkpoint file; throws
// ConfigError naming --checkpoint if there is none.
std::filesystem::path resolveCheckpoint(const std::string& arg);

// `n` indices of `all`, chosen by `seed`, ascending (all of them when n <= 0 or n >= size).
// The searcher's validation subset (seed) and BN re-estimation subset (seed + 1).
IndexList seededSubset(const IndexList& all, int n, std::uint64_t seed);

// The table sfn-search prints at the end: one line per target, then the totals.
void printSearchSummary(std::FILE* out, const SearchReport& report, int latency_threads);

// The `verify` command: checks a model folder, or every model folder inside `dir` (an
// sfn-search OUT), with the public key file `pubkey`, printing one verdict per folder (and
// its problems) to `out`. Returns kOk when all verify, kDataIntegrity otherwise. Throws
// IoError/ConfigError if the key cannot be read.
ExitCode verifyModelFolders(const std::filesystem::path& dir, const std::filesystem::path& pubkey,
                            std::FILE* out);

}  // namespace sfn
