#include "sfn/model/latency_table.h"

#include "sfn/core/bytes.h"
#include "sfn/core/error.h"
#include "sfn/core/rng.h"
#include "sfn/core/time_text.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/io/text_file.h"
#include "sfn/model/subnet_module.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <set>

namespace sfn {

namespace {

constexpr const char* kFormat = "sfn-latency-table";
constexpr int kVersion = 1;

int ceilDiv(int a, int b) { return (a + b - 1) / b; }

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

// Typed field access that names the field (and the file) when it is missing or wrong.
class Fields {
 public:
  Fields(const nlohmann::json& j, std::string origin, std::string prefix)
      : j_(j), origin_(std::move(origin)), prefix_(std::move(prefix)) {
    if (!j_.is_object()) fail("", "expected a JSON object");
  }

  const nlohmann::json& at(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end()) fail(key, "missing");
    return *it;
  }
  std::string str(const char* key) const {
    const auto& v = at(key);
    if (!v.is_string()) fail(key, "expected a string");
    return v.get<std::string>();
  }
  int integer(const char* key, int min_value) const {
    const auto& v = at(key);
    if (!v.is_number_integer()) fail(key, "expected an integer");
    const auto x = v.get<std::int64_t>();
    if (x < min_value || x > 1'000'000'000)
      fail(key, "out of range (" + std::to_string(x) + ", must be >= " + std::to_string(min_value) +
                    ")");
    return static_cast<int>(x);
  }
  double number(const char* key) const {
    const auto& v = at(key);
    if (!v.is_number()) fail(key, "expected a number");
    return v.get<double>();
  }

  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    std::string field = prefix_;
    if (!key.empty()) field += (field.empty() ? "" : ".") + key;
    SFN_THROW(ConfigError, "latency table '", origin_, "': field '",
              field.empty() ? "(top level)" : field, "': ", why);
  }

 private:
  const nlohmann::json& j_;
  std::string origin_;
  std::string prefix_;
};

// Runs `fn` on the table's device and waits for it to finish, so the clock measures the
// work and not just its launch on asynchronous devices.
void syncDevice(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// Reads the clock LatencyProfileOptions asks for, in milliseconds.
class SampleClock {
 public:
  explicit SampleClock(LatencyClock clock) : cpu_(clock == LatencyClock::kThreadCpu) {}
  double nowMs() const {
    if (cpu_) {
      timespec ts{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
    }
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

 private:
  bool cpu_;
};

// Quantile with linear interpolation between order statistics (the usual median at 0.5).
double quantileOf(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// Activation-like input (non-negative, as after a ReLU), from an explicit generator so
// profiling never touches torch's global RNG.
torch::Tensor makeInput(int batch, int channels, int hw, const torch::Device& device,
                        std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::rand({batch, channels, hw, hw}, gen, torch::kFloat32).to(device);
}

// The stem entry, each stage's entries as `stage(s, in, hw, out)` appends them (advancing
// the input channels `in` and resolution `hw`), then the head entry: the walk that both
// the full variant list and one SubNet's entries follow, so the two cannot drift apart.
template <typename AppendStage>
std::vector<LatencyTableEntry> stemStagesHead(const DesignSpace& space, AppendStage&& stage) {
  std::vector<LatencyTableEntry> out;
  out.push_back(
      {LatencyTable::stemName(), space.in_channels, 0, space.stem_width, 1, space.image_size, 0.0});
  int hw = space.image_size;
  int in = space.stem_width;
  for (int s = 0; s < space.numStages(); ++s) stage(s, in, hw, out);
  out.push_back({LatencyTable::headName(), in, 0, space.num_classes, 1, hw, 0.0});
  return out;
}

}  // namespace

// ---- LatencyTable ----------------------------------------------------------------------

void LatencyTable::setEntry(LatencyTableEntry entry) {
  auto it = index_.find(entry.name);
  if (it != index_.end()) {
    entries_[it->second] = std::move(entry);
    return;
  }
  index_.emplace(entry.name, entries_.size());
  entries_.push_back(std::move(entry));
}

const LatencyTableEntry* LatencyTable::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string LatencyTable::blockName(int stage, bool first, int mid) {
  return "stage" + std::to_string(stage) + (first ? ".first.mid" : ".rest.mid") +
         std::to_string(mid);
}

std::vector<LatencyTableEntry> LatencyTable::variants(const DesignSpace& space) {
  space.validate();
  return stemStagesHead(space, [&](int s, int& in, int& hw, std::vector<LatencyTableEntry>& out) {
    const int width = space.widths[s];
    const int stride = space.strides[s];
    const int out_hw = ceilDiv(hw, stride);
    // Distinct mid channel counts, ascending (several expand ratios can round to one).
    std::set<int> mids;
    for (double e : space.expand_choices) mids.insert(space.midChannels(width, e));
    for (int mid : mids) out.push_back({blockName(s, true, mid), in, mid, width, stride, hw, 0.0});
    if (space.maxDepth() > 0)
      for (int mid : mids)
        out.push_back({blockName(s, false, mid), width, mid, width, 1, out_hw, 0.0});
    in = width;
    hw = out_hw;
  });
}

std::vector<LatencyTableEntry> LatencyTable::entriesOf(const DesignSpace& space,
                                                       const SubNetConfig& config) {
  config.validate(space);
  return stemStagesHead(space, [&](int s, int& in, int& hw, std::vector<LatencyTableEntry>& out) {
    const int width = space.widths[s];
    for (int b = 0; b <= config.depth[s]; ++b) {
      const int stride = b == 0 ? space.strides[s] : 1;
      const int mid =
          space.midChannels(width, config.expandRatio(space, s * space.blocks_per_stage + b));
      out.push_back({blockName(s, b == 0, mid), in, mid, width, stride, hw, 0.0});
      in = width;
      hw = ceilDiv(hw, stride);
    }
  });
}

void LatencyTable::checkCovers(const DesignSpace& space) const {
  for (const auto& need : variants(space)) {
    const LatencyTableEntry* have = find(need.name);
    if (have == nullptr)
      SFN_THROW(ConfigError, "latency table of device '", info_.device, "' (design space '",
                info_.design_space, "') has no entry '", need.name, "' needed by design space '",
                space.name, "'");
    if (!have->sameShape(need))
      SFN_THROW(ConfigError, "latency table of device '", info_.device, "': entry '", need.name,
                "' was measured for in=", have->in, " mid=", have->mid, " out=", have->out,
                " stride=", have->stride, " hw=", have->hw, ", design space '", space.name,
                "' needs in=", need.in, " mid=", need.mid, " out=", need.out,
                " stride=", need.stride, " hw=", need.hw);
  }
}

double LatencyTable::predictMs(const DesignSpace& space, const SubNetConfig& config) const {
  double total = 0.0;
  for (const auto& e : entriesOf(space, config)) {
    const LatencyTableEntry* have = find(e.name);
    if (have == nullptr)
      SFN_THROW(ConfigError, "latency table of device '", info_.device, "' has no entry '", e.name,
                "'");
    total += have->ms;
  }
  return total;
}

nlohmann::json LatencyTable::toJson() const {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : entries_)
    entries.push_back({{"name", e.name},
                       {"in", e.in},
                       {"mid", e.mid},
                       {"out", e.out},
                       {"stride", e.stride},
                       {"hw", e.hw},
                       {"ms", e.ms}});
  return {{"format", kFormat},
          {"version", kVersion},
          {"device", info_.device},
          {"torch_device", info_.torch_device},
          {"torch_threads", info_.torch_threads},
          {"batch_size", info_.batch_size},
          {"design_space", info_.design_space},
          {"warmup", info_.warmup},
          {"repeats", info_.repeats},
          {"quantile", info_.quantile},
          {"clock", info_.clock},
          {"measured_at", info_.measured_at},
          {"entries", entries}};
}

LatencyTable LatencyTable::fromJson(const nlohmann::json& j, const std::string& origin) {
  const Fields top(j, origin, "");
  if (top.str("format") != kFormat) top.fail("format", std::string("expected \"") + kFormat + "\"");
  if (top.integer("version", 0) != kVersion)
    top.fail("version", "unsupported version (this build reads " + std::to_string(kVersion) + ")");
  LatencyTableInfo info;
  info.device = top.str("device");
  if (info.device.empty()) top.fail("device", "must not be empty");
  info.torch_device = top.str("torch_device");
  info.torch_threads = top.integer("torch_threads", 1);
  info.batch_size = top.integer("batch_size", 1);
  info.design_space = top.str("design_space");
  info.warmup = top.integer("warmup", 0);
  info.repeats = top.integer("repeats", 1);
  info.quantile = top.number("quantile");
  if (!(info.quantile > 0 && info.quantile <= 1)) top.fail("quantile", "must be in (0, 1]");
  info.clock = top.str("clock");
  if (info.clock != "wall" && info.clock != "thread_cpu")
    top.fail("clock", "must be \"wall\" or \"thread_cpu\"");
  info.measured_at = top.str("measured_at");
  LatencyTable table(std::move(info));
  const auto& entries = top.at("entries");
  if (!entries.is_array() || entries.empty()) top.fail("entries", "expected a non-empty array");
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Fields f(entries[i], origin, "entries[" + std::to_string(i) + "]");
    LatencyTableEntry e;
    e.name = f.str("name");
    if (e.name.empty()) f.fail("name", "must not be empty");
    if (table.find(e.name) != nullptr) f.fail("name", "duplicate entry '" + e.name + "'");
    e.in = f.integer("in", 1);
    e.mid = f.integer("mid", 0);
    e.out = f.integer("out", 1);
    e.stride = f.integer("stride", 1);
    e.hw = f.integer("hw", 1);
    e.ms = f.number("ms");
    if (!std::isfinite(e.ms) || e.ms < 0) f.fail("ms", "must be a finite number >= 0");
    table.setEntry(std::move(e));
  }
  return table;
}

void LatencyTable::save(const std::string& path) const {
  const std::string text = toJson().dump(2) + "\n";
  writeFileAtomically(path, asBytes(text));
}

LatencyTable LatencyTable::load(const std::string& path) {
  const std::string text = readTextFile(path, "latency table");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    SFN_THROW(IoError, "latency table '", path, "' is not valid JSON: ", e.what());
  }
  return fromJson(j, path);
}

// ---- profiling -------------------------------------------------------------------------

std::string_view toString(LatencyClock clock) {
  switch (clock) {
    case LatencyClock::kAuto:
      return "auto";
    case LatencyClock::kWall:
      return "wall";
    case LatencyClock::kThreadCpu:
      return "thread_cpu";
  }
  return "auto";
}

LatencyClock parseLatencyClock(std::string_view text) {
  if (text == "auto") return LatencyClock::kAuto;
  if (text == "wall") return LatencyClock::kWall;
  if (text == "thread_cpu") return LatencyClock::kThreadCpu;
  SFN_THROW(ConfigError, "latency clock must be auto, wall or thread_cpu (got \"", text, "\")");
}

LatencyClock LatencyProfileOptions::resolvedClock() const {
  if (clock != LatencyClock::kAuto) return clock;
  const bool cpu = torch::Device(device).is_cpu();
  return cpu && at::get_num_threads() == 1 ? LatencyClock::kThreadCpu : LatencyClock::kWall;
}

void LatencyProfileOptions::validate() const {
  if (batch_size < 1) SFN_THROW(ConfigError, "latency profile: batch size must be >= 1");
  if (warmup < 0) SFN_THROW(ConfigError, "latency profile: warmup must be >= 0");
  if (repeats < 1) SFN_THROW(ConfigError, "latency profile: repeats must be >= 1");
  if (!(quantile > 0 && quantile <= 1))
    SFN_THROW(ConfigError, "latency profile: quantile must be in (0, 1] (got ", quantile, ")");
  if (!(min_sample_ms >= 0)) SFN_THROW(ConfigError, "latency profile: min_sample_ms must be >= 0");
  try {
    (void)torch::Device(device);
  } catch (const std::exception& e) {
    SFN_THROW(ConfigError, "latency profile: bad torch device '", device, "': ", e.what());
  }
}

namespace {

LatencyTableInfo profileInfo(const DesignSpace& space, const LatencyProfileOptions& opts) {
  LatencyTableInfo info;
  info.device = opts.device_name.empty() ? hostName() : opts.device_name;
  info.torch_device = opts.device;
  info.torch_threads = at::get_num_threads();
  info.batch_size = opts.batch_size;
  info.design_space = space.name;
  info.warmup = opts.warmup;
  info.repeats = opts.repeats;
  info.quantile = opts.quantile;
  info.clock = std::string(toString(opts.resolvedClock()));
  info.measured_at = utcNow();
  return info;
}

// Every variant as a small module of the class SubNetModule uses (same kernels), on the
// profiling device; stem and head include the ReLU / pooling the full forward applies.
struct VariantPieces {
  using Piece = std::function<torch::Tensor(const torch::Tensor&)>;

  VariantPieces(const std::vector<LatencyTableEntry>& all, bool bn, const torch::Device& device) {
    for (const auto& e : all) {
      index.emplace(e.name, pieces.size());
      if (e.name == LatencyTable::stemName()) {
        ConvBn m(e.in, e.out, 3, 1, bn);
        m->to(device);
        m->eval();
        pieces.emplace_back(
            [m](const torch::Tensor& x) mutable { return torch::relu(m->forward(x)); });
      } else if (e.name == LatencyTable::headName()) {
        torch::nn::Linear m(e.in, e.out);
        m->to(device);
        m->eval();
        pieces.emplace_back([m](const torch::Tensor& x) mutable {
          return m->forward(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
        });
      } else {
        ResBlock m(e.in, e.mid, e.out, e.stride, bn);
        m->to(device);
        m->eval();
        pieces.emplace_back([m](const torch::Tensor& x) mutable { return m->forward(x); });
      }
    }
  }

  std::unordered_map<std::string, std::size_t> index;  // entry name -> piece
  std::vector<Piece> pieces;
};

// Times the variants where they run in practice: inside forward passes of real SubNets,
// each block fed the previous block's output. Timed one by one in a loop instead, a block
// finds its weights, code and allocator state hot from its own previous call; in a whole
// forward the blocks before it have displaced them, which on a small CPU made every block a
// few percent and the head several times slower than in isolation, and the sum of isolated
// timings fell 10-25 % short of the whole SubNet. Construct and use in inference mode.
class PassProfiler {
 public:
  PassProfiler(const DesignSpace& space, const LatencyProfileOptions& opts, VariantPieces& variants)
      : space_(space),
        device_(opts.device),
        clock_(opts.resolvedClock()),
        input_(makeInput(opts.batch_size, space.in_channels, space.image_size, device_, 1)),
        variants_(variants),
        samples_(variants.pieces.size()) {}

  void runPass(const SubNetConfig& config, bool timed) {
    torch::Tensor x = input_;
    for (const auto& e : LatencyTable::entriesOf(space_, config)) {
      const std::size_t i = variants_.index.at(e.name);
      const double t0 = clock_.nowMs();
      x = variants_.pieces[i](x);
      syncDevice(device_);
      const double t1 = clock_.nowMs();
      if (timed) samples_[i].push_back(t1 - t0);
    }
  }

  // Mostly random SubNets, but half of the choices go to the variant with the fewest samples
  // so far, so that every variant gets `repeats` samples within a few hundred passes.
  SubNetConfig pickConfig() {
    SubNetConfig c = SubNetConfig::random(space_, rng_);
    for (int s = 0; s < space_.numStages(); ++s) {
      const int width = space_.widths[s];
      auto count = [&](int b, std::size_t k) {
        const int mid = space_.midChannels(width, space_.expand_choices[k]);
        return samples_[variants_.index.at(LatencyTable::blockName(s, b == 0, mid))].size();
      };
      if (space_.maxDepth() > 0 && rng_.below(2)) c.depth[s] = space_.maxDepth();
      for (int b = 0; b < space_.blocks_per_stage; ++b) {
        if (!rng_.below(2)) continue;
        std::size_t best = 0;
        for (std::size_t k = 1; k < space_.expand_choices.size(); ++k)
          if (count(b, k) < count(b, best)) best = k;
        c.expand[static_cast<std::size_t>(s * space_.blocks_per_stage + b)] =
            static_cast<int>(best);
      }
    }
    return c;
  }

  bool enough(int repeats) const {
    return std::all_of(samples_.begin(), samples_.end(), [&](const auto& v) {
      return v.size() >= static_cast<std::size_t>(repeats);
    });
  }

  std::vector<std::vector<double>>& samples() { return samples_; }

 private:
  const DesignSpace& space_;
  torch::Device device_;
  SampleClock clock_;
  torch::Tensor input_;
  VariantPieces& variants_;
  std::vector<std::vector<double>> samples_;  // per variant
  Rng rng_{0x1A7E9C7ULL};
};

}  // namespace

LatencyTable profileLatency(const DesignSpace& space, const LatencyProfileOptions& opts,
                            const LatencyProgress& progress, const LatencyPassHook& after_pass) {
  opts.validate();
  LatencyTable table(profileInfo(space, opts));
  const std::vector<LatencyTableEntry> all = LatencyTable::variants(space);
  VariantPieces variants(all, space.bn_mode == BnMode::kTrainable, torch::Device(opts.device));

  c10::InferenceMode inference;
  PassProfiler profiler(space, opts, variants);
  for (int w = 0; w < std::max(opts.warmup, 1); ++w) profiler.runPass(profiler.pickConfig(), false);
  // The bound only guards against a design space the steering cannot cover.
  const long max_passes = 100L * opts.repeats + 10000;
  for (long p = 0; p < max_passes && !profiler.enough(opts.repeats); ++p) {
    profiler.runPass(profiler.pickConfig(), true);
    if (after_pass) after_pass();
  }
  auto& samples = profiler.samples();
  for (std::size_t i = 0; i < all.size(); ++i) {
    SFN_ENFORCE(!samples[i].empty(), Error, "latency profile: variant '", all[i].name,
                "' was never sampled");
    LatencyTableEntry e = all[i];
    e.ms = quantileOf(std::move(samples[i]), opts.quantile);
    table.setEntry(e);
    if (progress) progress(i + 1, all.size(), e);
  }
  return table;
}

SubNetTimer::SubNetTimer(SubNetModuleImpl& module, const LatencyProfileOptions& opts)
    : module_(module), opts_(opts) {
  opts_.validate();
  const torch::Device device(opts_.device);
  module_.to(device);
  module_.eval();
  const DesignSpace& space = module_.space();
  c10::InferenceMode inference;
  input_ = makeInput(opts_.batch_size, space.in_channels, space.image_size, device, 12345);
  for (int i = 0; i < opts_.warmup; ++i) (void)module_.forward(input_);
  syncDevice(device);
  if (opts_.min_sample_ms > 0) {
    // One call's cost, as the minimum of a few, decides how many calls make one sample.
    const SampleClock clock(opts_.resolvedClock());
    double single_ms = 1e300;
    for (int i = 0; i < 3; ++i) {
      const double t0 = clock.nowMs();
      (void)module_.forward(input_);
      syncDevice(device);
      single_ms = std::min(single_ms, clock.nowMs() - t0);
    }
    inner_ = static_cast<int>(
        std::clamp(std::ceil(opts_.min_sample_ms / std::max(single_ms, 1e-6)), 1.0, 100000.0));
  }
}

double SubNetTimer::sampleMs() {
  const torch::Device device(opts_.device);
  const SampleClock clock(opts_.resolvedClock());
  c10::InferenceMode inference;
  const double t0 = clock.nowMs();
  for (int i = 0; i < inner_; ++i) (void)module_.forward(input_);
  syncDevice(device);
  const double ms = (clock.nowMs() - t0) / inner_;
  samples_.push_back(ms);
  return ms;
}

double SubNetTimer::quantileMs() const { return quantileMs(opts_.quantile); }

double SubNetTimer::quantileMs(double q) const {
  SFN_ENFORCE(!samples_.empty(), Error, "SubNetTimer: no samples taken");
  return quantileOf(samples_, q);
}

double measureSubNetMs(SubNetModuleImpl& module, const LatencyProfileOptions& opts) {
  SubNetTimer timer(module, opts);
  for (int r = 0; r < opts.repeats; ++r) (void)timer.sampleMs();
  return timer.quantileMs();
}

}  // namespace sfn
