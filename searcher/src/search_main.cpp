// sfn-search: one-shot specialization of a trained SuperNet for many deployment targets.
//
//   sfn-search --checkpoint RUN_OR_FILE --targets T.toml -o DIR [--key signing.key] ...
//   sfn-search keygen -o DIR [--force]     Ed25519 signing.key (0600) and signing.pub
//   sfn-search verify DIR --pubkey K       checks an exported model folder (or a folder of them)
//
// The pipeline itself is runSearchPipeline (search_pipeline.h); this file is its command line.
#include "sfn/app/app_main.h"
#include "sfn/app/key_files.h"
#include "sfn/app/stop_signal.h"
#include "sfn/searcher/search_pipeline.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

namespace {

void addEvolutionOptions(CLI::App& app, sfn::EvolutionOptions& evo) {
  app.add_option("--population", evo.population, "population size")->capture_default_str();
  app.add_option("--generations", evo.generations, "generations")->capture_default_str();
  app.add_option("--parent-ratio", evo.parent_ratio, "fraction kept as parents")
      ->capture_default_str();
  app.add_option("--mutation-ratio", evo.mutation_ratio, "fraction of mutants per generation")
      ->capture_default_str();
  app.add_option("--gene-prob", evo.gene_prob, "per-gene mutation probability")
      ->capture_default_str();
  app.add_option("--warm-start", evo.warm_start,
                 "fraction of each target's first population taken from SubNets already "
                 "evaluated for earlier targets (0 = purely random, as OFA)")
      ->capture_default_str();
  app.add_option("--max-attempts", evo.max_attempts,
                 "resampling attempts for a candidate that violates the budgets")
      ->capture_default_str();
  app.add_option("--seed", evo.seed, "search seed (also picks the validation subset)")
      ->capture_default_str();
}

void addSearchOptions(CLI::App& app, sfn::SearchPipelineOptions& o) {
  app.add_option("--checkpoint", o.checkpoint,
                 "run folder (uses checkpoints/latest), checkpoint folder or checkpoint file")
      ->check(CLI::ExistingPath);
  app.add_option("--targets", o.targets, "targets TOML ([[target]] tables)")
      ->check(CLI::ExistingFile);
  app.add_option("-o,--out", o.out, "output folder (results, Pareto front, one model per target)");
  app.add_option("--key", o.key,
                 "Ed25519 signing key (sfn-search keygen; keep it outside OUT). Without it the "
                 "models are exported unsigned: their manifests say \"signed\": false, a "
                 "warning is logged, `verify` fails them (exit 4), and no key is written")
      ->check(CLI::ExistingFile);
  addEvolutionOptions(app, o.evo);
  app.add_option("--val-samples", o.val_samples,
                 "validation images the fitness is measured on (0 = the whole split)")
      ->capture_default_str();
  app.add_option("--bn-samples", o.bn_samples,
                 "training images for BN re-estimation per SubNet (trainable BN only)")
      ->capture_default_str();
  app.add_option("--batch", o.batch, "evaluation batch size")->capture_default_str();
  app.add_option("--threads", o.threads, "torch intra-op threads")->capture_default_str();
  app.add_option("--device", o.device, "torch device (cpu, cuda:0)")->capture_default_str();
  app.add_option("--data-dir", o.data_dir, "data folder, if not where the run found it");
  app.add_option("--latency-repeats", o.latency_repeats,
                 "timed samples when measuring a winner's latency")
      ->capture_default_str();
  app.add_option("--latency-threads", o.latency_threads,
                 "torch threads when measuring the latency of a winner whose target has no "
                 "latency table (with a table: the table's thread count)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--plot-timeout-s", o.plot_timeout_s, "how long gnuplot may take")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  sfn::AppMain app("sfn-search",
                   "sfn-search: find, for every deployment target (MACs, params and/or latency "
                   "budget on a device), the most accurate SubNet of a trained SuperNet by "
                   "evolutionary search on the validation split; export each winner as a "
                   "TorchScript model, signed with --key.",
                   "4 also when `verify` finds a model that fails verification. 130 follows "
                   "SIGINT/SIGTERM: no results are written.");
  CLI::App& cli = app.cli();
  cli.require_subcommand(0, 1);
  sfn::SearchPipelineOptions opts;
  addSearchOptions(cli, opts);

  auto* kg = cli.add_subcommand(
      "keygen", "write an Ed25519 signing key pair (never overwrites without --force)");
  std::string kg_out = ".";
  kg->add_option("-o,--out", kg_out, "folder for signing.key (mode 0600) and signing.pub")
      ->capture_default_str();
  bool kg_force = false;
  sfn::addKeygenForceFlag(*kg, kg_force);
  auto* vf = cli.add_subcommand("verify", "verify an exported model folder (or a folder of them)");
  std::string vf_dir;
  std::string vf_key;
  vf->add_option("dir", vf_dir, "model folder")->required()->check(CLI::ExistingDirectory);
  vf->add_option("--pubkey", vf_key, "signing.pub of the exporter")
      ->required()
      ->check(CLI::ExistingFile);

  return app.run(argc, argv, [&] {
    if (kg->parsed())
      return sfn::runKeygen(kg_out, "signing", sfn::KeyType::kEd25519,
                            "give it to whoever verifies the models", kg_force);
    if (vf->parsed()) return sfn::verifyModelFolders(vf_dir, vf_key, stdout);
    const sfn::StopSignal stop;
    const sfn::SearchReport report = sfn::runSearchPipeline(opts, app.logger(), stop.flag());
    sfn::printSearchSummary(stdout, report, opts.latency_threads);
    // A target no SubNet meets has no model: the caller must not go on as if it had one.
    bool all_met = true;
    for (const auto& o : report.outcomes)
      if (!o.feasible) {
        app.logger()->error("target {}: no SubNet of the search meets it: {}", o.target,
                            o.infeasible_reason);
        all_met = false;
      }
    return all_met ? sfn::ExitCode::kOk : sfn::ExitCode::kDataIntegrity;
  });
}
