// ClientData over a device's own samples (local files read by loadLocalData, or an app's
// SampleSource made into a Dataset by materialize). The samples arrive with pixel values in
// [0, 1]; prepare() normalises a copy with the run's statistics (its design space's
// norm_mean and norm_std), so a device never needs to know them. All samples are trained
// on: an own-data client keeps no validation split (the server validates on its own data).
#pragma once

#include "sfn/client/client_data.h"

#include <vector>

namespace sfn {

class OwnData final : public ClientData {
 public:
  // `raw`: images float [N, C, H, W] in [0, 1], labels int64 [N] >= 0; ConfigError if empty.
  explicit OwnData(Dataset raw);

  DataClaim claim() const override;
  // Checks the input shape and labels against the run (DataError), then normalises.
  void prepare(const RunSettings& settings) override;
  const Dataset& dataset() const override { return normalized_; }
  const IndexList& indices() const override { return indices_; }

 private:
  Dataset raw_;
  Dataset normalized_;
  IndexList indices_;
  DataInfo info_;
  // The statistics normalized_ was made with; a later run with the same ones reuses it.
  std::vector<double> mean_, std_;
};

}  // namespace sfn
