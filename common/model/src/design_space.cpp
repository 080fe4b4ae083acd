#include "sfn/model/design_space.h"

#include "sfn/core/error.h"
#include "sfn/model/presets_generated.h"
#include "sfn/io/toml_reader.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace sfn {

std::string_view toString(BnMode mode) { return mode == BnMode::kFrozen ? "frozen" : "trainable"; }

BnMode parseBnMode(std::string_view text) {
  if (text == "frozen") return BnMode::kFrozen;
  if (text == "trainable") return BnMode::kTrainable;
  SFN_THROW(ConfigError, "bn: expected \"frozen\" or \"trainable\", got \"", text, "\"");
}

int makeDivisible(double v, int divisor) {
  int rounded = static_cast<int>(std::floor((v + divisor / 2.0) / divisor)) * divisor;
  int out = std::max(divisor, rounded);
  // Rounding down must not remove more than 10% of the channels.
  if (out < 0.9 * v) out += divisor;
  return out;
}

int DesignSpace::midChannels(int out, double e) const { return makeDivisible(out * e, divisor); }

int DesignSpace::maxDepth() const {
  return depth_choices.empty() ? 0 : *std::max_element(depth_choices.begin(), depth_choices.end());
}

int DesignSpace::minDepth() const {
  return depth_choices.empty() ? 0 : *std::min_element(depth_choices.begin(), depth_choices.end());
}

void DesignSpace::validate() const {
  auto fail = [&](const std::string& key, const std::string& why) {
    SFN_THROW(ConfigError, "design space '", name, "': ", key, ": ", why);
  };
  if (in_channels < 1) fail("in_channels", "must be >= 1");
  if (image_size < 1) fail("image_size", "must be >= 1");
  if (num_classes < 2) fail("num_classes", "must be >= 2");
  if (stem_width < 1) fail("stem_width", "must be >= 1");
  if (widths.empty()) fail("widths", "needs at least one stage");
  for (int w : widths)
    if (w < 1) fail("widths", "every width must be >= 1");
  if (strides.size() != widths.size()) fail("strides", "needs one stride per stage (widths)");
  for (int s : strides)
    if (s < 1) fail("strides", "every stride must be >= 1");
  if (blocks_per_stage < 1) fail("blocks_per_stage", "must be >= 1");
  if (depth_choices.empty()) fail("depth_choices", "must not be empty");
  for (int d : depth_choices)
    if (d < 0 || d + 1 > blocks_per_stage)
      fail("depth_choices", "each d must satisfy 0 <= d < blocks_per_stage");
  if (!std::is_sorted(depth_choices.begin(), depth_choices.end()) ||
      std::adjacent_find(depth_choices.begin(), depth_choices.end()) != depth_choices.end())
    fail("depth_choices", "must be strictly ascending");
  if (expand_choices.empty()) fail("expand_choices", "must not be empty");
  for (double e : expand_choices)
    if (!(e > 0.0 && e <= 8.0)) fail("expand_choices", "each ratio must be in (0, 8]");
  if (!std::is_sorted(expand_choices.begin(), expand_choices.end()) ||
      std::adjacent_find(expand_choices.begin(), expand_choices.end()) != expand_choices.end())
    fail("expand_choices", "must be strictly ascending");
  if (divisor < 1) fail("divisor", "must be >= 1");
  if (norm_mean.size() != static_cast<std::size_t>(in_channels))
    fail("norm_mean", "needs one value per input channel");
  if (norm_std.size() != static_cast<std::size_t>(in_channels))
    fail("norm_std", "needs one value per input channel");
  for (double s : norm_std)
    if (!(s > 0)) fail("norm_std", "every value must be > 0");
}

DesignSpace DesignSpace::read(TomlReader& t, const DesignSpace& base) {
  DesignSpace s = base;
  t.get("name", s.name);
  t.get("in_channels", s.in_channels);
  t.get("image_size", s.image_size);
  t.get("num_classes", s.num_classes);
  t.get("stem_width", s.stem_width);
  t.get("widths", s.widths);
  t.get("strides", s.strides);
  t.get("blocks_per_stage", s.blocks_per_stage);
  t.get("depth_choices", s.depth_choices);
  t.get("expand_choices", s.expand_choices);
  t.get("divisor", s.divisor);
  if (std::string bn; t.get("bn", bn)) {
    if (bn != "frozen" && bn != "trainable")
      t.fail("bn", "must be \"frozen\" or \"trainable\", not \"" + bn + "\"");
    s.bn_mode = parseBnMode(bn);
  }
  t.get("norm_mean", s.norm_mean);
  t.get("norm_std", s.norm_std);
  t.rejectUnknown();
  s.validate();
  return s;
}

DesignSpace DesignSpace::fromToml(std::string_view toml_text, const DesignSpace& base) {
  TomlReader t = TomlReader::parse(toml_text, "design space");
  return read(t, base);
}

DesignSpace DesignSpace::fromToml(std::string_view toml_text) {
  return fromToml(toml_text, DesignSpace{});
}

std::string DesignSpace::toToml() const {
  auto arr = [](const auto& v) {
    toml::array a;
    for (auto x : v) a.push_back(x);
    return a;
  };
  toml::table t{{"name", name},
                {"in_channels", in_channels},
                {"image_size", image_size},
                {"num_classes", num_classes},
                {"stem_width", stem_width},
                {"widths", arr(widths)},
                {"strides", arr(strides)},
                {"blocks_per_stage", blocks_per_stage},
                {"depth_choices", arr(depth_choices)},
                {"expand_choices", arr(expand_choices)},
                {"divisor", divisor},
                {"bn", std::string(toString(bn_mode))},
                {"norm_mean", arr(norm_mean)},
                {"norm_std", arr(norm_std)}};
  std::ostringstream os;
  os << t;
  return os.str();
}

DesignSpace DesignSpace::preset(std::string_view preset_name) {
  for (const auto& [n, text] : generated::kPresets)
    if (n == preset_name) return fromToml(text);
  std::ostringstream known;
  for (const auto& [n, text] : generated::kPresets) known << ' ' << n;
  SFN_THROW(ConfigError, "unknown SuperNet preset '", preset_name, "' (known:", known.str(), ")");
}

std::vector<std::string> DesignSpace::presetNames() {
  std::vector<std::string> out;
  for (const auto& [n, text] : generated::kPresets) out.emplace_back(n);
  return out;
}

}  // namespace sfn
