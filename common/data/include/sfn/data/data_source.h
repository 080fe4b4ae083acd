// Where a run's data comes from: Fashion-MNIST (default), CIFAR-10 or a synthetic set, plus
// the held-out validation split. Shared by sfn-server, sfn-sim, sfn-client and sfn-search so
// that all of them see the same split for the same seed.
#pragma once

#include "sfn/data/dataset.h"
#include "sfn/data/partitioner.h"

#include <cstdint>
#include <string>

namespace sfn {

struct DataOptions {
  std::string dataset = "fmnist";  // "fmnist" | "cifar10" | "synthetic"
  // fmnist: its directory, empty = defaultFashionMnistDir(). cifar10: required, a folder with
  // the binary version's data_batch_1.bin .. data_batch_5.bin (train) and test_batch.bin;
  // pixels are normalized with the CIFAR-10 mean (0.4914, 0.4822, 0.4465) and std (0.2470,
  // 0.2435, 0.2616), as the cifar10 and paper-cifar10 presets declare.
  std::string dir;
  double val_fraction = 0.1;     // of the training set, held out for search/evaluation
  std::uint64_t split_seed = 0;  // the validation split depends on this only
  // synthetic only:
  std::int64_t synthetic_train = 20000;
  std::int64_t synthetic_test = 2000;
  int synthetic_channels = 1;
  int synthetic_image_size = 28;
  int synthetic_classes = 10;
  PartitionOptions partition;
  void validate() const;  // throws ConfigError
};

struct DataBundle {
  Dataset train;  // training images (federated training uses split.train only)
  Dataset test;   // reported accuracy only
  TrainValSplit split;
};

DataBundle loadDataBundle(const DataOptions& opts);

}  // namespace sfn
