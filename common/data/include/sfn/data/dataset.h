// In-memory image classification data shared by every client of a process.
//
// Clients never copy data: a client's local data is an index list into one Dataset.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sfn {

struct Dataset {
  std::string name;
  at::Tensor images;  // float32 [N, C, H, W], already normalized
  at::Tensor labels;  // int64 [N], values in [0, num_classes)
  int num_classes = 10;

  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  // Labels as a plain vector (partitioners work on it).
  std::vector<std::int64_t> labelVector() const;
};

using IndexList = std::vector<std::int64_t>;

// Fashion-MNIST from `dir` (train-images-idx3-ubyte[.gz] etc.). `train` selects the 60000
// training or 10000 test images. Pixels are scaled to [0,1] then normalized with
// (mean, std) = (0.2860, 0.3530). Throws IoError naming the file and the problem.
Dataset loadFashionMnist(const std::string& dir, bool train);
std::string defaultFashionMnistDir();  // /usr/share/datasets/fashion-mnist

// A validation split held out from training data, deterministic for the seed. The searcher
// scores on `val`; federated training only ever sees `train`.
// Both lists are sorted ascending; val holds round(n * val_fraction) indices. Throws
// ConfigError unless n >= 0 and 0 <= val_fraction < 1.
struct TrainValSplit {
  IndexList train;
  IndexList val;
};
TrainValSplit splitTrainVal(std::int64_t n, double val_fraction, std::uint64_t seed);

// A learnable synthetic dataset for fast tests: each class has a fixed random prototype
// image; samples are prototype + Gaussian noise. Deterministic for the seed.
Dataset makeSyntheticDataset(std::int64_t n, int channels, int image_size, int num_classes,
                             std::uint64_t seed, double noise = 0.5);

}  // namespace sfn
