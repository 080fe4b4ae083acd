#include "sfn/client/client_data.h"

#include "sfn/core/error.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace sfn {

RunSettings RunSettings::fromWelcome(const WelcomeMsg& welcome) {
  if (welcome.design_space.empty())
    SFN_THROW(ProtocolError, "the server's Welcome carries no design space");
  RunSettings s;
  s.run_id = welcome.run_id;
  s.space = DesignSpace::fromToml(welcome.design_space);
  s.space.validate();
  s.shard = welcome.shard;
  return s;
}

DataInfo describeData(const Dataset& data, std::span<const std::int64_t> indices) {
  DataInfo info;
  if (data.images.defined() && data.images.dim() == 4) {
    info.channels = static_cast<std::uint32_t>(data.images.size(1));
    info.height = static_cast<std::uint32_t>(data.images.size(2));
    info.width = static_cast<std::uint32_t>(data.images.size(3));
  }
  if (!data.labels.defined() || indices.empty()) return info;
  const at::Tensor labels = data.labels.to(at::kLong).contiguous();
  const std::int64_t* l = labels.data_ptr<std::int64_t>();
  const std::int64_t n = labels.numel();
  for (const std::int64_t i : indices)
    if (i >= 0 && i < n) info.max_label = std::max(info.max_label, l[i]);
  return info;
}

void checkInputShape(const Dataset& data, const DesignSpace& space, const std::string& what) {
  const DataInfo d = describeData(data, {});
  if (d.channels != static_cast<std::uint32_t>(space.in_channels) ||
      d.height != static_cast<std::uint32_t>(space.image_size) ||
      d.width != static_cast<std::uint32_t>(space.image_size))
    SFN_THROW(DataError, what, ": images are ", d.channels, "x", d.height, "x", d.width,
              " but the run's SuperNet '", space.name, "' takes ", space.in_channels, "x",
              space.image_size, "x", space.image_size);
}

}  // namespace sfn
