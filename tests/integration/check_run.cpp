// sfn_check_run: audits a run folder written by sfn-server (tests/integration, item 1).
//
//   sfn_check_run coverage RUN_DIR [--min-changed F] [--require-uncovered]
//   sfn_check_run digest CHECKPOINT     SHA-256 of the data section (tests/simulator/digest.sh)
//
// For every round t in metrics.jsonl whose checkpoints before (ckpt-t) and after
// (ckpt-(t+1)) are both in RUN_DIR/checkpoints, the SuperNet may change only inside the
// union of the prefix boxes of the SubNets whose updates were accepted in round t (the
// "tasks" of its metrics); an abandoned round may change nothing. Inside that union, at
// least a fraction F (default 0.5) of the float elements must have changed, so that a
// server which silently dropped the updates would fail too. --require-uncovered fails the
// audit when every round covered the whole SuperNet (a MaxNet in every round, as the
// tracking sandwich assigns), since the "only covered elements" half was then untested.
//
// Prints one line per audited round; exit code 0 if every round passes, 1 otherwise (each
// violation printed with its tensor), 2 on a usage or I/O error.
#include "sfn/core/error.h"
#include "sfn/io/crypto.h"
#include "sfn/model/checkpoint.h"
#include "sfn/model/design_space.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::vector<Json> readMetrics(const fs::path& file) {
  std::ifstream in(file);
  SFN_ENFORCE(in.good(), sfn::IoError, "cannot open ", file.string());
  std::vector<Json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(Json::parse(line));
  return rows;
}

// True where any accepted SubNet of `round` covers the SuperNet element.
std::map<std::string, at::Tensor> coverageMask(const sfn::DesignSpace& space,
                                               const sfn::NamedTensors& like, const Json& round) {
  std::map<std::string, at::Tensor> mask;
  for (const auto& t : like) mask[t.name] = at::zeros(t.tensor.sizes(), at::kBool);
  for (const auto& task : round.at("tasks")) {
    if (task.at("status") != "accepted") continue;
    const auto config = sfn::SubNetConfig::parse(task.at("subnet").get<std::string>(), space);
    for (const auto& spec : sfn::sliceSpec(space, config))
      sfn::prefixBox(mask.at(spec.name), spec.shape).fill_(true);
  }
  return mask;
}

struct RoundAudit {
  std::int64_t covered = 0;          // float elements inside the union
  std::int64_t changed_inside = 0;   // ... that changed
  std::int64_t changed_outside = 0;  // any element outside the union that changed
  std::int64_t total = 0;
};

RoundAudit audit(const sfn::NamedTensors& before, const sfn::NamedTensors& after,
                 const std::map<std::string, at::Tensor>& mask, bool& ok) {
  RoundAudit a;
  SFN_ENFORCE(before.size() == after.size(), sfn::ShapeError, "checkpoints differ in tensors");
  for (std::size_t i = 0; i < before.size(); ++i) {
    const auto& b = before[i];
    const auto& n = after[i];
    SFN_ENFORCE(b.name == n.name && b.tensor.sizes() == n.tensor.sizes(), sfn::ShapeError,
                "checkpoints differ at tensor ", b.name);
    const at::Tensor& m = mask.at(b.name);
    // Bitwise inequality (NaN != NaN would count as changed, which is what we want).
    const at::Tensor diff = b.tensor.ne(n.tensor);
    const std::int64_t outside = diff.logical_and(m.logical_not()).sum().item<std::int64_t>();
    if (outside > 0) {
      ok = false;
      std::cout << "  VIOLATION " << b.name << ": " << outside
                << " elements changed outside every accepted SubNet's slice\n";
    }
    a.changed_outside += outside;
    a.total += b.tensor.numel();
    if (b.tensor.is_floating_point()) {
      a.covered += m.sum().item<std::int64_t>();
      a.changed_inside += diff.logical_and(m).sum().item<std::int64_t>();
    }
  }
  return a;
}

enum class RoundVerdict { kMissing, kFull, kPartial };  // checkpoints missing / audited

// Audits round `row` against the checkpoints before and after it; sets ok = false on a
// violation. kPartial: a completed round whose SubNets left some float element uncovered.
RoundVerdict auditRound(const sfn::CheckpointDir& ckdir, const Json& row, double min_changed,
                        bool& ok) {
  const auto t = row.at("round").get<std::uint64_t>();
  const fs::path before_file = ckdir.dir() / sfn::CheckpointDir::fileName(t);
  const fs::path after_file = ckdir.dir() / sfn::CheckpointDir::fileName(t + 1);
  if (!fs::exists(before_file) || !fs::exists(after_file)) {
    std::cout << "round " << t << ": checkpoints missing, not audited\n";
    return RoundVerdict::kMissing;
  }
  const sfn::Checkpoint before = sfn::readCheckpoint(before_file);
  const sfn::Checkpoint after = sfn::readCheckpoint(after_file);
  const sfn::DesignSpace space =
      sfn::DesignSpace::fromToml(after.metadata.at("design_space").get<std::string>());
  const bool completed = row.at("outcome") == "completed";
  int accepted = 0;
  for (const auto& task : row.at("tasks")) accepted += task.at("status") == "accepted";
  if (accepted != row.at("accepted").get<int>()) {
    ok = false;
    std::cout << "round " << t << ": " << accepted << " tasks marked accepted but metrics say "
              << row.at("accepted") << "\n";
  }
  // An abandoned round keeps the SuperNet: an empty mask.
  const Json empty = Json{{"tasks", Json::array()}};
  const auto mask = coverageMask(space, before.tensors, completed ? row : empty);
  const RoundAudit a = audit(before.tensors, after.tensors, mask, ok);
  const double frac = a.covered > 0 ? static_cast<double>(a.changed_inside) / a.covered : 0.0;
  std::printf(
      "round %llu: %s, %d accepted SubNets cover %lld of %lld elements; %.1f%% of them "
      "changed; %lld changed outside\n",
      static_cast<unsigned long long>(t), row.at("outcome").get<std::string>().c_str(), accepted,
      static_cast<long long>(a.covered), static_cast<long long>(a.total), 100.0 * frac,
      static_cast<long long>(a.changed_outside));
  if (completed && frac < min_changed) {
    ok = false;
    std::printf("  VIOLATION: under %.0f%% of the covered elements changed\n", 100.0 * min_changed);
  }
  std::int64_t float_total = 0;
  for (const auto& bt : before.tensors)
    if (bt.tensor.is_floating_point()) float_total += bt.tensor.numel();
  return completed && a.covered < float_total ? RoundVerdict::kPartial : RoundVerdict::kFull;
}

int coverage(const fs::path& run_dir, double min_changed, bool require_uncovered) {
  const std::vector<Json> rows = readMetrics(run_dir / "metrics.jsonl");
  const sfn::CheckpointDir ckdir(run_dir / "checkpoints");
  bool ok = true;
  int audited = 0;
  int partial = 0;  // completed rounds whose SubNets left some float element uncovered
  for (const Json& row : rows) {
    const RoundVerdict v = auditRound(ckdir, row, min_changed, ok);
    audited += v != RoundVerdict::kMissing;
    partial += v == RoundVerdict::kPartial;
  }
  if (audited == 0) {
    std::cout << "no round could be audited\n";
    return 1;
  }
  if (require_uncovered && partial == 0) {
    // Every round covered the whole SuperNet (e.g. a MaxNet in each): nothing was tested.
    std::cout << "no completed round left any element uncovered; the audit proves nothing\n";
    return 1;
  }
  std::cout << (ok ? "coverage ok" : "coverage FAILED") << " (" << audited << " rounds, " << partial
            << " with uncovered elements)\n";
  return ok ? 0 : 1;
}

// SHA-256 of a checkpoint's data section (every tensor's bytes at their offsets; see
// sfn/model/checkpoint.h): the SuperNet's state alone, without the metadata (metrics, wall
// times) that differs from run to run. Pinned by tests/simulator/digest.sh.
int digest(const fs::path& file) {
  (void)sfn::readCheckpoint(file);  // verifies magic, header and trailer first
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SFN_ENFORCE(bytes.size() >= 12, sfn::DataError, file.string(), ": truncated");
  std::uint32_t header = 0;
  for (int i = 3; i >= 0; --i) header = header << 8 | static_cast<std::uint8_t>(bytes[8 + i]);
  const Json h = Json::parse(bytes.substr(12, header));
  const std::size_t start = (12 + std::size_t{header} + 63) / 64 * 64;
  const auto length = h.at("data_bytes").get<std::size_t>();
  SFN_ENFORCE(start + length <= bytes.size(), sfn::DataError, file.string(), ": truncated");
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data()) + start;
  std::cout << sfn::sha256Hex(sfn::ByteView(data, length)) << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sfn_check_run: audits an sfn-server run folder (integration tests)"};
  app.require_subcommand(1);
  auto* cov = app.add_subcommand(
      "coverage", "each round changed the SuperNet only where accepted SubNets cover it");
  std::string run_dir;
  double min_changed = 0.5;
  bool require_uncovered = false;
  cov->add_option("run_dir", run_dir, "run folder (metrics.jsonl, checkpoints/)")->required();
  cov->add_option("--min-changed", min_changed,
                  "fraction of covered float elements that must have changed")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cov->add_flag("--require-uncovered", require_uncovered,
                "fail unless some completed round left part of the SuperNet uncovered");
  auto* dig = app.add_subcommand(
      "digest", "print the SHA-256 of a checkpoint's data section (its tensors' bytes)");
  std::string ckpt_file;
  dig->add_option("checkpoint", ckpt_file, "checkpoint file (ckpt-NNNNNN.sfn)")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    if (dig->parsed()) return digest(ckpt_file);
    return coverage(run_dir, min_changed, require_uncovered);
  } catch (const std::exception& e) {
    std::cerr << "sfn_check_run: " << e.what() << std::endl;
    return 2;
  }
}
