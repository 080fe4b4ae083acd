// Everything a run leaves on disk, in one run folder: config.toml (as resolved),
// metrics.jsonl and metrics.csv (one row per round), checkpoints/ (durable, with digests).
// Used by sfn-server and sfn-sim alike, so both write the same files.
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

  // Writes a checkpoint of the coordinator (SuperNet + snapshot); returns its path.
  std::string checkpoint(const Coordinator& coordinator);
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
  std::string dir_;
  std::vector<std::string> eval_names_;
  int keep_;
  nlohmann::json run_info_;
  std::ofstream jsonl_;
  std::ofstream csv_;
};

}  // namespace sfn
