// Everything a run leaves on disk, in one run folder:
//   config.toml     the effective settings (RunConfig::toToml: the config file with --set
//                   and the setting flags applied, every default written out); --resume
//                   compares the new command line against it (resumeConfig)
//   metrics.jsonl   one row per round (metrics.csv: the same as CSV)
//   checkpoints/    from round 0, durable, with digests
//   summary.json    written last, once all rounds are done (its presence marks a finished run)
// Used by sfn-server and sfn-sim alike (through runFederation, sfn/server/federation.h), so
// both write the same files; sfn-server adds `endpoint`.
//
// A folder's history (checkpoints, metrics rows, summary) is never truncated or repointed
// unless a run continues it: a new run refuses a folder that holds one, and a resumed run
// changes nothing until its checkpoint has been restored.
#pragma once

#include "sfn/server/coordinator.h"
#include "sfn/server/run_config.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

// The settings --resume continues a run with (RunRecorder::resumeConfig).
struct ResumedConfig {
  RunConfig config;
  // What an operator should know, one sentence each: safe settings that changed, schedule
  // keys kept from the run, or that there was no config.toml to check against.
  std::vector<std::string> notes;
};

// How a run uses its folder.
enum class RunStart {
  kNew,     // a new run: the folder must not hold one (RunRecorder::heldRun)
  kResume,  // continues a checkpoint's run: nothing is written before resumeFrom()
};

class RunRecorder {
 public:
  // Opens `run_dir` for a run. `eval_names` fix the CSV's accuracy columns. `run_info`
  // (data source, split seed...) is stored in every checkpoint so that tools reading it
  // (sfn-search) can rebuild the same validation split.
  // kNew creates the folder and empty metrics files; it throws ConfigError naming the
  // folder if it already holds a run (pass --resume to continue it, or choose another
  // folder), IoError if it cannot be created. kResume touches nothing until resumeFrom().
  RunRecorder(std::string run_dir, std::vector<std::string> eval_names, int checkpoint_keep,
              nlohmann::json run_info, RunStart start = RunStart::kNew);

  // What in `dir` shows that it holds a run, e.g. "checkpoints/, metrics.jsonl": any
  // checkpoint, a metrics row or summary.json. nullopt for a missing folder or one without
  // them (files of no history, such as a log a script opens there first, do not count).
  static std::optional<std::string> heldRun(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string checkpointDir() const;

  // Appends one round to both metrics files, flushed. Only once the run has started (kNew,
  // or kResume after resumeFrom()).
  void appendMetrics(const RoundMetrics& m);

  // config.toml: cfg.toToml(), the effective settings. Written atomically. Throws IoError.
  void writeConfig(const RunConfig& cfg);
  // summary.json, atomically (a reader never sees half of it). Throws IoError.
  void writeSummary(const nlohmann::json& summary);

  // Writes a checkpoint of the coordinator (SuperNet + snapshot), with the coordinator in
  // state kCheckpointing meanwhile; returns its path. Only once the run has started.
  std::string checkpoint(Coordinator& coordinator);
  // The checkpoint file resume() would read: `dir_or_file` itself if it is a file, else the
  // newest checkpoint in it (or in its checkpoints/); nullopt if there is none.
  static std::optional<std::string> findCheckpoint(const std::string& dir_or_file);
  // The config keys (table.key) a --resume may change: what neither the model nor the data
  // of the rounds depends on (their number, evaluation cadence, checkpoints, logging,
  // threads, device, endpoints, server timing). The one list sfn-server and sfn-sim use.
  static const std::vector<std::string_view>& resumeSafeKeys();
  // The same for messages and --help: "run.rounds, ..., server.*, http.*".
  static std::string resumeSafeKeyText();
  // --resume: checks `given` (this command line's settings) against the config.toml of the
  // run `resume` (a run folder or checkpoint file) belongs to: that folder, or the one
  // holding the checkpoint's checkpoints/. Any other key that differs is a ConfigError
  // naming every such key with the run's value and the given one. Returns `given`, except
  // that weighting.decay_rounds and train.lr_decay_rounds, when they only follow a changed
  // run.rounds, keep the run's values: more rounds continue the schedule the run began.
  // A config.toml written before the effective settings were recorded (the file as given
  // plus "# override:" lines) is read with those lines applied and its relative paths
  // resolved against `legacy_base_dir` (the folder of this command's -c). No config.toml,
  // or no checkpoint at all: `given`, with a note (resumeFrom reports a missing checkpoint).
  // Throws ConfigError, IoError if config.toml cannot be read.
  static ResumedConfig resumeConfig(const std::string& resume, const RunConfig& given,
                                    const std::string& legacy_base_dir);
  // Restores `coordinator` from the newest checkpoint in `dir` (or a checkpoint file).
  // Returns false if there is none. Throws IoError on a corrupt file.
  static bool resume(const std::string& dir_or_file, Coordinator& coordinator);
  // --resume: restores `coordinator` from the newest checkpoint of `dir_or_file`, then
  // rewrites this run's metrics files (atomically) from the restored history: each round
  // before the checkpoint appears once, and rows of later rounds, which run again, are
  // gone. Returns the checkpoint file it read. Throws IoError if there is no checkpoint or
  // it cannot be read, ConfigError if this folder holds a run that the checkpoint is not
  // from (it lies outside the folder); the folder is left untouched then.
  std::string resumeFrom(const std::string& dir_or_file, Coordinator& coordinator);

 private:
  // Writes the metrics files afresh from `history` and opens them for appending.
  void startMetrics(const std::vector<RoundMetrics>& history);
  void requireStarted(std::string_view what) const;
  std::string save(const Coordinator& coordinator) const;
  void writeFile(const std::string& name, const std::string& text) const;

  std::string dir_;
  std::vector<std::string> eval_names_;
  int keep_;
  nlohmann::json run_info_;
  std::ofstream jsonl_;
  std::ofstream csv_;
  bool started_ = false;  // metrics files open: the run owns the folder
};

}  // namespace sfn
