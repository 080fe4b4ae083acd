#include "sfn/client/prepared_data.h"

#include "sfn/core/error.h"

namespace sfn {

PreparedData::PreparedData(const Dataset& data, IndexList indices)
    : data_(data), indices_(std::move(indices)), info_(describeData(data_, indices_)) {
  if (indices_.empty()) SFN_THROW(ConfigError, "client data '", data_.name, "': no samples");
}

DataClaim PreparedData::claim() const {
  DataClaim c;
  c.samples = indices_.size();
  c.data = info_;
  return c;
}

void PreparedData::prepare(const RunSettings& settings) {
  checkInputShape(data_, settings.space, "client data '" + data_.name + "'");
}

}  // namespace sfn
