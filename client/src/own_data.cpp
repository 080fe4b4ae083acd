#include "sfn/client/own_data.h"

#include "sfn/core/error.h"
#include "sfn/data/local_data.h"

#include <ATen/ATen.h>

#include <numeric>

namespace sfn {

OwnData::OwnData(Dataset raw) : raw_(std::move(raw)) {
  if (raw_.size() == 0) SFN_THROW(ConfigError, "client data '", raw_.name, "' holds no samples");
  indices_.resize(static_cast<std::size_t>(raw_.size()));
  std::iota(indices_.begin(), indices_.end(), std::int64_t{0});
  info_ = describeData(raw_, indices_);
}

DataClaim OwnData::claim() const {
  DataClaim c;
  c.samples = indices_.size();
  c.data = info_;
  return c;
}

void OwnData::prepare(const RunSettings& settings) {
  const DesignSpace& space = settings.space;
  checkInputShape(raw_, space, "client data '" + raw_.name + "'");
  if (info_.max_label >= space.num_classes)
    SFN_THROW(DataError, "client data '", raw_.name, "': label ", info_.max_label,
              " is outside the run's ", space.num_classes, " classes");
  if (normalized_.images.defined() && mean_ == space.norm_mean && std_ == space.norm_std) return;
  normalized_ = raw_;
  normalized_.images = raw_.images.clone();
  normalize(normalized_, space.norm_mean, space.norm_std);
  mean_ = space.norm_mean;
  std_ = space.norm_std;
}

}  // namespace sfn
