#include "sfn/model/subnet_config.h"

#include "sfn/core/error.h"
#include "sfn/core/text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace sfn {

namespace {

int indexOf(const std::vector<int>& v, int x) {
  auto it = std::find(v.begin(), v.end(), x);
  return it == v.end() ? -1 : static_cast<int>(it - v.begin());
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

}  // namespace

SubNetConfig SubNetConfig::maxNet(const DesignSpace& space) {
  SubNetConfig c;
  c.depth.assign(space.numStages(), space.maxDepth());
  c.expand.assign(space.numBlocks(), static_cast<int>(space.expand_choices.size()) - 1);
  return c;
}

SubNetConfig SubNetConfig::minNet(const DesignSpace& space) {
  SubNetConfig c;
  c.depth.assign(space.numStages(), space.minDepth());
  c.expand.assign(space.numBlocks(), 0);
  return c.normalized(space);
}

SubNetConfig SubNetConfig::random(const DesignSpace& space, Rng& rng) {
  SubNetConfig c;
  c.depth.resize(space.numStages());
  c.expand.resize(space.numBlocks());
  for (auto& d : c.depth) d = space.depth_choices[rng.below(space.depth_choices.size())];
  for (auto& e : c.expand) e = static_cast<int>(rng.below(space.expand_choices.size()));
  return c;
}

bool SubNetConfig::isActive(const DesignSpace& space, int block) const {
  const int stage = block / space.blocks_per_stage;
  const int pos = block % space.blocks_per_stage;
  return pos <= depth[stage];
}

double SubNetConfig::expandRatio(const DesignSpace& space, int block) const {
  return space.expand_choices[expand[block]];
}

void SubNetConfig::validate(const DesignSpace& space) const {
  if (static_cast<int>(depth.size()) != space.numStages())
    SFN_THROW(ConfigError, "subnet: d has ", depth.size(), " entries, the design space '",
              space.name, "' has ", space.numStages(), " stages");
  if (static_cast<int>(expand.size()) != space.numBlocks())
    SFN_THROW(ConfigError, "subnet: e has ", expand.size(), " entries, the design space '",
              space.name, "' has ", space.numBlocks(), " blocks");
  for (std::size_t s = 0; s < depth.size(); ++s)
    if (indexOf(space.depth_choices, depth[s]) < 0)
      SFN_THROW(ConfigError, "subnet: d[", s, "] = ", depth[s], " is not a depth choice");
  for (std::size_t b = 0; b < expand.size(); ++b)
    if (expand[b] < 0 || expand[b] >= static_cast<int>(space.expand_choices.size()))
      SFN_THROW(ConfigError, "subnet: e[", b, "] index ", expand[b], " is out of range");
}

SubNetConfig SubNetConfig::normalized(const DesignSpace& space) const {
  SubNetConfig c = *this;
  for (int b = 0; b < space.numBlocks(); ++b)
    if (!isActive(space, b)) c.expand[b] = 0;
  return c;
}

bool SubNetConfig::isMaxNet(const DesignSpace& space) const {
  return sameNet(maxNet(space), space);
}

bool SubNetConfig::isMinNet(const DesignSpace& space) const {
  return sameNet(minNet(space), space);
}

bool SubNetConfig::sameNet(const SubNetConfig& o, const DesignSpace& space) const {
  return normalized(space) == o.normalized(space);
}

std::string SubNetConfig::toString(const DesignSpace& space) const {
  validate(space);
  const SubNetConfig n = normalized(space);
  std::ostringstream os;
  os << "d=";
  for (std::size_t s = 0; s < n.depth.size(); ++s) os << (s ? "-" : "") << n.depth[s];
  os << ";e=";
  for (std::size_t b = 0; b < n.expand.size(); ++b) {
    // Shortest text that parses back to the same choice.
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, space.expand_choices[n.expand[b]]);
    os << (b ? "-" : "") << std::string_view(buf, res.ptr - buf);
  }
  return os.str();
}

SubNetConfig SubNetConfig::parse(std::string_view text, const DesignSpace& space) {
  const std::string shown(text.substr(0, 200));
  auto parts = split(trim(text), ';');
  if (parts.size() != 2 || parts[0].substr(0, 2) != "d=" || parts[1].substr(0, 2) != "e=")
    SFN_THROW(ConfigError, "subnet '", shown, "': expected \"d=..;e=..\"");
  SubNetConfig c;
  auto dparts = split(parts[0].substr(2), '-');
  for (std::size_t i = 0; i < dparts.size(); ++i) {
    int v = 0;
    auto sv = dparts[i];
    auto res = std::from_chars(sv.data(), sv.data() + sv.size(), v);
    if (res.ec != std::errc() || res.ptr != sv.data() + sv.size())
      SFN_THROW(ConfigError, "subnet '", shown, "': d[", i, "] '", sv, "' is not an integer");
    c.depth.push_back(v);
  }
  auto eparts = split(parts[1].substr(2), '-');
  for (std::size_t i = 0; i < eparts.size(); ++i) {
    double v = 0;
    auto sv = eparts[i];
    auto res = std::from_chars(sv.data(), sv.data() + sv.size(), v);
    if (res.ec != std::errc() || res.ptr != sv.data() + sv.size())
      SFN_THROW(ConfigError, "subnet '", shown, "': e[", i, "] '", sv, "' is not a number");
    int idx = -1;
    for (std::size_t k = 0; k < space.expand_choices.size(); ++k)
      if (std::abs(space.expand_choices[k] - v) < 1e-9) idx = static_cast<int>(k);
    if (idx < 0)
      SFN_THROW(ConfigError, "subnet '", shown, "': e[", i, "] = ", v,
                " is not an expand choice of '", space.name, "'");
    c.expand.push_back(idx);
  }
  c.validate(space);
  return c.normalized(space);
}

SubNetConfig SubNetConfig::mutate(const DesignSpace& space, Rng& rng, double gene_prob) const {
  SubNetConfig c = *this;
  for (auto& d : c.depth)
    if (rng.uniform() < gene_prob) d = space.depth_choices[rng.below(space.depth_choices.size())];
  for (auto& e : c.expand)
    if (rng.uniform() < gene_prob) e = static_cast<int>(rng.below(space.expand_choices.size()));
  return c;
}

SubNetConfig SubNetConfig::crossover(const SubNetConfig& a, const SubNetConfig& b, Rng& rng) {
  SFN_ENFORCE(a.depth.size() == b.depth.size() && a.expand.size() == b.expand.size(), ConfigError,
              "crossover of configs from different design spaces");
  SubNetConfig c = a;
  for (std::size_t i = 0; i < c.depth.size(); ++i)
    if (rng.below(2)) c.depth[i] = b.depth[i];
  for (std::size_t i = 0; i < c.expand.size(); ++i)
    if (rng.below(2)) c.expand[i] = b.expand[i];
  return c;
}

std::uint64_t SubNetConfig::hash() const {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL;
  for (int d : depth) h = Rng::mix(h ^ static_cast<std::uint64_t>(d + 1));
  for (int e : expand) h = Rng::mix(h ^ static_cast<std::uint64_t>(e + 101));
  return h;
}

}  // namespace sfn
