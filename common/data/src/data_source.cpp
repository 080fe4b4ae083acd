#include "sfn/data/data_source.h"

#include "sfn/core/error.h"
#include "sfn/data/local_data.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace sfn {
namespace {

constexpr int kCifarClasses = 10;
constexpr int kCifarTrainBatches = 5;

// The CIFAR-10 binary version's train (data_batch_1..5.bin) or test (test_batch.bin) set,
// normalized. The file names are fixed so that every machine of a run reads the same samples.
Dataset loadCifar10(const std::string& dir, bool train) {
  const std::filesystem::path folder(dir);
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= kCifarTrainBatches; ++i)
      files.push_back((folder / ("data_batch_" + std::to_string(i) + ".bin")).string());
  } else {
    files.push_back((folder / "test_batch.bin").string());
  }
  for (const std::string& f : files) {
    std::error_code ec;
    if (!std::filesystem::exists(f, ec))
      SFN_THROW(IoError, "CIFAR-10 file missing: '", f, "' (data.dir must hold data_batch_1.bin ",
                ".. data_batch_5.bin and test_batch.bin of the binary version)");
  }
  Dataset ds = loadCifar10Batches(files, train ? "cifar10-train" : "cifar10-test");
  const std::vector<std::int64_t> labels = ds.labelVector();
  const auto bad =
      std::find_if(labels.begin(), labels.end(), [](std::int64_t l) { return l >= kCifarClasses; });
  if (bad != labels.end())
    SFN_THROW(IoError, "CIFAR-10 in '", dir, "': label ", *bad, " of ", ds.name, " sample ",
              bad - labels.begin(), " is not in [0, 10)");
  ds.num_classes = kCifarClasses;
  normalize(ds, {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616});
  return ds;
}

}  // namespace

void DataOptions::validate() const {
  if (dataset != "fmnist" && dataset != "cifar10" && dataset != "synthetic")
    SFN_THROW(ConfigError, "data.dataset must be \"fmnist\", \"cifar10\" or \"synthetic\" (got \"",
              dataset, "\")");
  if (dataset == "cifar10" && dir.empty())
    SFN_THROW(ConfigError, "data.dir is needed for data.dataset = \"cifar10\": a folder with ",
              "data_batch_1.bin .. data_batch_5.bin and test_batch.bin (CIFAR-10 binary version)");
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
  } else if (opts.dataset == "cifar10") {
    b.train = loadCifar10(opts.dir, true);
    b.test = loadCifar10(opts.dir, false);
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
