// Per-device latency lookup table: the measured latency of every building block a SubNet of
// a DesignSpace can contain, so a SubNet's latency is predicted as a sum (DESIGN.md "one-shot
// search"), plus the profiler that measures such a table and whole SubNets.
//
// Entries (one per distinct block shape):
//   "stem"                       conv3x3 (+BN) + ReLU at the input resolution
//   "stage<s>.first.mid<m>"      the first block of stage s (stage stride, 1x1 shortcut conv
//                                when the shape changes) with m mid channels
//   "stage<s>.rest.mid<m>"       any later block of stage s (stride 1, identity shortcut);
//                                blocks 2 and 3 of a stage have the same shapes, so one entry
//   "head"                       global average pool + linear
// Each entry also records the shapes it was measured with (in, mid, out, stride, input
// resolution), so a table is checked against a design space instead of trusted by name.
//
// JSON form (written by save(), read by load()):
//   {"format": "sfn-latency-table", "version": 1, "device": "laptop", "torch_device": "cpu",
//    "torch_threads": 2, "batch_size": 1, "design_space": "fmnist", "warmup": 20,
//    "repeats": 100, "quantile": 0.5, "clock": "thread_cpu", "measured_at": "2026-11-23T10:00:00Z",
//    "entries": [{"name": "stem", "in": 1, "mid": 0, "out": 16, "stride": 1, "hw": 28,
//                 "ms": 0.0123}, ...]}
#pragma once

#include "sfn/model/design_space.h"
#include "sfn/model/subnet_config.h"

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sfn {

class SubNetModuleImpl;

struct LatencyTableEntry {
  std::string name;
  int in = 0;      // input channels
  int mid = 0;     // mid channels (blocks only, else 0)
  int out = 0;     // output channels
  int stride = 1;  // stride of the first conv (blocks), 1 otherwise
  int hw = 0;      // input resolution (square)
  double ms = 0.0;

  bool sameShape(const LatencyTableEntry& o) const {
    return in == o.in && mid == o.mid && out == o.out && stride == o.stride && hw == o.hw;
  }
};

// Where and how a table was measured; predictions are only meaningful under the same
// conditions (threads, batch size), so the searcher reports them next to its results.
struct LatencyTableInfo {
  std::string device;                // device name, e.g. "laptop" (host name by default)
  std::string torch_device = "cpu";  // torch device the blocks ran on
  int torch_threads = 1;             // torch intra-op threads during profiling
  int batch_size = 1;
  std::string design_space;  // DesignSpace::name
  int warmup = 0;
  int repeats = 0;
  double quantile = 0.5;       // of the timed samples (0.5 = median)
  std::string clock = "wall";  // "wall" | "thread_cpu" (see LatencyClock)
  std::string measured_at;     // UTC, ISO 8601
};

class LatencyTable {
 public:
  LatencyTable() = default;
  explicit LatencyTable(LatencyTableInfo info) : info_(std::move(info)) {}

  const LatencyTableInfo& info() const { return info_; }
  const std::vector<LatencyTableEntry>& entries() const { return entries_; }
  // Adds or replaces the entry with the same name.
  void setEntry(LatencyTableEntry entry);
  // nullptr if absent.
  const LatencyTableEntry* find(const std::string& name) const;

  static std::string stemName() { return "stem"; }
  static std::string headName() { return "head"; }
  static std::string blockName(int stage, bool first, int mid);

  // Every distinct entry a SubNet of `space` may use, with its shapes and ms = 0, in network
  // order (stem, stage 0 first blocks by mid, stage 0 later blocks by mid, ..., head).
  static std::vector<LatencyTableEntry> variants(const DesignSpace& space);
  // The entries one SubNet uses, in network order (one per active block).
  static std::vector<LatencyTableEntry> entriesOf(const DesignSpace& space,
                                                  const SubNetConfig& config);

  // Throws ConfigError naming the first entry `space` needs that is missing or was measured
  // with other shapes (a table of another design space).
  void checkCovers(const DesignSpace& space) const;
  // Sum of the entries the SubNet uses (stem + active blocks + head). Throws ConfigError
  // naming a missing entry.
  double predictMs(const DesignSpace& space, const SubNetConfig& config) const;

  nlohmann::json toJson() const;
  // `origin` names the source in error messages. Throws ConfigError naming the field that
  // is missing, of the wrong type or out of range.
  static LatencyTable fromJson(const nlohmann::json& j, const std::string& origin);
  // Written atomically. Throws IoError.
  void save(const std::string& path) const;
  // Throws IoError if the file cannot be read or is not JSON, ConfigError as fromJson.
  static LatencyTable load(const std::string& path);

 private:
  LatencyTableInfo info_;
  std::vector<LatencyTableEntry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

// Which clock a sample is read from. Thread CPU time counts only the time the calling thread
// computed, so samples on a machine shared with other busy processes are not stretched by
// preemption; it equals the latency on an otherwise idle device only when all the work runs
// on the calling thread, i.e. a CPU device with one torch thread. kAuto picks it exactly
// then, and wall-clock time otherwise.
enum class LatencyClock { kAuto, kWall, kThreadCpu };

// How blocks and whole SubNets are timed. Both use the same clock, thread count, batch size,
// inference and eval mode, warm-up, number of samples and statistic (the median, or another
// `quantile` of the samples), so that the sum of block latencies is comparable with a
// whole-SubNet measurement. A sample is one call by default: short samples are rarely hit
// by a preemption, so the median stays at the undisturbed latency even on a busy machine;
// `min_sample_ms` > 0 makes each whole-SubNet sample the mean of enough back-to-back calls
// to last that long (for clocks much coarser than a call).
struct LatencyProfileOptions {
  std::string device = "cpu";  // torch device string
  std::string device_name;     // recorded in the table; empty = this host's name
  int batch_size = 1;
  int warmup = 20;
  int repeats = 100;
  double quantile = 0.5;
  double min_sample_ms = 0.0;
  LatencyClock clock = LatencyClock::kAuto;
  void validate() const;  // throws ConfigError
  // The clock kAuto resolves to under torch's current thread count.
  LatencyClock resolvedClock() const;
};

std::string_view toString(LatencyClock clock);          // "auto" | "wall" | "thread_cpu"
LatencyClock parseLatencyClock(std::string_view text);  // throws ConfigError

// Called after each entry is measured (done of total).
using LatencyProgress =
    std::function<void(std::size_t done, std::size_t total, const LatencyTableEntry& entry)>;

// Called after each timed profiling pass.
using LatencyPassHook = std::function<void()>;

// Measures every variant of `space` (LatencyTable::variants), each a small standalone module on
// opts.device, with torch's current thread count. The variants are timed inside forward
// passes of SubNets (random, steered so that every variant gets opts.repeats samples after
// opts.warmup untimed passes), each fed the previous block's output, so that a block's entry
// includes what running after other blocks costs (displaced caches, allocator state), as it
// does in a whole forward. Progress is reported per entry at the end. `after_pass`, if set,
// runs after every timed pass: a validation can take its whole-SubNet samples there
// (SubNetTimer), interleaved with the profiling, so that both see the same machine
// conditions even on a machine whose speed drifts with other load. Throws ConfigError on
// bad options.
LatencyTable profileLatency(const DesignSpace& space, const LatencyProfileOptions& opts,
                            const LatencyProgress& progress = {},
                            const LatencyPassHook& after_pass = {});

// Times whole forward passes of one SubNet one sample at a time, exactly as measureSubNetMs
// does in one go. The constructor moves the module to opts.device, puts it in eval mode and
// runs opts.warmup untimed passes; the module must outlive the timer.
class SubNetTimer {
 public:
  SubNetTimer(SubNetModuleImpl& module, const LatencyProfileOptions& opts);
  // One timed sample in ms (one forward pass, or the mean of several if min_sample_ms > 0).
  double sampleMs();
  // `quantile` of the samples taken so far (opts.quantile by default). Throws Error if none.
  double quantileMs() const;
  double quantileMs(double q) const;
  std::size_t samples() const { return samples_.size(); }

 private:
  SubNetModuleImpl& module_;
  LatencyProfileOptions opts_;
  at::Tensor input_;
  int inner_ = 1;
  std::vector<double> samples_;
};

// Median (opts.quantile) latency in ms of one forward pass of the whole SubNet (input
// [batch, C, H, W] of its design space) on opts.device: SubNetTimer's warm-up, then
// opts.repeats samples. Moves `module` to opts.device and puts it in eval mode.
double measureSubNetMs(SubNetModuleImpl& module, const LatencyProfileOptions& opts);

}  // namespace sfn
