// Byte buffers shared without copying: whole messages (transports, wire codec) and views
// of bytes for hashing and signing. No torch here, so transport users stay free of ATen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace sfn {

using ByteView = std::span<const std::uint8_t>;

// The bytes of a string, without copying (for hashing or signing text).
inline ByteView asBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Read-only bytes of one whole message, owned by whatever produced them (an encoder's
// buffer, a received zmq::message_t, a std::vector). Shared so that decoded tensor views
// and transports can keep the bytes alive without copying them.
class Bytes {
 public:
  virtual ~Bytes() = default;
  virtual const std::uint8_t* data() const = 0;
  virtual std::size_t size() const = 0;
};
using BytesPtr = std::shared_ptr<const Bytes>;

// Bytes owned by a std::vector (tests, files, the realignment fallback of decode()).
class VectorBytes final : public Bytes {
 public:
  explicit VectorBytes(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  const std::uint8_t* data() const override { return bytes_.data(); }
  std::size_t size() const override { return bytes_.size(); }

 private:
  std::vector<std::uint8_t> bytes_;
};

// Copies [data, data + size) into a new VectorBytes.
inline BytesPtr copyBytes(const std::uint8_t* data, std::size_t size) {
  return std::make_shared<VectorBytes>(std::vector<std::uint8_t>(data, data + size));
}

}  // namespace sfn
