// sfn-search: one-shot specialization of a trained SuperNet for many deployment targets.
//
//   sfn-search --checkpoint RUN_OR_FILE --targets T.toml --out DIR [--key signing.key] ...
//   sfn-search keygen --out DIR            Ed25519 signing.key (0600) and signing.pub
//   sfn-search verify DIR --pubkey K       checks an exported model folder (or a folder of them)
//
// The search scores SubNets on a fixed, seeded subset of the run's VALIDATION split, rebuilt
// from the run info stored in the checkpoint (the test split is only used to report the
// winners). One fitness cache serves all targets. Exit codes: 0 ok, 1 runtime error,
// 2 configuration error.
#include "sfn/model/checkpoint.h"
#include "sfn/io/crypto.h"
#include "sfn/data/data_source.h"
#include "sfn/core/error.h"
#include "sfn/train/evaluator.h"
#include "sfn/searcher/evolution_search.h"
#include "sfn/model/latency_table.h"
#include "sfn/train/local_trainer.h"
#include "sfn/searcher/model_exporter.h"
#include "sfn/searcher/pareto_front.h"
#include "sfn/core/rng.h"
#include "sfn/searcher/search_target.h"
#include "sfn/model/supernet.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

namespace fs = std::filesystem;

namespace {

using Json = nlohmann::json;
using Logger = std::shared_ptr<spdlog::logger>;

struct SearchCli {
  std::string checkpoint;
  std::string targets;
  std::string out;
  std::string key;
  sfn::EvolutionOptions evo;
  int val_samples = 1000;  // 0 = the whole validation split
  int bn_samples = 2000;   // training samples for BN re-estimation (trainable BN only)
  int batch = 500;
  int threads = 2;
  std::string device = "cpu";
  std::string data_dir;
  int latency_repeats = 100;
  int latency_threads = 1;  // for targets without a latency table
  double plot_timeout_s = 30;
  std::string log_level = "info";
};

std::string fmtMacs(std::int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(v) / 1e6);
  return buf;
}

std::string fmtOpt(const std::optional<double>& v, const char* fmt = "%.3f",
                   const char* missing = "-") {
  if (!v) return missing;
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, *v);
  return buf;
}

Json optJson(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

void writeText(const fs::path& path, const std::string& text) {
  sfn::writeFileAtomically(path, sfn::asBytes(text));
}

// A run folder (its checkpoints/latest), a checkpoint folder, or a checkpoint file.
fs::path resolveCheckpoint(const std::string& arg) {
  fs::path p = arg;
  if (!fs::exists(p)) SFN_THROW(sfn::ConfigError, "--checkpoint '", arg, "' does not exist");
  if (!fs::is_directory(p)) return p;
  const fs::path dir = fs::exists(p / "checkpoints") ? p / "checkpoints" : p;
  auto latest = sfn::CheckpointDir(dir).latest();
  if (!latest)
    SFN_THROW(sfn::ConfigError, "--checkpoint '", arg, "': no checkpoint in '", dir.string(), "'");
  return *latest;
}

// The data options the run trained with, from the run info of its checkpoint, so that the
// validation split (held out from training) is exactly the run's.
sfn::DataOptions dataOptionsFrom(const Json& run, const sfn::DesignSpace& space,
                                 const std::string& data_dir_override, const Logger& log) {
  if (!run.is_object())
    SFN_THROW(sfn::ConfigError,
              "checkpoint metadata has no 'run' object: the validation split cannot be rebuilt");
  sfn::DataOptions d;
  try {
    d.dataset = run.at("dataset").get<std::string>();
    d.dir = run.value("data_dir", std::string());
    d.val_fraction = run.at("val_fraction").get<double>();
    d.split_seed = run.at("split_seed").get<std::uint64_t>();
    d.synthetic_train = run.value("synthetic_train", d.synthetic_train);
    d.synthetic_test = run.value("synthetic_test", d.synthetic_test);
  } catch (const Json::exception& e) {
    SFN_THROW(sfn::ConfigError, "checkpoint metadata 'run' is incomplete: ", e.what());
  }
  d.synthetic_channels = space.in_channels;
  d.synthetic_image_size = space.image_size;
  d.synthetic_classes = space.num_classes;
  if (d.dataset == "synthetic" && !run.contains("synthetic_train"))
    log->warn(
        "run info does not record the synthetic data set's size; assuming the defaults "
        "({} train, {} test)",
        d.synthetic_train, d.synthetic_test);
  if (!data_dir_override.empty()) d.dir = data_dir_override;
  if (d.val_fraction <= 0)
    SFN_THROW(sfn::ConfigError, "the run held out no validation split (val_fraction ",
              d.val_fraction, "): there is nothing to search on without touching the test set");
  return d;
}

// `n` indices of `all`, chosen by `seed`, ascending (all of them when n <= 0 or n >= size).
sfn::IndexList seededSubset(const sfn::IndexList& all, int n, std::uint64_t seed) {
  sfn::IndexList v = all;
  if (n <= 0 || static_cast<std::size_t>(n) >= v.size()) return v;
  sfn::Rng rng(seed, 0x5EA4C4);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
    std::swap(v[i], v[i + rng.below(v.size() - i)]);
  v.resize(static_cast<std::size_t>(n));
  std::sort(v.begin(), v.end());
  return v;
}

sfn::Ed25519PrivateKey signingKey(const SearchCli& cli, const Logger& log) {
  if (!cli.key.empty()) return sfn::loadPrivateKey(cli.key);
  const fs::path dir = fs::path(cli.out) / "keys";
  fs::create_directories(dir);
  const sfn::Ed25519KeyPair kp = sfn::generateKeyPair();
  sfn::savePrivateKey(dir / "signing.key", kp.privateKey);
  sfn::savePublicKey(dir / "signing.pub", kp.publicKey);
  log->warn(
      "no --key given: generated a new signing key pair in {} (keep signing.key secret; "
      "give signing.pub to whoever verifies the models)",
      dir.string());
  return kp.privateKey;
}

struct Winner {
  const sfn::SearchTarget* target = nullptr;
  const sfn::SearchResult* result = nullptr;
  double val_full = 0.0;
  double test = 0.0;
  std::optional<double> predicted_ms;
  std::optional<double> measured_ms;
  int measured_batch = 1;
  int measured_threads = 1;
  std::string measured_clock;
  std::string export_dir;
};

int runSearch(const SearchCli& cli, const Logger& log) {
  const auto t_start = std::chrono::steady_clock::now();
  SFN_ENFORCE(!cli.checkpoint.empty(), sfn::ConfigError, "--checkpoint is required");
  SFN_ENFORCE(!cli.targets.empty(), sfn::ConfigError, "--targets is required");
  SFN_ENFORCE(!cli.out.empty(), sfn::ConfigError, "--out is required");
  SFN_ENFORCE(cli.batch > 0, sfn::ConfigError, "--batch must be > 0");
  SFN_ENFORCE(cli.val_samples >= 0, sfn::ConfigError, "--val-samples must be >= 0");
  SFN_ENFORCE(cli.bn_samples >= 1, sfn::ConfigError, "--bn-samples must be >= 1");
  SFN_ENFORCE(cli.threads >= 1, sfn::ConfigError, "--threads must be >= 1");
  SFN_ENFORCE(cli.latency_repeats >= 1, sfn::ConfigError, "--latency-repeats must be >= 1");
  SFN_ENFORCE(cli.plot_timeout_s > 0, sfn::ConfigError, "--plot-timeout-s must be > 0");
  cli.evo.validate();
  sfn::setTorchThreads(cli.threads);

  // Everything that can be wrong in the configuration is checked before the slow parts.
  const fs::path ckpt_path = resolveCheckpoint(cli.checkpoint);
  std::vector<sfn::SearchTarget> targets = sfn::loadTargets(cli.targets);
  log->info("reading checkpoint {}", ckpt_path.string());
  sfn::Checkpoint ck = sfn::readCheckpoint(ckpt_path);
  if (!ck.metadata.contains("design_space") || !ck.metadata["design_space"].is_string())
    SFN_THROW(sfn::ConfigError, "checkpoint '", ckpt_path.string(),
              "' has no design_space in its metadata (not an sfn run checkpoint)");
  const sfn::DesignSpace space =
      sfn::DesignSpace::fromToml(ck.metadata["design_space"].get<std::string>());
  for (const auto& t : targets) t.checkSpace(space);
  const Json run_info = ck.metadata.value("run", Json());
  const sfn::DataOptions data_opts = dataOptionsFrom(run_info, space, cli.data_dir, log);
  const sfn::SuperNet supernet(space, std::move(ck.tensors));
  const std::int64_t round = ck.metadata.value("next_round", std::int64_t{-1});
  fs::create_directories(cli.out);
  const sfn::Ed25519PrivateKey key = signingKey(cli, log);
  const std::string ckpt_sha = sfn::toHex(sfn::sha256File(ckpt_path));

  log->info("loading {} data (validation split: {} of the training set, seed {})",
            data_opts.dataset, data_opts.val_fraction, data_opts.split_seed);
  const sfn::DataBundle data = sfn::loadDataBundle(data_opts);
  const sfn::IndexList val_idx = seededSubset(data.split.val, cli.val_samples, cli.evo.seed);
  const sfn::IndexList bn_idx = seededSubset(data.split.train, cli.bn_samples, cli.evo.seed + 1);
  const int bn_batches = (cli.bn_samples + cli.batch - 1) / cli.batch;
  const sfn::Evaluator val_eval(data.train, val_idx, bn_idx, cli.batch, cli.device, bn_batches);
  log->info(
      "SuperNet '{}' (round {}), BN {}; fitness = accuracy on {} of {} validation images; "
      "{} targets",
      space.name, round, sfn::toString(space.bn_mode), val_idx.size(), data.split.val.size(),
      targets.size());

  sfn::EvolutionSearch search(
      space,
      [&](const sfn::SubNetConfig& c) {
        return val_eval.evaluate(supernet, {"", c}).accuracy;
      },
      cli.evo);
  search.onGeneration([&](const sfn::GenerationReport& r) {
    const double el =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    log->info(
        "[{}/{} {}] generation {:>2}/{}  best {:.4f}  {}  MACs {}{}  evaluated {} (cache "
        "hits {})  {:.0f}s",
        r.target_index + 1, r.num_targets, r.target.name, r.generation, r.generations,
        r.best.fitness, r.best.text, fmtMacs(r.best.cost.macs),
        r.best.latency_ms ? "  latency " + fmtOpt(r.best.latency_ms) + " ms" : "", r.total.misses,
        r.total.hits, el);
  });
  const std::vector<sfn::SearchResult> results = search.searchAll(targets);
  log->info("search done: {} SubNets evaluated, {} cache hits", search.stats().misses,
            search.stats().hits);

  // --- winners: test accuracy, latency, export ---
  const sfn::Evaluator test_eval(data.test, {}, bn_idx, cli.batch, cli.device, bn_batches);
  const sfn::Evaluator full_val_eval(data.train, data.split.val, bn_idx, cli.batch, cli.device,
                                     bn_batches);
  const auto bn_data = sfn::sampleBatches(data.train, bn_idx, cli.batch, bn_batches);
  std::vector<Winner> winners;
  Json results_json = Json::array();
  std::ostringstream csv;
  csv << "target,device,feasible,subnet,macs,params,predicted_latency_ms,measured_latency_ms,"
         "val_accuracy_search,val_accuracy,test_accuracy,export_dir\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const auto& t = targets[i];
    Json j = {{"target", t.name},
              {"constraints", t.constraintsJson()},
              {"feasible", r.feasible},
              {"search",
               {{"evaluations", r.stats.misses},
                {"cache_hits", r.stats.hits},
                {"fallbacks", r.fallbacks},
                {"seconds", r.seconds},
                {"best_per_generation", r.best_per_generation}}}};
    if (!r.feasible) {
      log->warn("target {}: infeasible: {}", t.name, r.infeasible_reason);
      j["infeasible_reason"] = r.infeasible_reason;
      csv << t.name << ',' << t.device << ",false,,,,,,,,,\n";
      results_json.push_back(j);
      continue;
    }
    Winner w;
    w.target = &t;
    w.result = &r;
    const sfn::EvalTarget et{t.name, r.best.config};
    w.test = test_eval.evaluate(supernet, et).accuracy;
    w.val_full = full_val_eval.evaluate(supernet, et).accuracy;
    w.predicted_ms = t.predictLatencyMs(space, r.best.config);

    sfn::SubNetModule module = supernet.buildModule(r.best.config);
    module->to(torch::Device(cli.device));
    module->reestimateBn(bn_data);  // no-op with frozen BN
    module->eval();
    // Measured here under the table's conditions (batch size, threads), so that it can be
    // compared with the prediction; without a table, batch 1 with --threads.
    sfn::LatencyProfileOptions lat;
    lat.device = cli.device;
    lat.repeats = cli.latency_repeats;
    lat.batch_size = t.latency ? t.latency->info().batch_size : 1;
    w.measured_batch = lat.batch_size;
    w.measured_threads = t.latency ? t.latency->info().torch_threads : cli.latency_threads;
    sfn::setTorchThreads(w.measured_threads);
    w.measured_clock = std::string(sfn::toString(lat.resolvedClock()));
    w.measured_ms = sfn::measureSubNetMs(*module, lat);
    sfn::setTorchThreads(cli.threads);

    sfn::ModelInfo info;
    info.target = t.name;
    info.constraints = t.constraintsJson();
    info.macs = r.best.cost.macs;
    info.params = r.best.cost.params;
    info.val_accuracy = w.val_full;
    info.test_accuracy = w.test;
    info.predicted_latency_ms = w.predicted_ms;
    info.measured_latency_ms = w.measured_ms;
    info.latency_device = t.device;
    info.source = {{"checkpoint", fs::absolute(ckpt_path).string()},
                   {"checkpoint_sha256", ckpt_sha},
                   {"round", round},
                   {"run", run_info},
                   {"search",
                    {{"seed", cli.evo.seed},
                     {"population", cli.evo.population},
                     {"generations", cli.evo.generations},
                     {"val_samples", val_idx.size()},
                     {"val_accuracy_search", r.best.fitness}}}};
    const fs::path dir = fs::path(cli.out) / t.name;
    module->to(torch::kCPU);
    sfn::exportModel(*module, info, dir, key);
    w.export_dir = dir.string();
    log->info("target {}: exported {} to {}", t.name, r.best.text, w.export_dir);

    j.update({{"subnet", r.best.text},
              {"macs", r.best.cost.macs},
              {"params", r.best.cost.params},
              {"predicted_latency_ms", optJson(w.predicted_ms)},
              {"measured_latency_ms", optJson(w.measured_ms)},
              {"measured_latency_batch", w.measured_batch},
              {"measured_latency_threads", w.measured_threads},
              {"measured_latency_clock", w.measured_clock},
              {"val_accuracy_search", r.best.fitness},
              {"val_accuracy", w.val_full},
              {"test_accuracy", w.test},
              {"export_dir", w.export_dir}});
    csv << t.name << ',' << t.device << ",true," << r.best.text << ',' << r.best.cost.macs << ','
        << r.best.cost.params << ',' << fmtOpt(w.predicted_ms, "%.4f", "") << ','
        << fmtOpt(w.measured_ms, "%.4f", "") << ',' << r.best.fitness << ',' << w.val_full << ','
        << w.test << ',' << w.export_dir << '\n';
    results_json.push_back(j);
    winners.push_back(w);
  }

  // --- Pareto front of everything evaluated ---
  // One latency column per distinct table, named by its device (suffixed if two tables
  // claim the same device name).
  std::vector<std::pair<std::string, const sfn::LatencyTable*>> tables;
  std::map<std::string, std::string> device_of_path;
  for (const auto& t : targets) {
    if (!t.latency || device_of_path.count(t.latency_table_path)) continue;
    std::string name = t.latency->info().device;
    for (int k = 2;
         std::any_of(tables.begin(), tables.end(), [&](const auto& p) { return p.first == name; });
         ++k)
      name = t.latency->info().device + "#" + std::to_string(k);
    device_of_path[t.latency_table_path] = name;
    tables.emplace_back(name, t.latency.get());
  }
  std::vector<sfn::ParetoPoint> points;
  for (const auto& e : search.evaluated()) {
    sfn::ParetoPoint p{e.text, e.cost.macs, e.cost.params, e.fitness, {}};
    for (const auto& [name, table] : tables) p.latency_ms[name] = table->predictMs(space, e.config);
    points.push_back(std::move(p));
  }
  const sfn::ParetoFront front(std::move(points));
  const fs::path out = cli.out;
  front.writePointsCsv((out / "evaluated.csv").string());
  front.writeFrontCsv((out / "pareto.csv").string());
  std::vector<sfn::ParetoWinner> plot_winners;
  for (const auto& w : winners)
    plot_winners.push_back({w.target->name, w.result->best.cost.macs, w.result->best.fitness});
  const sfn::PlotResult plot = front.writePlot(
      (out / "pareto.png").string(), plot_winners,
      "sfn-search: " + std::to_string(front.points().size()) + " SubNets of '" + space.name +
          "' (validation accuracy on " + std::to_string(val_idx.size()) + " images)",
      std::chrono::milliseconds(static_cast<long long>(cli.plot_timeout_s * 1000)));
  if (!plot.written) log->warn("pareto.png skipped: {}", plot.message);

  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  Json summary = {{"checkpoint", fs::absolute(ckpt_path).string()},
                  {"checkpoint_sha256", ckpt_sha},
                  {"round", round},
                  {"design_space", space.name},
                  {"targets_file", cli.targets},
                  {"options",
                   {{"population", cli.evo.population},
                    {"generations", cli.evo.generations},
                    {"parent_ratio", cli.evo.parent_ratio},
                    {"mutation_ratio", cli.evo.mutation_ratio},
                    {"gene_prob", cli.evo.gene_prob},
                    {"seed", cli.evo.seed},
                    {"max_attempts", cli.evo.max_attempts},
                    {"warm_start", cli.evo.warm_start},
                    {"val_samples", val_idx.size()},
                    {"threads", at::get_num_threads()},
                    {"device", cli.device}}},
                  {"evaluations", search.stats().misses},
                  {"cache_hits", search.stats().hits},
                  {"pareto_points", front.front().size()},
                  {"wall_s", wall},
                  {"results", results_json}};
  writeText(out / "results.json", summary.dump(2) + "\n");
  writeText(out / "results.csv", csv.str());

  std::printf("\n%-14s %-62s %8s %8s %9s %9s %8s %8s\n", "target", "SubNet", "MACs", "params",
              "lat pred", "lat meas", "val acc", "test acc");
  std::size_t wi = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i].feasible) {
      std::printf("%-14s infeasible: %s\n", targets[i].name.c_str(),
                  results[i].infeasible_reason.c_str());
      continue;
    }
    const Winner& w = winners[wi++];
    const auto& b = w.result->best;
    std::printf("%-14s %-62s %8s %8lld %9s %9s %8.4f %8.4f\n", w.target->name.c_str(),
                b.text.c_str(), fmtMacs(b.cost.macs).c_str(), static_cast<long long>(b.cost.params),
                fmtOpt(w.predicted_ms).c_str(), fmtOpt(w.measured_ms).c_str(), w.val_full, w.test);
  }
  std::printf(
      "latencies in ms per batch: predicted from the target's table; measured here with "
      "the table's threads and batch size (else %d thread(s), batch 1)\n",
      cli.latency_threads);
  std::printf("%lld SubNets evaluated, %lld cache hits, %zu on the Pareto front; %.0f s\n",
              static_cast<long long>(search.stats().misses),
              static_cast<long long>(search.stats().hits), front.front().size(), wall);
  std::printf("results: %s\n", (out / "results.csv").string().c_str());
  return 0;
}

int keygen(const std::string& out_dir) {
  fs::create_directories(out_dir);
  const sfn::Ed25519KeyPair kp = sfn::generateKeyPair();
  const fs::path secret = fs::path(out_dir) / "signing.key";
  const fs::path pub = fs::path(out_dir) / "signing.pub";
  sfn::savePrivateKey(secret, kp.privateKey);
  sfn::savePublicKey(pub, kp.publicKey);
  std::cout << "signing key: " << secret.string() << " (secret, mode 0600)\n"
            << "public key:  " << pub.string() << " (give it to whoever verifies the models)"
            << std::endl;
  return 0;
}

// A model folder, or a folder of model folders (an sfn-search --out folder).
int verify(const std::string& dir, const std::string& pubkey) {
  const sfn::Ed25519PublicKey key = sfn::loadPublicKey(pubkey);
  std::vector<fs::path> dirs;
  if (fs::exists(fs::path(dir) / "manifest.json") || !fs::is_directory(dir)) {
    dirs.push_back(dir);
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && fs::exists(e.path() / "manifest.json")) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    if (dirs.empty()) dirs.push_back(dir);  // let the verifier say what is missing
  }
  bool ok = true;
  for (const auto& d : dirs) {
    const sfn::VerifyReport r = sfn::verifyModelDir(d, key);
    if (r.ok()) {
      std::cout << d.string() << ": OK (signature and file digests valid)" << std::endl;
      continue;
    }
    ok = false;
    std::cout << d.string() << ": FAILED" << std::endl;
    for (const auto& p : r.problems) std::cout << "  " << p << std::endl;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "sfn-search: find, for every deployment target (MACs, params and/or latency budget on a "
      "device), the most accurate SubNet of a trained SuperNet by evolutionary search on the "
      "validation split; export each winner as a signed TorchScript model.\n"
      "Exit codes: 0 ok, 1 runtime error, 2 configuration error."};
  app.require_subcommand(0, 1);
  SearchCli cli;
  // Every fitness evaluation is a real forward pass over the validation subset, so the CLI
  // defaults are smaller than OFA's (population 100), which scores with a cheap predictor.
  cli.evo.population = 32;
  cli.evo.generations = 10;
  app.add_option("--checkpoint", cli.checkpoint,
                 "run folder (uses checkpoints/latest), checkpoint folder or checkpoint file");
  app.add_option("--targets", cli.targets, "targets TOML ([[target]] tables)");
  app.add_option("--out", cli.out, "output folder (results, Pareto front, one model per target)");
  app.add_option("--key", cli.key,
                 "Ed25519 signing key (sfn-search keygen); default: a new pair in OUT/keys/");
  app.add_option("--population", cli.evo.population, "population size")->capture_default_str();
  app.add_option("--generations", cli.evo.generations, "generations")->capture_default_str();
  app.add_option("--parent-ratio", cli.evo.parent_ratio, "fraction kept as parents")
      ->capture_default_str();
  app.add_option("--mutation-ratio", cli.evo.mutation_ratio, "fraction of mutants per generation")
      ->capture_default_str();
  app.add_option("--gene-prob", cli.evo.gene_prob, "per-gene mutation probability")
      ->capture_default_str();
  app.add_option("--warm-start", cli.evo.warm_start,
                 "fraction of each target's first population taken from SubNets already "
                 "evaluated for earlier targets (0 = purely random, as OFA)")
      ->capture_default_str();
  app.add_option("--max-attempts", cli.evo.max_attempts,
                 "resampling attempts for a candidate that violates the budgets")
      ->capture_default_str();
  app.add_option("--seed", cli.evo.seed, "search seed (also picks the validation subset)")
      ->capture_default_str();
  app.add_option("--val-samples", cli.val_samples,
                 "validation images the fitness is measured on (0 = the whole split)")
      ->capture_default_str();
  app.add_option("--bn-samples", cli.bn_samples,
                 "training images for BN re-estimation per SubNet (trainable BN only)")
      ->capture_default_str();
  app.add_option("--batch", cli.batch, "evaluation batch size")->capture_default_str();
  app.add_option("--threads", cli.threads, "torch intra-op threads")->capture_default_str();
  app.add_option("--device", cli.device, "torch device (cpu, cuda:0)")->capture_default_str();
  app.add_option("--data-dir", cli.data_dir, "data folder, if not where the run found it");
  app.add_option("--latency-repeats", cli.latency_repeats,
                 "timed samples when measuring a winner's latency")
      ->capture_default_str();
  app.add_option("--latency-threads", cli.latency_threads,
                 "torch threads when measuring the latency of a winner whose target has no "
                 "latency table (with a table: the table's thread count)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--plot-timeout-s", cli.plot_timeout_s, "how long gnuplot may take")
      ->capture_default_str();
  app.add_option("--log-level", cli.log_level, "trace | debug | info | warn | error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();

  auto* kg = app.add_subcommand("keygen", "write an Ed25519 signing key pair");
  std::string kg_out = ".";
  kg->add_option("--out", kg_out, "folder for signing.key (mode 0600) and signing.pub")
      ->capture_default_str();
  auto* vf = app.add_subcommand("verify", "verify an exported model folder (or a folder of them)");
  std::string vf_dir;
  std::string vf_key;
  vf->add_option("dir", vf_dir, "model folder")->required();
  vf->add_option("--pubkey", vf_key, "signing.pub of the exporter")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  const char* what = kg->parsed() ? "keygen" : vf->parsed() ? "verify" : "search";
  try {
    if (kg->parsed()) return keygen(kg_out);
    if (vf->parsed()) return verify(vf_dir, vf_key);
    auto log = spdlog::stderr_color_mt("sfn-search");
    log->set_level(spdlog::level::from_str(cli.log_level));
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    return runSearch(cli, log);
  } catch (const sfn::ConfigError& e) {
    std::cerr << "sfn-search " << what << ": configuration error: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sfn-search " << what << ": " << e.what() << std::endl;
    return 1;
  }
}
