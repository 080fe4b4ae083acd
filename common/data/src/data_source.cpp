#include "sfn/data/data_source.h"

#include "sfn/core/error.h"

namespace sfn {

void DataOptions::validate() const {
  if (dataset != "fmnist" && dataset != "synthetic")
    SFN_THROW(ConfigError, "data.dataset must be \"fmnist\" or \"synthetic\" (got \"", dataset,
              "\")");
  if (!(val_fraction >= 0 && val_fraction < 1))
    SFN_THROW(ConfigError, "data.val_fraction must be in [0, 1) (got ", val_fraction, ")");
  if (dataset == "synthetic" && (synthetic_train < 1 || synthetic_test < 1))
    SFN_THROW(ConfigError, "data.synthetic_train and data.synthetic_test must be >= 1");
  if (partition.scheme != "iid" && partition.scheme != "dirichlet" && partition.scheme != "shards")
    SFN_THROW(ConfigError, "data.partition must be iid, dirichlet or shards (got \"",
              partition.scheme, "\")");
  if (!(partition.alpha > 0))
    SFN_THROW(ConfigError, "data.alpha must be > 0 (got ", partition.alpha, ")");
}

DataBundle loadDataBundle(const DataOptions& opts) {
  opts.validate();
  DataBundle b;
  if (opts.dataset == "fmnist") {
    const std::string dir = opts.dir.empty() ? defaultFashionMnistDir() : opts.dir;
    b.train = loadFashionMnist(dir, true);
    b.test = loadFashionMnist(dir, false);
  } else {
    // Train and test share class prototypes (same seed) but not samples.
    Dataset all = makeSyntheticDataset(opts.synthetic_train + opts.synthetic_test,
                                       opts.synthetic_channels, opts.synthetic_image_size,
                                       opts.synthetic_classes, opts.split_seed + 17);
    b.train.name = "synthetic-train";
    b.train.num_classes = all.num_classes;
    b.train.images = all.images.narrow(0, 0, opts.synthetic_train);
    b.train.labels = all.labels.narrow(0, 0, opts.synthetic_train);
    b.test.name = "synthetic-test";
    b.test.num_classes = all.num_classes;
    b.test.images = all.images.narrow(0, opts.synthetic_train, opts.synthetic_test);
    b.test.labels = all.labels.narrow(0, opts.synthetic_train, opts.synthetic_test);
  }
  b.split = splitTrainVal(b.train.size(), opts.val_fraction, opts.split_seed);
  return b;
}

}  // namespace sfn
