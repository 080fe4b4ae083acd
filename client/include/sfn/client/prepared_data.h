// ClientData over samples the caller already prepared with the run's own data pipeline
// (loadDataBundle: the same normalisation as the server): sfn-sim's fleet of real clients
// and tests. prepare() only checks the input shape.
#pragma once

#include "sfn/client/client_data.h"

namespace sfn {

class PreparedData final : public ClientData {
 public:
  // `data` must outlive this object; `indices` are this client's samples in it (non-empty,
  // else ConfigError).
  PreparedData(const Dataset& data, IndexList indices);

  DataClaim claim() const override;
  void prepare(const RunSettings& settings) override;
  const Dataset& dataset() const override { return data_; }
  const IndexList& indices() const override { return indices_; }

 private:
  const Dataset& data_;
  IndexList indices_;
  DataInfo info_;
};

}  // namespace sfn
