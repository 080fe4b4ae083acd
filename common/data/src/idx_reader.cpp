#include "sfn/data/idx_reader.h"

#include "sfn/core/error.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>
#include <utility>

namespace sfn {
namespace {

constexpr std::size_t kChunk = 1 << 16;
constexpr std::uint8_t kTypeUbyte = 0x08;

// Deflate cannot expand data by more than ~1032:1, so a gzip file whose header promises
// more than this many bytes per compressed byte is lying; checking it first keeps a
// malformed header from making us allocate terabytes.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  SFN_THROW(IoError, "IDX file '", path, "': ", what);
}

std::string typeName(std::uint8_t code) {
  switch (code) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "not an IDX type";
  }
}

std::string hexByte(std::uint8_t b) {
  std::ostringstream os;
  os << "0x" << std::hex << (b < 16 ? "0" : "") << static_cast<int>(b);
  return os.str();
}

// A byte stream over either a plain file or a gzip file. read() returns fewer bytes than
// asked only at the end of the (decompressed) data; corruption throws.
class ByteSource {
 public:
  ByteSource(const std::string& path, bool gzip) : path_(path), gzip_(gzip) {
    file_.open(path, std::ios::binary);
    if (!file_) fail(path_, "cannot be opened for reading");
    if (gzip_) {
      // 16 + MAX_WBITS: expect a gzip wrapper, so the trailer CRC and length are verified.
      if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail(path_, "zlib initialization failed");
      zs_open_ = true;
    }
  }
  ~ByteSource() {
    if (zs_open_) inflateEnd(&zs_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  std::size_t read(std::uint8_t* dst, std::size_t n) {
    return gzip_ ? readGzip(dst, n) : readPlain(dst, n);
  }

 private:
  std::size_t readPlain(std::uint8_t* dst, std::size_t n) {
    file_.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (file_.bad()) fail(path_, "read error");
    return static_cast<std::size_t>(file_.gcount());
  }

  // Refills the compressed input buffer and records end of file.
  void refill() {
    file_.read(reinterpret_cast<char*>(in_.data()), static_cast<std::streamsize>(in_.size()));
    if (file_.bad()) fail(path_, "read error");
    const auto got = static_cast<std::size_t>(file_.gcount());
    zs_.next_in = in_.data();
    zs_.avail_in = static_cast<uInt>(got);
    in_eof_ = got == 0;
  }

  std::size_t readGzip(std::uint8_t* dst, std::size_t n) {
    std::size_t done = 0;
    while (done < n && !ended_) {
      const std::size_t want = std::min<std::size_t>(n - done, std::numeric_limits<uInt>::max());
      zs_.next_out = dst + done;
      zs_.avail_out = static_cast<uInt>(want);
      if (zs_.avail_in == 0 && !in_eof_) refill();
      // inflate may still hold output from earlier input, so it runs even at end of file.
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      done += want - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        // gzip allows several concatenated members; only the end of input ends the data.
        if (zs_.avail_in == 0 && !in_eof_) refill();
        if (zs_.avail_in == 0) {
          ended_ = true;
        } else if (inflateReset(&zs_) != Z_OK) {
          fail(path_, "zlib reset failed");
        }
      } else if (rc == Z_BUF_ERROR) {
        // No progress was possible: fine if more input can come, truncation otherwise.
        if (zs_.avail_in == 0 && in_eof_) {
          fail(path_, "truncated: compressed stream ends before the gzip trailer");
        }
      } else if (rc != Z_OK) {
        fail(path_, std::string("corrupt gzip data (") + (zs_.msg ? zs_.msg : "zlib error") + ")");
      }
    }
    return done;
  }

  std::string path_;
  bool gzip_;
  std::ifstream file_;
  z_stream zs_{};
  bool zs_open_ = false;
  bool in_eof_ = false;
  bool ended_ = false;
  std::array<std::uint8_t, kChunk> in_{};
};

bool hasGzipMagic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::array<unsigned char, 2> m{};
  f.read(reinterpret_cast<char*>(m.data()), 2);
  return f.gcount() == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The size of `path`, which must be an existing regular file.
std::uint64_t regularFileSize(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec && status.type() != fs::file_type::not_found) {
    fail(path, "cannot be accessed: " + ec.message());
  }
  if (!fs::exists(status)) fail(path, "does not exist");
  if (!fs::is_regular_file(status)) fail(path, "is not a regular file");
  const std::uint64_t file_size = fs::file_size(path, ec);
  if (ec) fail(path, "cannot determine size: " + ec.message());
  return file_size;
}

// Reads the 4-byte magic and returns the number of dimensions it declares.
int readMagic(ByteSource& src, const std::string& path) {
  std::array<std::uint8_t, 4> magic{};
  if (src.read(magic.data(), magic.size()) != magic.size()) {
    fail(path, "truncated: shorter than the 4-byte IDX magic");
  }
  if (magic[0] != 0 || magic[1] != 0) {
    fail(path, "bad magic: first two bytes are " + hexByte(magic[0]) + " " + hexByte(magic[1]) +
                   ", expected 0x00 0x00");
  }
  const std::uint8_t type = magic[2];
  if (type != kTypeUbyte) {
    fail(path, "unsupported type code " + hexByte(type) + " (" + typeName(type) +
                   "); only 0x08 (unsigned byte) is supported");
  }
  const int ndim = magic[3];
  if (ndim == 0) fail(path, "bad header: zero dimensions");
  return ndim;
}

// The dimensions after the magic, their product and their "AxBxC" text for messages.
struct IdxHeader {
  std::vector<std::int64_t> dims;
  std::uint64_t count = 1;
  std::string shape;
};

IdxHeader readDims(ByteSource& src, const std::string& path, int ndim) {
  IdxHeader h;
  h.dims.reserve(static_cast<std::size_t>(ndim));
  std::ostringstream shape;
  for (int i = 0; i < ndim; ++i) {
    std::array<std::uint8_t, 4> b{};
    if (src.read(b.data(), b.size()) != b.size()) {
      fail(path, "truncated: header declares " + std::to_string(ndim) +
                     " dimensions but ends after " + std::to_string(i));
    }
    const std::uint64_t d = (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) |
                            (std::uint64_t{b[2]} << 8) | std::uint64_t{b[3]};
    // Any product beyond int64 is malformed; check before multiplying so it cannot wrap.
    if (d != 0 &&
        h.count > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / d) {
      fail(path, "bad header: dimensions overflow 64 bits");
    }
    h.count *= d;
    h.dims.push_back(static_cast<std::int64_t>(d));
    shape << (i ? "x" : "") << d;
  }
  h.shape = shape.str();
  return h;
}

// Rejects a header whose data cannot fit the file before allocating for it: exactly for a
// plain file, by the deflate ratio bound for gzip (whose size is only known by reading).
void checkDataSize(const std::string& path, const IdxHeader& h, bool gzip,
                   std::uint64_t file_size) {
  const std::uint64_t header_bytes = 4 + 4 * static_cast<std::uint64_t>(h.dims.size());
  const std::uint64_t count = h.count;
  if (!gzip) {
    const std::uint64_t data_bytes = file_size > header_bytes ? file_size - header_bytes : 0;
    if (data_bytes < count) {
      fail(path, "truncated: header dims " + h.shape + " need " + std::to_string(count) +
                     " data bytes but the file holds " + std::to_string(data_bytes));
    }
    if (data_bytes > count) {
      fail(path, "size mismatch: header dims " + h.shape + " need " + std::to_string(count) +
                     " data bytes but the file holds " + std::to_string(data_bytes));
    }
  } else if (count / kMaxDeflateRatio > file_size) {
    fail(path, "size mismatch: header dims " + h.shape + " need " + std::to_string(count) +
                   " bytes, more than a " + std::to_string(file_size) +
                   "-byte gzip file can decompress to");
  }
  if (count > std::numeric_limits<std::size_t>::max()) fail(path, "too large for this platform");
}

// Reads exactly h.count data bytes, then checks that nothing follows them.
std::vector<std::uint8_t> readData(ByteSource& src, const std::string& path, const IdxHeader& h) {
  std::vector<std::uint8_t> data(static_cast<std::size_t>(h.count));
  const std::size_t got = src.read(data.data(), data.size());
  if (got != data.size()) {
    fail(path, "truncated: header dims " + h.shape + " need " + std::to_string(h.count) +
                   " data bytes but only " + std::to_string(got) + " are present");
  }
  // Reading past the data also drives gzip to its trailer, which verifies the CRC.
  std::uint8_t extra = 0;
  if (src.read(&extra, 1) != 0) {
    fail(path, "size mismatch: more data than header dims " + h.shape + " declare (" +
                   std::to_string(h.count) + " bytes)");
  }
  return data;
}

}  // namespace

IdxArray readIdx(const std::string& path) {
  const std::uint64_t file_size = regularFileSize(path);
  const bool gzip = hasGzipMagic(path) || endsWith(path, ".gz");
  ByteSource src(path, gzip);
  const int ndim = readMagic(src, path);
  IdxHeader header = readDims(src, path, ndim);
  checkDataSize(path, header, gzip, file_size);
  IdxArray out;
  out.data = readData(src, path, header);
  out.dims = std::move(header.dims);
  return out;
}

}  // namespace sfn
