// The SuperNet design space (DESIGN.md section 1) as data.
//
// An OFA-style ResNet: a stem, numStages() stages of blocksPerStage blocks each, and a
// linear head. Elastic: per-stage depth (keep the first 1 + d blocks) and per-block expand
// ratio (mid channels). Presets live as TOML in common/model/presets/ and are compiled in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

class TomlReader;

// How BatchNorm is handled. Frozen: BN is the identity (gamma 1, beta 0, mean 0, var 1),
// as in the paper's released runs; the layers are left out of the module and of the
// SuperNet state entirely. Trainable: BN affine parameters and running statistics are part
// of the state and statistics are re-estimated per SubNet before evaluation or export.
enum class BnMode { kFrozen, kTrainable };

std::string_view toString(BnMode mode);
BnMode parseBnMode(std::string_view text);  // "frozen" | "trainable"; throws ConfigError

struct DesignSpace {
  std::string name;
  int in_channels = 1;
  int image_size = 28;  // square inputs
  int num_classes = 10;
  int stem_width = 16;
  std::vector<int> widths;   // output channels per stage
  std::vector<int> strides;  // stride of each stage's first block
  int blocks_per_stage = 3;
  std::vector<int> depth_choices;      // extra blocks d; a stage keeps 1 + d blocks
  std::vector<double> expand_choices;  // ascending
  int divisor = 8;                     // OFA make_divisible divisor for mid channels
  BnMode bn_mode = BnMode::kFrozen;
  // Input normalization applied by data loaders and recorded in exported manifests.
  std::vector<double> norm_mean;
  std::vector<double> norm_std;

  int numStages() const { return static_cast<int>(widths.size()); }
  int numBlocks() const { return numStages() * blocks_per_stage; }
  int maxDepth() const;  // largest depth choice
  int minDepth() const;
  // Mid channels of a block with `out` output channels and expand ratio `e`.
  int midChannels(int out, double e) const;

  // Throws ConfigError naming the offending field.
  void validate() const;

  // Built-in presets: "fmnist" (default) and "paper-cifar10". Throws ConfigError.
  static DesignSpace preset(std::string_view name);
  static std::vector<std::string> presetNames();
  // Parses the TOML form used by presets (and by [supernet] tables in run configs).
  // Keys missing from the TOML keep the values of `base`.
  static DesignSpace fromToml(std::string_view toml_text, const DesignSpace& base);
  static DesignSpace fromToml(std::string_view toml_text);
  // The same from one table of a larger file (a run config's [supernet]): reads the keys
  // above, then rejects any other key the table holds that no earlier read asked for.
  // Throws ConfigError naming the file and key.
  static DesignSpace read(TomlReader& table, const DesignSpace& base);
  std::string toToml() const;
};

// OFA's rule: v' = max(d, floor((v + d/2) / d) * d); if v' < 0.9 v then v' += d.
int makeDivisible(double v, int divisor);

}  // namespace sfn
