// Everything a run leaves on disk, in one run folder:
//   config.toml     the configuration file as given, then one "# override:" line per
//                   setting changed on the command line
//   metrics.jsonl   one row per round (metrics.csv: the same as CSV)
//   checkpoints/    from round 0, durable, with digests
//   summary.json    written last, once all rounds are done (its presence marks a finished run)
// Used by sfn-server and sfn-sim alike (through runFederation, sfn/server/federation.h), so
// both write the same files; sfn-server adds `endpoint`.
#pragma once

#include "sfn/server/coordinator.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace sfn {

class RunRecorder {
 public:
  // Creates `run_dir` (and checkpoints/). `eval_names` fix the CSV's accuracy columns.
  // `run_info` (data source, split seed...) is stored in every checkpoint so that tools
  // reading it (sfn-search) can rebuild the same validation split.
  RunRecorder(std::string run_dir, std::vector<std::string> eval_names, int checkpoint_keep,
              nlohmann::json run_info);

  const std::string& dir() const { return dir_; }
  std::string checkpointDir() const;

  // Rewrites metrics files from `history` (used on resume), then appends from there on.
  void resetMetrics(const std::vector<RoundMetrics>& history);
  void appendMetrics(const RoundMetrics& m);

  // config.toml: `config_text` followed by "# override: <assignment>" per entry of
  // `overrides`. Written atomically. Throws IoError.
  void writeConfig(const std::string& config_text, const std::vector<std::string>& overrides);
  // summary.json, atomically (a reader never sees half of it). Throws IoError.
  void writeSummary(const nlohmann::json& summary);

  // Writes a checkpoint of the coordinator (SuperNet + snapshot), with the coordinator in
  // state kCheckpointing meanwhile; returns its path.
  std::string checkpoint(Coordinator& coordinator);
  // The checkpoint file resume() would read: `dir_or_file` itself if it is a file, else the
  // newest checkpoint in it (or in its checkpoints/); nullopt if there is none.
  static std::optional<std::string> findCheckpoint(const std::string& dir_or_file);
  // Restores `coordinator` from the newest checkpoint in `dir` (or a checkpoint file).
  // Returns false if there is none. Throws IoError on a corrupt file.
  static bool resume(const std::string& dir_or_file, Coordinator& coordinator);
  // --resume: restores `coordinator` (IoError if there is no checkpoint) and rewrites this
  // run's metrics files from the restored history. Returns the checkpoint file it read.
  std::string resumeFrom(const std::string& dir_or_file, Coordinator& coordinator);

 private:
  std::string save(const Coordinator& coordinator) const;
  void writeFile(const std::string& name, const std::string& text) const;

  std::string dir_;
  std::vector<std::string> eval_names_;
  int keep_;
  nlohmann::json run_info_;
  std::ofstream jsonl_;
  std::ofstream csv_;
};

}  // namespace sfn
