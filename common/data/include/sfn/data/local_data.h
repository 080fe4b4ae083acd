// A device's own training data: readers for the file formats an edge client may hold, a
// bridge from an app's SampleSource, and the per-channel normalisation the server asks for.
//
// Everything here returns pixels scaled to [0,1] and NOT normalised: a client learns the
// run's normalisation from the server only after it has loaded its data, and applies it
// with normalize().
#pragma once

#include "sfn/data/dataset.h"
#include "sfn/data/sample_source.h"

#include <string>
#include <string_view>
#include <vector>

namespace sfn {

enum class LocalDataFormat {
  kAuto,        // chosen from the path, see loadLocalData
  kIdx,         // a folder of IDX files, as MNIST / Fashion-MNIST ship
  kCifar10,     // CIFAR-10 binary batches: a .bin file or a folder of them
  kTensorFile,  // torch.save({"images": x, "labels": y}, path) from Python
};

// "auto" | "idx" | "cifar10" | "torch"; anything else throws ConfigError naming the value.
LocalDataFormat parseLocalDataFormat(std::string_view text);
std::string_view toString(LocalDataFormat format);

// Reads a device's data from `path` (a file or a folder, depending on the format):
//  - kIdx: a folder with one `*images*idx3-ubyte[.gz]` ([N,H,W], one channel) or
//    `*images*idx4-ubyte[.gz]` ([N,C,H,W]) file and one `*labels*idx1-ubyte[.gz]` file. A
//    folder holding a "train" pair and a "t10k"/"test" pair yields the train pair; if both a
//    plain and a .gz copy of a file exist, the plain one is read.
//  - kCifar10: records of 1 label byte + 3072 pixel bytes (3x32x32, channel-major). A folder
//    yields all its data_batch_*.bin files in name order (never test_batch.bin), or, if it
//    has none, all its *.bin files in name order.
//  - kTensorFile: a zip-format torch.save file (PyTorch >= 1.6) of a dict with "images", a
//    uint8 (scaled by 1/255) or float32 (already in [0,1]) tensor [N,H,W] or [N,C,H,W], and
//    "labels", an integer tensor [N]. Other keys are ignored.
//  - kAuto: a folder is IDX if it holds an IDX images file, else CIFAR-10 if it holds *.bin
//    files; a file is CIFAR-10 if it ends in .bin, else a tensor file if it starts with the
//    zip magic "PK" or ends in .pt/.pth.
// Returns images float32 [N,C,H,W] in [0,1], labels int64 [N], num_classes = max label + 1
// and name = path. Throws IoError naming the file and what is wrong (missing, truncated,
// bad magic, wrong shape or dtype, count mismatch, negative label, no samples, a folder
// whose files do not pick out one data set, a path of no accepted format).
Dataset loadLocalData(const std::string& path, LocalDataFormat format = LocalDataFormat::kAuto);

// CIFAR-10 binary batch files read in the given order into one Dataset (as loadLocalData).
// Throws IoError naming the file that is missing, empty or not a whole number of records.
Dataset loadCifar10Batches(const std::vector<std::string>& files, std::string name);

// Copies every sample of `source` into a Dataset (as loadLocalData returns). Throws
// ConfigError naming the sample index if the source is empty, its shape is not positive,
// a label is negative or a pixel is not a finite value in [0,1]; exceptions from
// source.read() pass through.
Dataset materialize(const SampleSource& source, std::string name);

// images = (images - mean[c]) / stddev[c] per channel c, in place. A single mean or stddev value
// applies to every channel; otherwise its size must equal the channel count. Throws
// ConfigError on a size mismatch, a stddev value that is not > 0, a non-finite value, or a
// dataset without [N,C,H,W] float images.
void normalize(Dataset& data, const std::vector<double>& mean, const std::vector<double>& stddev);

}  // namespace sfn
