#include "sfn/searcher/search_pipeline.h"

#include "sfn/core/rng.h"
#include "sfn/data/data_source.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/io/crypto.h"
#include "sfn/model/checkpoint.h"
#include "sfn/model/latency_table.h"
#include "sfn/model/supernet.h"
#include "sfn/searcher/pareto_front.h"
#include "sfn/searcher/search_target.h"
#include "sfn/train/evaluator.h"
#include "sfn/train/local_trainer.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

namespace sfn {

namespace fs = std::filesystem;

namespace {

using Json = nlohmann::json;
using Logger = std::shared_ptr<spdlog::logger>;

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
  writeFileAtomically(path, asBytes(text));
}

// The data options the run trained with, from the run info of its checkpoint, so that the
// validation split (held out from training) is exactly the run's.
DataOptions dataOptionsFrom(const Json& run, const DesignSpace& space,
                            const std::string& data_dir_override, const Logger& log) {
  if (!run.is_object())
    SFN_THROW(ConfigError,
              "checkpoint metadata has no 'run' object: the validation split cannot be rebuilt");
  DataOptions d;
  try {
    d.dataset = run.at("dataset").get<std::string>();
    d.dir = run.value("data_dir", std::string());
    d.val_fraction = run.at("val_fraction").get<double>();
    d.split_seed = run.at("split_seed").get<std::uint64_t>();
    d.synthetic_train = run.value("synthetic_train", d.synthetic_train);
    d.synthetic_test = run.value("synthetic_test", d.synthetic_test);
  } catch (const Json::exception& e) {
    SFN_THROW(ConfigError, "checkpoint metadata 'run' is incomplete: ", e.what());
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
    SFN_THROW(ConfigError, "the run held out no validation split (val_fraction ", d.val_fraction,
              "): there is nothing to search on without touching the test set");
  return d;
}

// The key given with --key; none without it. A key generated here would sit in OUT beside
// the models it signs, so whoever can change the models could sign them again: such a
// signature would prove nothing.
std::optional<Ed25519PrivateKey> signingKey(const SearchPipelineOptions& opts, const Logger& log) {
  if (!opts.key.empty()) return loadPrivateKey(opts.key);
  log->warn(
      "no --key given: the models are exported UNSIGNED (manifest \"signed\": false; "
      "`sfn-search verify` fails them). Sign them with a key kept outside the output "
      "folder: sfn-search keygen -o DIR, then --key DIR/signing.key");
  return std::nullopt;
}

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

// The CPU's model name from /proc/cpuinfo ("model name", or "Hardware"/"Processor" on ARM).
std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("model name") && !line.starts_with("Hardware") &&
        !line.starts_with("Processor"))
      continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto start = line.find_first_not_of(" \t", colon + 1);
    if (start != std::string::npos) return line.substr(start);
  }
  return "unknown";
}

// The run info without host paths (data_dir, config): what a manifest may say of the run.
Json portableRunInfo(const Json& run) {
  Json out = run.is_object() ? run : Json::object();
  out.erase("data_dir");
  if (out.contains("config") && out["config"].is_string())
    out["config"] = fs::path(out["config"].get<std::string>()).filename().string();
  return out;
}

// One target's row of results.csv.
std::string csvRow(const TargetOutcome& o) {
  std::ostringstream csv;
  if (!o.feasible) {
    csv << o.target << ',' << o.device << ",false,,,,,,,,,\n";
    return csv.str();
  }
  csv << o.target << ',' << o.device << ",true," << o.subnet << ',' << o.cost.macs << ','
      << o.cost.params << ',' << fmtOpt(o.predicted_latency_ms, "%.4f", "") << ','
      << fmtOpt(o.measured_latency_ms, "%.4f", "") << ',' << o.val_accuracy_search << ','
      << o.val_accuracy << ',' << o.test_accuracy << ',' << o.export_dir.string() << '\n';
  return csv.str();
}

// One target's entry of results.json.
Json resultJson(const SearchTarget& t, const SearchResult& r, const TargetOutcome& o) {
  Json j = {{"target", t.name},
            {"constraints", t.constraintsJson()},
            {"feasible", r.feasible},
            {"search",
             {{"evaluations", r.stats.misses},
              {"cache_hits", r.stats.hits},
              {"fallbacks", r.fallbacks},
              {"seconds", r.seconds},
              {"best_per_generation", r.best_per_generation}}}};
  if (!o.feasible) {
    j["infeasible_reason"] = o.infeasible_reason;
    return j;
  }
  j.update({{"subnet", o.subnet},
            {"macs", o.cost.macs},
            {"params", o.cost.params},
            {"predicted_latency_ms", optJson(o.predicted_latency_ms)},
            {"measured_latency_ms", optJson(o.measured_latency_ms)},
            {"measured_latency_batch", o.measured_batch},
            {"measured_latency_threads", o.measured_threads},
            {"measured_latency_clock", o.measured_clock},
            {"val_accuracy_search", o.val_accuracy_search},
            {"val_accuracy", o.val_accuracy},
            {"test_accuracy", o.test_accuracy},
            {"export_dir", o.export_dir.string()}});
  return j;
}

// One latency column per distinct table, named by its device (suffixed if two tables
// claim the same device name).
std::vector<std::pair<std::string, const LatencyTable*>> latencyColumns(
    const std::vector<SearchTarget>& targets) {
  std::vector<std::pair<std::string, const LatencyTable*>> tables;
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
  return tables;
}

// The pipeline's state from one phase to the next; run() calls the phases in order.
class SearchPipeline {
 public:
  SearchPipeline(const SearchPipelineOptions& opts, Logger log, const std::atomic<bool>& stop)
      : opts_(opts), log_(std::move(log)), stop_(stop) {}

  SearchReport run() {
    opts_.validate();
    setTorchThreads(opts_.threads);
    loadInputs();
    prepareOutput();
    loadData();
    search();
    finalizeWinners();
    writePareto();
    return writeResults();
  }

 private:
  void loadInputs();
  void prepareOutput();
  void loadData();
  void search();
  void finalizeWinners();
  TargetOutcome finalizeWinner(const SearchTarget& t, const SearchResult& r);
  void measureLatency(const SearchTarget& t, SubNetModuleImpl& module, TargetOutcome& o) const;
  void exportWinner(const SearchTarget& t, const SearchResult& r, SubNetModuleImpl& module,
                    TargetOutcome& o) const;
  void latencyOrigins(const SearchTarget& t, const TargetOutcome& o, ModelInfo& info) const;
  void writePareto();
  SearchReport writeResults() const;
  Json summaryJson(const Json& results, double wall) const;
  void throwIfStopped(const char* where) const;
  Evaluator evaluatorOn(SampleSet scored) const;
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start_).count();
  }

  const SearchPipelineOptions& opts_;
  Logger log_;
  const std::atomic<bool>& stop_;
  const std::chrono::steady_clock::time_point t_start_ = std::chrono::steady_clock::now();

  // loadInputs, prepareOutput
  fs::path ckpt_path_;
  std::vector<SearchTarget> targets_;
  DesignSpace space_;
  Json run_info_;
  DataOptions data_opts_;
  std::optional<SuperNet> supernet_;
  std::int64_t round_ = -1;
  std::optional<Ed25519PrivateKey> key_;  // none: unsigned exports
  std::string ckpt_sha_;
  std::string targets_sha_;
  // loadData (the evaluators keep references to data_)
  DataBundle data_;
  IndexList val_idx_;
  IndexList bn_idx_;
  int bn_batches_ = 1;
  std::optional<Evaluator> val_eval_;
  // search, finalizeWinners, writePareto
  std::optional<EvolutionSearch> search_;
  std::vector<SearchResult> results_;
  std::optional<Evaluator> test_eval_;
  std::optional<Evaluator> full_val_eval_;
  std::vector<at::Tensor> bn_data_;
  std::vector<TargetOutcome> outcomes_;
  std::size_t pareto_points_ = 0;
};

void SearchPipeline::throwIfStopped(const char* where) const {
  if (stop_.load(std::memory_order_relaxed))
    SFN_THROW(SearchStopped, "stopped by a signal ", where, "; no results written to '", opts_.out,
              "'");
}

// Every evaluator scores `scored` with BN (trainable BN only) calibrated on the same
// training images bn_idx_ of data_.train, never on the scored ones.
Evaluator SearchPipeline::evaluatorOn(SampleSet scored) const {
  return Evaluator(std::move(scored), {data_.train, bn_idx_},
                   {opts_.batch, opts_.device, bn_batches_});
}

// Everything that can be wrong in the configuration is checked before the slow parts.
void SearchPipeline::loadInputs() {
  ckpt_path_ = resolveCheckpoint(opts_.checkpoint);
  targets_ = loadTargets(opts_.targets);
  log_->info("reading checkpoint {}", ckpt_path_.string());
  Checkpoint ck = readCheckpoint(ckpt_path_);
  if (!ck.metadata.contains("design_space") || !ck.metadata["design_space"].is_string())
    SFN_THROW(ConfigError, "checkpoint '", ckpt_path_.string(),
              "' has no design_space in its metadata (not an sfn run checkpoint)");
  space_ = DesignSpace::fromToml(ck.metadata["design_space"].get<std::string>());
  for (const auto& t : targets_) t.checkSpace(space_);
  run_info_ = ck.metadata.value("run", Json());
  data_opts_ = dataOptionsFrom(run_info_, space_, opts_.data_dir, log_);
  supernet_.emplace(space_, std::move(ck.tensors));
  round_ = ck.metadata.value("next_round", std::int64_t{-1});
}

void SearchPipeline::prepareOutput() {
  key_ = signingKey(opts_, log_);
  fs::create_directories(opts_.out);
  ckpt_sha_ = toHex(sha256File(ckpt_path_));
  targets_sha_ = toHex(sha256File(opts_.targets));
}

void SearchPipeline::loadData() {
  log_->info("loading {} data (validation split: {} of the training set, seed {})",
             data_opts_.dataset, data_opts_.val_fraction, data_opts_.split_seed);
  data_ = loadDataBundle(data_opts_);
  val_idx_ = seededSubset(data_.split.val, opts_.val_samples, opts_.evo.seed);
  bn_idx_ = seededSubset(data_.split.train, opts_.bn_samples, opts_.evo.seed + 1);
  bn_batches_ = (opts_.bn_samples + opts_.batch - 1) / opts_.batch;
  val_eval_.emplace(evaluatorOn({data_.train, val_idx_}));
  log_->info(
      "SuperNet '{}' (round {}), BN {}; fitness = accuracy on {} of {} validation images; "
      "{} targets",
      space_.name, round_, toString(space_.bn_mode), val_idx_.size(), data_.split.val.size(),
      targets_.size());
}

void SearchPipeline::search() {
  search_.emplace(
      space_,
      [this](const SubNetConfig& c) {
        throwIfStopped("during the search");
        return val_eval_->evaluate(*supernet_, {"", c}).accuracy;
      },
      opts_.evo);
  search_->onGeneration([this](const GenerationReport& r) {
    log_->info(
        "[{}/{} {}] generation {:>2}/{}  best {:.4f}  {}  MACs {}{}  evaluated {} (cache "
        "hits {})  {:.0f}s",
        r.target_index + 1, r.num_targets, r.target.name, r.generation, r.generations,
        r.best.fitness, r.best.text, fmtMacs(r.best.cost.macs),
        r.best.latency_ms ? "  latency " + fmtOpt(r.best.latency_ms) + " ms" : "", r.total.misses,
        r.total.hits, elapsed());
  });
  results_ = search_->searchAll(targets_);
  log_->info("search done: {} SubNets evaluated, {} cache hits", search_->stats().misses,
             search_->stats().hits);
}

// Winners: accuracy on the whole validation split and on the test split, latency, export.
void SearchPipeline::finalizeWinners() {
  test_eval_.emplace(evaluatorOn({data_.test}));
  full_val_eval_.emplace(evaluatorOn({data_.train, data_.split.val}));
  bn_data_ = test_eval_->bnBatches();  // the export's BN statistics, as the evaluators'

  for (std::size_t i = 0; i < results_.size(); ++i) {
    const SearchTarget& t = targets_[i];
    const SearchResult& r = results_[i];
    if (r.feasible) {
      throwIfStopped("before exporting the winners");
      outcomes_.push_back(finalizeWinner(t, r));
      continue;
    }
    log_->warn("target {}: infeasible: {}", t.name, r.infeasible_reason);
    TargetOutcome o;
    o.target = t.name;
    o.device = t.device;
    o.infeasible_reason = r.infeasible_reason;
    outcomes_.push_back(std::move(o));
  }
}

TargetOutcome SearchPipeline::finalizeWinner(const SearchTarget& t, const SearchResult& r) {
  TargetOutcome o;
  o.target = t.name;
  o.device = t.device;
  o.feasible = true;
  o.subnet = r.best.text;
  o.config = r.best.config;
  o.cost = r.best.cost;
  o.val_accuracy_search = r.best.fitness;
  const EvalTarget et{t.name, r.best.config};
  o.test_accuracy = test_eval_->evaluate(*supernet_, et).accuracy;
  o.val_accuracy = full_val_eval_->evaluate(*supernet_, et).accuracy;
  o.predicted_latency_ms = t.predictLatencyMs(space_, r.best.config);

  SubNetModule module = supernet_->buildModule(r.best.config);
  module->to(torch::Device(opts_.device));
  module->reestimateBn(bn_data_);  // no-op with frozen BN
  module->eval();
  measureLatency(t, *module, o);
  module->to(torch::kCPU);
  exportWinner(t, r, *module, o);
  return o;
}

// Measured here under the table's conditions (batch size, threads), so that it can be
// compared with the prediction; without a table, batch 1 with --latency-threads.
void SearchPipeline::measureLatency(const SearchTarget& t, SubNetModuleImpl& module,
                                    TargetOutcome& o) const {
  LatencyProfileOptions lat;
  lat.device = opts_.device;
  lat.repeats = opts_.latency_repeats;
  lat.batch_size = t.latency ? t.latency->info().batch_size : 1;
  o.measured_batch = lat.batch_size;
  o.measured_threads = t.latency ? t.latency->info().torch_threads : opts_.latency_threads;
  setTorchThreads(o.measured_threads);
  o.measured_clock = std::string(toString(lat.resolvedClock()));
  o.measured_latency_ms = measureSubNetMs(module, lat);
  setTorchThreads(opts_.threads);
}

// Where each latency figure comes from: the prediction from the table's device, the
// measurement from this machine (named by host and CPU, as no table names it).
void SearchPipeline::latencyOrigins(const SearchTarget& t, const TargetOutcome& o,
                                    ModelInfo& info) const {
  if (t.latency) {
    const LatencyTableInfo& lut = t.latency->info();
    info.predicted_on = {
        {"device", lut.device.empty() ? "unnamed (the latency table names no device)" : lut.device},
        {"latency_table", fs::path(t.latency_table_path).filename().string()},
        {"latency_table_sha256", toHex(sha256File(t.latency_table_path))},
        {"torch_device", lut.torch_device},
        {"torch_threads", lut.torch_threads},
        {"batch_size", lut.batch_size},
        {"measured_at", lut.measured_at}};
  }
  info.measured_on = {{"host", hostName()},
                      {"cpu", cpuModel()},
                      {"torch_device", opts_.device},
                      {"torch_threads", o.measured_threads},
                      {"batch_size", o.measured_batch},
                      {"clock", o.measured_clock}};
}

void SearchPipeline::exportWinner(const SearchTarget& t, const SearchResult& r,
                                  SubNetModuleImpl& module, TargetOutcome& o) const {
  ModelInfo info;
  info.target = t.name;
  info.constraints = t.constraintsJson();
  info.macs = r.best.cost.macs;
  info.params = r.best.cost.params;
  info.val_accuracy = o.val_accuracy;
  info.test_accuracy = o.test_accuracy;
  info.predicted_latency_ms = o.predicted_latency_ms;
  info.measured_latency_ms = o.measured_latency_ms;
  info.latency_device = t.device;
  latencyOrigins(t, o, info);
  info.source = {{"checkpoint", ckpt_path_.filename().string()},
                 {"checkpoint_sha256", ckpt_sha_},
                 {"round", round_},
                 {"run", portableRunInfo(run_info_)},
                 {"targets", fs::path(opts_.targets).filename().string()},
                 {"targets_sha256", targets_sha_},
                 {"search",
                  {{"seed", opts_.evo.seed},
                   {"population", opts_.evo.population},
                   {"generations", opts_.evo.generations},
                   {"val_samples", val_idx_.size()},
                   {"val_accuracy_search", r.best.fitness}}}};
  o.export_dir = fs::path(opts_.out) / t.name;
  if (key_)
    exportModel(module, info, o.export_dir, *key_);
  else
    exportUnsignedModel(module, info, o.export_dir);
  log_->info("target {}: exported {} to {}{}", t.name, r.best.text, o.export_dir.string(),
             key_ ? "" : " (unsigned)");
}

// The Pareto front of everything evaluated, with the winners highlighted in the plot.
void SearchPipeline::writePareto() {
  const auto tables = latencyColumns(targets_);
  std::vector<ParetoPoint> points;
  for (const auto& e : search_->evaluated()) {
    ParetoPoint p{e.text, e.cost.macs, e.cost.params, e.fitness, {}};
    for (const auto& [name, table] : tables)
      p.latency_ms[name] = table->predictMs(space_, e.config);
    points.push_back(std::move(p));
  }
  const ParetoFront front(std::move(points));
  const fs::path out = opts_.out;
  front.writePointsCsv((out / "evaluated.csv").string());
  front.writeFrontCsv((out / "pareto.csv").string());
  std::vector<ParetoWinner> plot_winners;
  for (const auto& o : outcomes_)
    if (o.feasible) plot_winners.push_back({o.target, o.cost.macs, o.val_accuracy_search});
  const PlotResult plot = front.writePlot(
      (out / "pareto.png").string(), plot_winners,
      "sfn-search: " + std::to_string(front.points().size()) + " SubNets of '" + space_.name +
          "' (validation accuracy on " + std::to_string(val_idx_.size()) + " images)",
      std::chrono::milliseconds(static_cast<long long>(opts_.plot_timeout_s * 1000)));
  if (!plot.written) log_->warn("pareto.png skipped: {}", plot.message);
  pareto_points_ = front.front().size();
}

Json SearchPipeline::summaryJson(const Json& results, double wall) const {
  return {{"checkpoint", fs::absolute(ckpt_path_).string()},
          {"checkpoint_sha256", ckpt_sha_},
          {"round", round_},
          {"design_space", space_.name},
          {"targets_file", opts_.targets},
          {"options",
           {{"population", opts_.evo.population},
            {"generations", opts_.evo.generations},
            {"parent_ratio", opts_.evo.parent_ratio},
            {"mutation_ratio", opts_.evo.mutation_ratio},
            {"gene_prob", opts_.evo.gene_prob},
            {"seed", opts_.evo.seed},
            {"max_attempts", opts_.evo.max_attempts},
            {"warm_start", opts_.evo.warm_start},
            {"val_samples", val_idx_.size()},
            {"threads", at::get_num_threads()},
            {"device", opts_.device}}},
          {"evaluations", search_->stats().misses},
          {"cache_hits", search_->stats().hits},
          {"pareto_points", pareto_points_},
          {"wall_s", wall},
          {"results", results}};
}

SearchReport SearchPipeline::writeResults() const {
  Json results = Json::array();
  std::string csv =
      "target,device,feasible,subnet,macs,params,predicted_latency_ms,measured_latency_ms,"
      "val_accuracy_search,val_accuracy,test_accuracy,export_dir\n";
  for (std::size_t i = 0; i < outcomes_.size(); ++i) {
    results.push_back(resultJson(targets_[i], results_[i], outcomes_[i]));
    csv += csvRow(outcomes_[i]);
  }
  SearchReport report;
  report.wall_s = elapsed();
  report.results_json = fs::path(opts_.out) / "results.json";
  report.results_csv = fs::path(opts_.out) / "results.csv";
  writeText(report.results_json, summaryJson(results, report.wall_s).dump(2) + "\n");
  writeText(report.results_csv, csv);
  report.checkpoint = fs::absolute(ckpt_path_);
  report.checkpoint_sha256 = ckpt_sha_;
  report.round = round_;
  report.design_space = space_.name;
  report.val_samples = val_idx_.size();
  report.outcomes = outcomes_;
  report.stats = search_->stats();
  report.pareto_points = pareto_points_;
  return report;
}

}  // namespace

void SearchPipelineOptions::validate() const {
  if (checkpoint.empty()) SFN_THROW(ConfigError, "--checkpoint is required");
  if (targets.empty()) SFN_THROW(ConfigError, "--targets is required");
  if (out.empty()) SFN_THROW(ConfigError, "--out is required");
  if (batch <= 0) SFN_THROW(ConfigError, "--batch must be > 0");
  if (val_samples < 0) SFN_THROW(ConfigError, "--val-samples must be >= 0");
  if (bn_samples < 1) SFN_THROW(ConfigError, "--bn-samples must be >= 1");
  if (threads < 1) SFN_THROW(ConfigError, "--threads must be >= 1");
  if (latency_repeats < 1) SFN_THROW(ConfigError, "--latency-repeats must be >= 1");
  if (latency_threads < 1) SFN_THROW(ConfigError, "--latency-threads must be >= 1");
  if (!(plot_timeout_s > 0)) SFN_THROW(ConfigError, "--plot-timeout-s must be > 0");
  checkTorchDevice(device, "--device");
  evo.validate();
}

fs::path resolveCheckpoint(const std::string& arg) {
  const fs::path p = arg;
  if (!fs::exists(p)) SFN_THROW(ConfigError, "--checkpoint '", arg, "' does not exist");
  if (!fs::is_directory(p)) return p;
  const fs::path dir = fs::exists(p / "checkpoints") ? p / "checkpoints" : p;
  auto latest = CheckpointDir(dir).latest();
  if (!latest)
    SFN_THROW(ConfigError, "--checkpoint '", arg, "': no checkpoint in '", dir.string(), "'");
  return *latest;
}

IndexList seededSubset(const IndexList& all, int n, std::uint64_t seed) {
  IndexList v = all;
  if (n <= 0 || static_cast<std::size_t>(n) >= v.size()) return v;
  Rng rng(seed, 0x5EA4C4);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
    std::swap(v[i], v[i + rng.below(v.size() - i)]);
  v.resize(static_cast<std::size_t>(n));
  std::sort(v.begin(), v.end());
  return v;
}

SearchReport runSearchPipeline(const SearchPipelineOptions& opts,
                               const std::shared_ptr<spdlog::logger>& log,
                               const std::atomic<bool>& stop) {
  return SearchPipeline(opts, log, stop).run();
}

void printSearchSummary(std::FILE* out, const SearchReport& report, int latency_threads) {
  std::fprintf(out, "\n%-14s %-62s %8s %8s %9s %9s %8s %8s\n", "target", "SubNet", "MACs", "params",
               "lat pred", "lat meas", "val acc", "test acc");
  for (const TargetOutcome& o : report.outcomes) {
    if (!o.feasible) {
      std::fprintf(out, "%-14s infeasible: %s\n", o.target.c_str(), o.infeasible_reason.c_str());
      continue;
    }
    std::fprintf(out, "%-14s %-62s %8s %8lld %9s %9s %8.4f %8.4f\n", o.target.c_str(),
                 o.subnet.c_str(), fmtMacs(o.cost.macs).c_str(),
                 static_cast<long long>(o.cost.params), fmtOpt(o.predicted_latency_ms).c_str(),
                 fmtOpt(o.measured_latency_ms).c_str(), o.val_accuracy, o.test_accuracy);
  }
  std::fprintf(out,
               "latencies in ms per batch: predicted from the target's table; measured here "
               "with the table's threads and batch size (else %d thread(s), batch 1)\n",
               latency_threads);
  std::fprintf(out, "%lld SubNets evaluated, %lld cache hits, %zu on the Pareto front; %.0f s\n",
               static_cast<long long>(report.stats.misses),
               static_cast<long long>(report.stats.hits), report.pareto_points, report.wall_s);
  std::fprintf(out, "results: %s\n", report.results_csv.string().c_str());
}

ExitCode verifyModelFolders(const fs::path& dir, const fs::path& pubkey, std::FILE* out) {
  const Ed25519PublicKey key = loadPublicKey(pubkey);
  std::vector<fs::path> dirs;
  if (fs::exists(dir / "manifest.json") || !fs::is_directory(dir)) {
    dirs.push_back(dir);
  } else {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && fs::exists(e.path() / "manifest.json")) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    if (dirs.empty()) dirs.push_back(dir);  // let the verifier say what is missing
  }
  bool ok = true;
  for (const auto& d : dirs) {
    const VerifyReport r = verifyModelDir(d, key);
    if (r.ok()) {
      std::fprintf(out, "%s: OK (signature and file digests valid)\n", d.string().c_str());
      continue;
    }
    ok = false;
    std::fprintf(out, "%s: FAILED\n", d.string().c_str());
    for (const auto& p : r.problems) std::fprintf(out, "  %s\n", p.c_str());
  }
  std::fflush(out);
  return ok ? ExitCode::kOk : ExitCode::kDataIntegrity;
}

}  // namespace sfn
