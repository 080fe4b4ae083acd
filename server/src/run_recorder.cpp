#include "sfn/server/run_recorder.h"

#include "sfn/core/error.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/io/text_file.h"
#include "sfn/model/checkpoint.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <sstream>
#include <string_view>

namespace sfn {

namespace fs = std::filesystem;

namespace {

constexpr const char* kJsonl = "metrics.jsonl";
constexpr const char* kCsv = "metrics.csv";

bool isNonEmptyFolder(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::directory_iterator(p, ec) != fs::directory_iterator();
}

bool isNonEmptyFile(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  return !ec && size > 0;
}

// Whether the CSV file has a row after its header line.
bool hasCsvRows(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  return std::getline(in, line) && std::getline(in, line);
}

// Whether `file` lies in `folder` or below it.
bool isInside(const fs::path& file, const fs::path& folder) {
  std::error_code ec;
  const fs::path f = fs::weakly_canonical(file, ec);
  if (ec) return false;
  const fs::path d = fs::weakly_canonical(folder, ec);
  if (ec) return false;
  const fs::path rel = f.lexically_relative(d);
  return !rel.empty() && *rel.begin() != "..";
}

// The settings of a RunConfig::toToml text as "table.key" -> the value's TOML text.
void flattenInto(const toml::table& t, const std::string& prefix,
                 std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : t) {
    const std::string name = prefix + std::string(key.str());
    if (const toml::table* sub = node.as_table()) {
      flattenInto(*sub, name + ".", out);
      continue;
    }
    // Doubles as their shortest exact text (toml++ writes 17 digits: 0.1 is
    // 0.10000000000000001), so a message shows what the operator wrote.
    if (const auto* d = node.as_floating_point()) {
      char buf[32];
      const auto res = std::to_chars(buf, buf + sizeof buf, d->get());
      std::string text(buf, res.ptr);
      if (text.find_first_of(".eni") == std::string::npos) text += ".0";
      out[name] = text;
      continue;
    }
    std::ostringstream os;
    node.visit([&os](const auto& v) { os << v; });
    out[name] = os.str();
  }
}

std::map<std::string, std::string> settingsOf(const RunConfig& cfg) {
  std::map<std::string, std::string> out;
  flattenInto(toml::parse(cfg.toToml()), "", out);
  return out;
}

bool isResumeSafe(const std::string& key) {
  const auto& safe = RunRecorder::resumeSafeKeys();
  return std::any_of(safe.begin(), safe.end(), [&key](std::string_view s) {
    // "server." covers the whole table.
    return s.ends_with('.') ? key.starts_with(s) : key == s;
  });
}

// A run folder's config.toml. One written before the effective settings were recorded is
// the config file as given plus a "# override: table.key=value" line per --set; TOML reads
// those lines as comments, so they are applied here.
RunConfig readRecordedConfig(const fs::path& file, const std::string& base_dir) {
  const std::string text = readTextFile(file.string(), "run folder config");
  std::vector<std::string> overrides;
  std::istringstream lines(text);
  constexpr std::string_view kOverride = "# override: ";
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with(kOverride)) overrides.push_back(line.substr(kOverride.size()));
  return RunConfig::parse(text, file.string(), base_dir, overrides);
}

// The run folder a checkpoint file belongs to: RUN for RUN/checkpoints/ckpt-*.sfn.
fs::path runFolderOf(const fs::path& checkpoint_file) {
  const fs::path dir = checkpoint_file.parent_path();
  return dir.filename() == "checkpoints" ? dir.parent_path() : dir;
}

// weighting.decay_rounds and train.lr_decay_rounds follow run.rounds unless set: when
// `given` has the values its own rounds give, a changed run.rounds explains the difference,
// and the run's values are kept (the schedule the run began with continues).
bool followsRounds(const std::string& key, const RunConfig& given) {
  if (key == "weighting.decay_rounds")
    return given.coordinator.weighting.decay_rounds == defaultDecayRounds(given.rounds);
  if (key == "train.lr_decay_rounds")
    return given.coordinator.lr_schedule.decay_rounds == static_cast<double>(given.rounds);
  return false;
}

}  // namespace

const std::vector<std::string_view>& RunRecorder::resumeSafeKeys() {
  static const std::vector<std::string_view> keys = {"run.rounds",
                                                     "run.out_dir",
                                                     "run.torch_threads",
                                                     "run.device",
                                                     "run.log_level",
                                                     "eval.every",
                                                     "checkpoint.every",
                                                     "checkpoint.keep",
                                                     "simulation.workers",
                                                     "simulation.torch_threads",
                                                     "round.deadline_s",
                                                     "round.liveness_s",
                                                     "server.",
                                                     "http."};
  return keys;
}

std::string RunRecorder::resumeSafeKeyText() {
  std::string text;
  for (const std::string_view key : resumeSafeKeys())
    text += (text.empty() ? "" : ", ") + std::string(key) + (key.ends_with('.') ? "*" : "");
  return text;
}

ResumedConfig RunRecorder::resumeConfig(const std::string& resume, const RunConfig& given,
                                        const std::string& legacy_base_dir) {
  ResumedConfig out{given, {}};
  const std::optional<std::string> ckpt = findCheckpoint(resume);
  if (!ckpt) return out;
  const fs::path file = runFolderOf(*ckpt) / "config.toml";
  if (!fs::exists(file)) {
    out.notes.push_back("no config.toml in '" + file.parent_path().string() +
                        "': the settings of the resumed run are not checked");
    return out;
  }
  const RunConfig recorded = readRecordedConfig(file, legacy_base_dir);
  const auto was = settingsOf(recorded);
  const auto now = settingsOf(given);
  std::string refused;
  for (const auto& [key, old_value] : was) {
    const auto it = now.find(key);
    const std::string new_value = it == now.end() ? "(absent)" : it->second;
    if (new_value == old_value) continue;
    const std::string change = key + " = " + old_value + " -> " + new_value;
    if (isResumeSafe(key)) {
      out.notes.push_back("changed on resume: " + change);
    } else if (recorded.rounds != given.rounds && followsRounds(key, given)) {
      out.notes.push_back("kept " + key + " = " + old_value + " of the run (run.rounds changed)");
    } else {
      refused += (refused.empty() ? "" : "; ") + change;
    }
  }
  for (const auto& [key, new_value] : now)
    if (!was.count(key) && !isResumeSafe(key))
      refused += (refused.empty() ? "" : "; ") + key + " = (absent) -> " + new_value;
  if (!refused.empty())
    SFN_THROW(ConfigError, "--resume: the run in '", file.parent_path().string(),
              "' was started with other settings (", file.string(),
              " -> this command line): ", refused,
              ". Only these may change on --resume: ", resumeSafeKeyText(),
              "; start a new run (-o) to change the others");
  out.config.coordinator.weighting.decay_rounds = recorded.coordinator.weighting.decay_rounds;
  out.config.coordinator.lr_schedule.decay_rounds = recorded.coordinator.lr_schedule.decay_rounds;
  return out;
}

RunRecorder::RunRecorder(std::string run_dir, std::vector<std::string> eval_names,
                         int checkpoint_keep, nlohmann::json run_info, RunStart start)
    : dir_(std::move(run_dir)),
      eval_names_(std::move(eval_names)),
      keep_(checkpoint_keep),
      run_info_(std::move(run_info)) {
  if (start == RunStart::kResume) return;
  if (const std::optional<std::string> held = heldRun(dir_))
    SFN_THROW(ConfigError, "run folder '", dir_, "' already holds a run (", *held,
              "): pass --resume ", dir_, " to continue it, or choose another run folder (-o)");
  startMetrics({});
}

std::optional<std::string> RunRecorder::heldRun(const std::string& dir) {
  const fs::path d = dir;
  std::string found;
  auto add = [&found](std::string_view what) {
    found += (found.empty() ? "" : ", ") + std::string(what);
  };
  if (isNonEmptyFolder(d / "checkpoints")) add("checkpoints/");
  if (isNonEmptyFile(d / kJsonl)) add(kJsonl);
  if (hasCsvRows(d / kCsv)) add(kCsv);
  std::error_code ec;
  if (fs::exists(d / "summary.json", ec)) add("summary.json");
  if (found.empty()) return std::nullopt;
  return found;
}

std::string RunRecorder::checkpointDir() const { return (fs::path(dir_) / "checkpoints").string(); }

void RunRecorder::startMetrics(const std::vector<RoundMetrics>& history) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) SFN_THROW(IoError, "cannot create run folder '", dir_, "': ", ec.message());
  std::string jsonl;
  std::string csv = RoundMetrics::csvHeader(eval_names_) + '\n';
  for (const auto& m : history) {
    jsonl += m.toJson().dump() + '\n';
    csv += m.csvRow(eval_names_) + '\n';
  }
  jsonl_.close();
  csv_.close();
  // Replaced whole: a crash meanwhile leaves the old file or the new one, never a part.
  writeFile(kJsonl, jsonl);
  writeFile(kCsv, csv);
  jsonl_ = std::ofstream(fs::path(dir_) / kJsonl, std::ios::app);
  csv_ = std::ofstream(fs::path(dir_) / kCsv, std::ios::app);
  if (!jsonl_ || !csv_) SFN_THROW(IoError, "cannot write metrics files in '", dir_, "'");
  started_ = true;
}

void RunRecorder::requireStarted(std::string_view what) const {
  SFN_ENFORCE(started_, Error, "RunRecorder::", what,
              " before the run started: a RunStart::kResume recorder needs resumeFrom() first");
}

void RunRecorder::appendMetrics(const RoundMetrics& m) {
  requireStarted("appendMetrics");
  jsonl_ << m.toJson().dump() << '\n';
  csv_ << m.csvRow(eval_names_) << '\n';
  // Flushed per round: a crash loses at most the round in progress.
  jsonl_.flush();
  csv_.flush();
}

void RunRecorder::writeFile(const std::string& name, const std::string& text) const {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
  writeFileAtomically(fs::path(dir_) / name, std::span<const std::uint8_t>(bytes, text.size()));
}

void RunRecorder::writeConfig(const RunConfig& cfg) { writeFile("config.toml", cfg.toToml()); }

void RunRecorder::writeSummary(const nlohmann::json& summary) {
  writeFile("summary.json", summary.dump(2) + '\n');
}

std::string RunRecorder::checkpoint(Coordinator& coordinator) {
  requireStarted("checkpoint");
  return coordinator.checkpoint([this](const Coordinator& c) { return save(c); });
}

std::string RunRecorder::save(const Coordinator& coordinator) const {
  const CoordinatorSnapshot snap = coordinator.snapshot();
  nlohmann::json meta;
  meta["format"] = "sfn-coordinator-1";
  meta["design_space"] = coordinator.supernet().space().toToml();
  meta["next_round"] = snap.next_round;
  meta["next_task_id"] = snap.next_task_id;
  nlohmann::json counters = nlohmann::json::array();
  // Sorted, so the same state always gives the same bytes (and digest).
  std::vector<std::pair<std::uint64_t, SubNetAssigner::Counters>> sorted(snap.counters.begin(),
                                                                         snap.counters.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [id, c] : sorted) counters.push_back({id, c.maxnet, c.minnet});
  meta["counters"] = counters;
  nlohmann::json hist = nlohmann::json::array();
  for (const auto& m : snap.history) hist.push_back(m.toJson());
  meta["history"] = hist;
  meta["run"] = run_info_;
  CheckpointDir dir(checkpointDir(), static_cast<std::size_t>(keep_));
  return dir
      .save(static_cast<std::uint64_t>(snap.next_round), coordinator.supernet().tensors(), meta)
      .string();
}

std::string RunRecorder::resumeFrom(const std::string& dir_or_file, Coordinator& coordinator) {
  const std::optional<std::string> file = findCheckpoint(dir_or_file);
  if (!file)
    SFN_THROW(ConfigError, "--resume '", dir_or_file,
              "': no such checkpoint file, and no run or checkpoint folder with a checkpoint");
  if (const std::optional<std::string> held = heldRun(dir_); held && !isInside(*file, dir_))
    SFN_THROW(ConfigError, "run folder '", dir_, "' holds another run (", *held, "): resuming '",
              *file, "' there would overwrite it; choose another run folder (-o)");
  // The resolved file, not the folder: a checkpoint written meanwhile cannot slip in.
  if (!resume(*file, coordinator))
    SFN_THROW(IoError, "--resume: no checkpoint in '", dir_or_file, "'");
  startMetrics(coordinator.history());
  return *file;
}

std::optional<std::string> RunRecorder::findCheckpoint(const std::string& dir_or_file) {
  const fs::path path = dir_or_file;
  if (!fs::is_directory(path)) {
    if (fs::exists(path)) return path.string();
    return std::nullopt;
  }
  const fs::path ckdir = fs::exists(path / "checkpoints") ? path / "checkpoints" : path;
  auto latest = CheckpointDir(ckdir).latest();
  if (!latest) return std::nullopt;
  return latest->string();
}

bool RunRecorder::resume(const std::string& dir_or_file, Coordinator& coordinator) {
  const std::optional<std::string> found = findCheckpoint(dir_or_file);
  if (!found) return false;
  const fs::path file = *found;
  Checkpoint ck = readCheckpoint(file);
  const auto& meta = ck.metadata;
  if (meta.value("format", "") != "sfn-coordinator-1")
    SFN_THROW(IoError, "checkpoint '", file.string(), "' is not a coordinator checkpoint");
  const DesignSpace space = DesignSpace::fromToml(meta.at("design_space").get<std::string>());
  if (space.toToml() != coordinator.supernet().space().toToml())
    SFN_THROW(ConfigError, "checkpoint '", file.string(),
              "' was written for a different SuperNet design space");
  coordinator.supernet() = SuperNet(space, std::move(ck.tensors));
  CoordinatorSnapshot snap;
  snap.next_round = meta.at("next_round").get<std::int64_t>();
  snap.next_task_id = meta.at("next_task_id").get<std::uint64_t>();
  for (const auto& c : meta.at("counters"))
    snap.counters[c.at(0).get<std::uint64_t>()] = {c.at(1).get<std::uint32_t>(),
                                                   c.at(2).get<std::uint32_t>()};
  for (const auto& m : meta.at("history")) snap.history.push_back(RoundMetrics::fromJson(m));
  coordinator.restore(snap);
  return true;
}

}  // namespace sfn
