// What an app embedding the client implements to hand it training samples it holds itself
// (camera frames, sensor images, a database) instead of files.
//
// This header is part of the client's public surface: it uses only standard types, so an
// app needs no torch or other third-party headers to implement it. The client copies every
// sample once (materialize() in local_data.h) before training, so read() is not called
// during training and need not be fast or thread-safe.
#pragma once

#include <cstdint>
#include <span>

namespace sfn {

// The size of one sample: every sample of a source has this shape.
struct SampleShape {
  int channels = 1;
  int height = 0;
  int width = 0;
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;

  // The number of samples, indexed 0 .. size()-1.
  virtual std::int64_t size() const = 0;
  virtual SampleShape shape() const = 0;
  // Writes sample `index`'s pixels, channel-major, values in [0,1], into `pixels`
  // (size channels*height*width) and returns its label (>= 0). Values are not normalised:
  // the federation's server supplies the normalisation. May throw; the exception reaches
  // the caller of materialize().
  virtual std::int64_t read(std::int64_t index, std::span<float> pixels) const = 0;
};

}  // namespace sfn
