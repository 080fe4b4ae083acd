#include "sfn/model/checkpoint.h"

#include "sfn/core/unique_fd.h"
#include "sfn/io/crypto.h"
#include "sfn/core/error.h"

#include <ATen/ATen.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>
#include <system_error>
#include <utility>

namespace sfn {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Tensor bytes are copied straight from and into tensor storage, so the file's
// little-endian layout is the host layout. A big-endian port needs a byte swap here.
static_assert(std::endian::native == std::endian::little,
              "checkpoint tensor data is little-endian; add byte swapping for this host");

constexpr std::array<char, 8> kMagic = {'S', 'F', 'N', 'C', 'K', 'P', 'T', '1'};
constexpr std::uint64_t kPrefixSize = kMagic.size() + 4;  // magic + u32 header length
constexpr std::uint64_t kAlign = 64;
constexpr std::uint64_t kTrailerSize = kSha256Size;
constexpr std::uint64_t kFormatVersion = 1;
// Far above any real tensor; bounds the work a hostile header can ask for per entry.
constexpr std::size_t kMaxRank = 64;
// Single read()/write() calls are capped because Linux transfers at most ~2 GiB per call.
constexpr std::size_t kMaxIo = std::size_t{1} << 30;
constexpr std::size_t kReadChunk = std::size_t{1} << 20;
constexpr std::uint8_t kZeros[kAlign] = {};
constexpr const char* kLatestName = "latest";
// nlohmann::json copies and prints recursively; bounding the nesting keeps a crafted
// header (anyone can recompute its digest) from exhausting the stack.
constexpr int kMaxJsonDepth = 256;

struct DtypeInfo {
  at::ScalarType type;
  const char* name;
  std::uint64_t size;
};
// Adding a dtype is one line here (and a test).
constexpr std::array<DtypeInfo, 2> kDtypes = {{
    {at::kFloat, "float32", 4},
    {at::kLong, "int64", 8},
}};

const DtypeInfo* findDtype(at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return &d;
  return nullptr;
}

const DtypeInfo* findDtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::uint64_t alignUp(std::uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::string systemError(int err) { return std::generic_category().message(err); }

[[noreturn]] void failIo(const fs::path& path, const std::string& step, int err) {
  SFN_THROW(IoError, "'", path.string(), "': ", step, " failed: ", systemError(err));
}

[[noreturn]] void failCheckpoint(const fs::path& path, const std::string& what) {
  SFN_THROW(IoError, "checkpoint '", path.string(), "': ", what);
}

// A file that is not what writeCheckpoint wrote (damaged, cut off, or not a checkpoint):
// a data error (exit code 4), unlike a file that cannot be read at all.
[[noreturn]] void failCorrupt(const fs::path& path, const std::string& what) {
  SFN_THROW(DataError, "checkpoint '", path.string(), "': ", what);
}

// Reads exactly n bytes at `offset`; false if the file ends first (it shrank under us).
bool preadAll(const fs::path& path, int fd, void* dst, std::uint64_t n, std::uint64_t offset) {
  auto* p = static_cast<std::uint8_t*>(dst);
  while (n > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, kMaxIo));
    const ssize_t got = ::pread(fd, p, want, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      failIo(path, "read", errno);
    }
    if (got == 0) return false;
    p += got;
    n -= static_cast<std::uint64_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

// True if no array/object in the JSON text nests deeper than kMaxJsonDepth.
bool nestingWithinLimit(std::string_view text) {
  int depth = 0;
  bool inString = false;
  bool escaped = false;
  for (const char c : text) {
    if (inString) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// ---- reading: header validation ----------------------------------------------------------

struct DirEntry {
  std::string name;
  const DtypeInfo* dtype = nullptr;
  std::vector<std::int64_t> shape;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Header checks run only after the digest matched, so a failure here means the file was
// written by something other than writeCheckpoint (another version, a bug), not that it
// was damaged; the message says which field is wrong.
class HeaderChecker {
 public:
  HeaderChecker(const fs::path& path, std::uint64_t dataBytes)
      : path_(path), dataBytes_(dataBytes) {}

  void require(bool cond, const std::string& what) const {
    if (!cond) failCorrupt(path_, "malformed header: " + what);
  }

  std::uint64_t unsignedField(const json& obj, const char* key, const std::string& where) const {
    const auto it = obj.find(key);
    require(it != obj.end() && it->is_number_unsigned(),
            where + " needs a non-negative integer '" + key + "'");
    return it->get<std::uint64_t>();
  }

  DirEntry entry(const json& item, std::size_t index) const {
    const std::string where = "tensor #" + std::to_string(index);
    require(item.is_object(), where + " is not an object");
    DirEntry e;
    const auto name = item.find("name");
    require(name != item.end() && name->is_string(), where + " has no string 'name'");
    e.name = name->get<std::string>();
    const std::string who = where + " ('" + e.name + "')";

    const auto dtype = item.find("dtype");
    require(dtype != item.end() && dtype->is_string(), who + " has no string 'dtype'");
    e.dtype = findDtype(dtype->get<std::string>());
    require(e.dtype != nullptr, who + " has unsupported dtype '" + dtype->get<std::string>() + "'");

    const auto shape = item.find("shape");
    require(shape != item.end() && shape->is_array() && shape->size() <= kMaxRank,
            who + " needs a 'shape' array of at most " + std::to_string(kMaxRank) + " sizes");
    std::uint64_t numel = 1;
    for (const auto& dim : *shape) {
      require(dim.is_number_unsigned(), who + " has a shape entry that is not a size");
      const auto d = dim.get<std::uint64_t>();
      require(d <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
                  !__builtin_mul_overflow(numel, d, &numel),
              who + " has a shape whose element count overflows");
      e.shape.push_back(static_cast<std::int64_t>(d));
    }
    e.offset = unsignedField(item, "offset", who);
    e.length = unsignedField(item, "length", who);
    // Computed before require(): its message reads `bytes`, and argument evaluation order
    // is unspecified.
    std::uint64_t bytes = 0;
    const bool overflow = __builtin_mul_overflow(numel, e.dtype->size, &bytes);
    require(!overflow && bytes == e.length,
            who + " has length " + std::to_string(e.length) + " but its shape and dtype need " +
                (overflow ? std::string("more than 2^64") : std::to_string(bytes)) + " bytes");
    require(e.offset % kAlign == 0, who + " offset is not 64-byte aligned");
    require(e.length <= dataBytes_ && e.offset <= dataBytes_ - e.length,
            who + " lies outside the data section");
    return e;
  }

 private:
  const fs::path& path_;
  std::uint64_t dataBytes_;
};

std::vector<DirEntry> checkHeader(const fs::path& path, const json& header,
                                  std::uint64_t dataBytes) {
  const HeaderChecker check(path, dataBytes);
  check.require(header.is_object(), "not a JSON object");
  const std::uint64_t format = check.unsignedField(header, "format", "the header");
  check.require(format == kFormatVersion, "unsupported format version " + std::to_string(format));
  check.require(check.unsignedField(header, "data_bytes", "the header") == dataBytes,
                "'data_bytes' does not match the file size");
  check.require(header.contains("metadata"), "no 'metadata'");
  const auto tensors = header.find("tensors");
  check.require(tensors != header.end() && tensors->is_array(), "no 'tensors' array");

  std::vector<DirEntry> entries;
  entries.reserve(tensors->size());
  for (const auto& item : *tensors) entries.push_back(check.entry(item, entries.size()));

  // Disjoint ranges bound the total allocation by the file size: without this, many
  // entries naming the same bytes could make a small file allocate unbounded memory.
  std::vector<const DirEntry*> byOffset;
  for (const auto& e : entries) byOffset.push_back(&e);
  std::sort(byOffset.begin(), byOffset.end(),
            [](const DirEntry* a, const DirEntry* b) { return a->offset < b->offset; });
  std::uint64_t end = 0;
  for (const DirEntry* e : byOffset) {
    check.require(e->length == 0 || e->offset >= end,
                  "tensor '" + e->name + "' overlaps the previous tensor's bytes");
    if (e->length > 0) end = e->offset + e->length;
  }
  return entries;
}

// ---- CheckpointDir names -----------------------------------------------------------------

// The round a canonical checkpoint file name stands for; nullopt for anything else,
// including names with extra leading zeros, so a pointer can only name what save() wrote.
std::optional<std::uint64_t> parseCheckpointName(const std::string& name) {
  constexpr std::string_view kPrefix = "ckpt-";
  constexpr std::string_view kSuffix = ".sfn";
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix))
    return std::nullopt;
  const char* first = name.data() + kPrefix.size();
  const char* last = name.data() + name.size() - kSuffix.size();
  if (!std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  std::uint64_t round = 0;
  const auto [ptr, ec] = std::from_chars(first, last, round);
  if (ec != std::errc() || ptr != last || CheckpointDir::fileName(round) != name)
    return std::nullopt;
  return round;
}

// The pid in "<checkpoint or latest>.tmp-<pid>-<tid>", if `name` is one of our temp files.
std::optional<long> tempFileOwner(const std::string& name) {
  const auto mark = name.rfind(".tmp-");
  if (mark == std::string::npos) return std::nullopt;
  const std::string base = name.substr(0, mark);
  if (base != kLatestName && !parseCheckpointName(base)) return std::nullopt;
  long pid = 0;
  const char* first = name.data() + mark + 5;
  const char* last = name.data() + name.size();
  const auto [ptr, ec] = std::from_chars(first, last, pid);
  if (ec != std::errc() || ptr == last || *ptr != '-' || pid <= 0) return std::nullopt;
  return pid;
}

// Where each tensor goes in the data section, relative to its start, and its total size.
struct DataLayout {
  std::vector<std::uint64_t> offsets;
  std::uint64_t end = 0;
};

// The header's tensor directory, laid out first: offsets depend only on sizes, not on the
// header, so the header can name them before it is written.
json tensorDirectory(const fs::path& path, const NamedTensors& tensors, DataLayout& layout) {
  json directory = json::array();
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) failCheckpoint(path, "cannot write undefined tensor '" + name + "'");
    const DtypeInfo* dtype = findDtype(tensor.scalar_type());
    if (dtype == nullptr)
      failCheckpoint(path, "cannot write tensor '" + name + "': dtype " +
                               std::string(c10::toString(tensor.scalar_type())) +
                               " is not supported (float32, int64)");
    const std::uint64_t offset = alignUp(layout.end);
    const auto length = static_cast<std::uint64_t>(tensor.numel()) * dtype->size;
    directory.push_back({{"name", name},
                         {"dtype", dtype->name},
                         {"shape", tensor.sizes().vec()},
                         {"offset", offset},
                         {"length", length}});
    layout.offsets.push_back(offset);
    layout.end = offset + length;
  }
  return directory;
}

// The header as JSON text, refused here if readCheckpoint would refuse it later.
std::string headerText(const fs::path& path, const json& header) {
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    failCheckpoint(path,
                   std::string("metadata or a tensor name is not valid JSON text: ") + e.what());
  }
  if (!nestingWithinLimit(text))
    failCheckpoint(path, "metadata nests deeper than " + std::to_string(kMaxJsonDepth - 1) +
                             " levels, which readCheckpoint would refuse");
  if (text.size() > std::numeric_limits<std::uint32_t>::max())
    failCheckpoint(path, "header of " + std::to_string(text.size()) + " bytes exceeds 4 GiB");
  return text;
}

// Writes magic, header length, header, aligned tensor data and the SHA-256 of all of it.
void writeCheckpointFile(const fs::path& path, const std::string& text, const NamedTensors& tensors,
                         const DataLayout& layout) {
  AtomicFileWriter out(path);
  Sha256 hasher;
  std::uint64_t written = 0;
  const auto put = [&](std::span<const std::uint8_t> bytes) {
    hasher.update(bytes);
    out.write(bytes);
    written += bytes.size();
  };
  const auto padTo = [&](std::uint64_t position) {
    while (written < position)
      put({kZeros, static_cast<std::size_t>(std::min<std::uint64_t>(position - written, kAlign))});
  };

  put(asBytes(std::string_view(kMagic.data(), kMagic.size())));
  const auto headerLength = static_cast<std::uint32_t>(text.size());
  const std::array<std::uint8_t, 4> lengthBytes = {
      static_cast<std::uint8_t>(headerLength), static_cast<std::uint8_t>(headerLength >> 8),
      static_cast<std::uint8_t>(headerLength >> 16), static_cast<std::uint8_t>(headerLength >> 24)};
  put(lengthBytes);
  put(asBytes(text));
  const std::uint64_t dataStart = alignUp(written);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    padTo(dataStart + layout.offsets[i]);
    // One tensor at a time, so at most one converted copy exists at any moment.
    const at::Tensor cpu = tensors[i].tensor.detach().to(at::kCPU).contiguous();
    put({static_cast<const std::uint8_t*>(cpu.data_ptr()), cpu.nbytes()});
  }
  padTo(dataStart + layout.end);
  put(hasher.finish());
  out.commit();
}

// A checkpoint open for reading. Writers only ever rename a new file over the path, so the
// inode behind this open descriptor never changes: both reading passes see the same bytes.
class CheckpointFile {
 public:
  explicit CheckpointFile(const fs::path& path)
      : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_.get() < 0) failIo(path_, "open checkpoint", errno);
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) failIo(path_, "stat checkpoint", errno);
    if (!S_ISREG(st.st_mode)) failCheckpoint(path_, "not a regular file");
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  const fs::path& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  void readAt(void* dst, std::uint64_t n, std::uint64_t offset) const {
    if (!preadAll(path_, fd_.get(), dst, n, offset))
      failCorrupt(path_, "truncated while reading (file shrank)");
  }

 private:
  const fs::path& path_;
  UniqueFd fd_;
  std::uint64_t size_ = 0;
};

// The file's sections, from its fixed-size prefix: [prefix | header | pad | data | digest].
struct Sections {
  std::array<std::uint8_t, kPrefixSize> prefix{};
  std::uint64_t headerLength = 0;
  std::uint64_t dataStart = 0;
  std::uint64_t bodyEnd = 0;
  std::uint64_t dataBytes() const { return bodyEnd - dataStart; }
};

Sections readPrefix(const CheckpointFile& file) {
  const fs::path& path = file.path();
  const std::uint64_t size = file.size();
  if (size < kPrefixSize + kTrailerSize)
    failCorrupt(path, "truncated: " + std::to_string(size) + " bytes, a checkpoint has at least " +
                          std::to_string(kPrefixSize + kTrailerSize));
  Sections s;
  file.readAt(s.prefix.data(), s.prefix.size(), 0);
  if (!std::equal(kMagic.begin(), kMagic.end(), s.prefix.begin(),
                  [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; }))
    failCorrupt(path, "bad magic: not an sfn checkpoint (expected \"SFNCKPT1\")");
  s.headerLength = std::uint64_t{s.prefix[8]} | std::uint64_t{s.prefix[9]} << 8 |
                   std::uint64_t{s.prefix[10]} << 16 | std::uint64_t{s.prefix[11]} << 24;
  // Sizes are compared by subtraction from the (larger) file size so nothing can overflow.
  s.bodyEnd = size - kTrailerSize;
  if (s.headerLength > s.bodyEnd - kPrefixSize || alignUp(kPrefixSize + s.headerLength) > s.bodyEnd)
    failCorrupt(path, "truncated: header of " + std::to_string(s.headerLength) +
                          " bytes does not fit in a file of " + std::to_string(size) + " bytes");
  s.dataStart = alignUp(kPrefixSize + s.headerLength);
  return s;
}

// A readable header lets a cut-off file be called what it is rather than only failing
// the digest; the digest still decides whether the file is intact.
void checkDeclaredDataSize(const CheckpointFile& file, const json& header,
                           std::uint64_t dataBytes) {
  if (!header.is_object()) return;
  const auto declared = header.find("data_bytes");
  if (declared != header.end() && declared->is_number_unsigned() &&
      declared->get<std::uint64_t>() > dataBytes)
    failCorrupt(file.path(), "truncated: file has " + std::to_string(file.size()) +
                                 " bytes, its header describes " +
                                 std::to_string(declared->get<std::uint64_t>()) +
                                 " bytes of tensor data but only " + std::to_string(dataBytes) +
                                 " remain");
}

// The first pass: the SHA-256 of everything before the trailer must match the trailer.
void verifyDigest(const CheckpointFile& file, const Sections& s, const std::string& text) {
  Sha256 hasher;
  hasher.update(s.prefix);
  hasher.update(text);
  {
    std::vector<std::uint8_t> buf(kReadChunk);
    for (std::uint64_t pos = kPrefixSize + s.headerLength; pos < s.bodyEnd;) {
      const std::uint64_t n = std::min<std::uint64_t>(s.bodyEnd - pos, buf.size());
      file.readAt(buf.data(), n, pos);
      hasher.update(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)));
      pos += n;
    }
  }
  Sha256Digest stored{};
  file.readAt(stored.data(), stored.size(), s.bodyEnd);
  const Sha256Digest computed = hasher.finish();
  if (computed != stored)
    failCorrupt(file.path(), "digest mismatch: the file is corrupt (stored SHA-256 " +
                                 toHex(stored) + ", computed " + toHex(computed) + ")");
}

}  // namespace

// ---- checkpoints -------------------------------------------------------------------------

void writeCheckpoint(const fs::path& path, const NamedTensors& tensors, const json& metadata) {
  DataLayout layout;
  json directory = tensorDirectory(path, tensors, layout);
  const json header = {{"format", kFormatVersion},
                       {"metadata", metadata},
                       {"data_bytes", layout.end},
                       {"tensors", std::move(directory)}};
  writeCheckpointFile(path, headerText(path, header), tensors, layout);
}

Checkpoint readCheckpoint(const fs::path& path) {
  const CheckpointFile file(path);
  const Sections sections = readPrefix(file);
  std::string text(static_cast<std::size_t>(sections.headerLength), '\0');
  file.readAt(text.data(), sections.headerLength, kPrefixSize);
  const bool shallow = nestingWithinLimit(text);
  const json header = shallow ? json::parse(text, nullptr, /*allow_exceptions=*/false)
                              : json(json::value_t::discarded);
  checkDeclaredDataSize(file, header, sections.dataBytes());
  verifyDigest(file, sections, text);

  // The second pass, only over a file whose digest matched.
  if (!shallow)
    failCorrupt(path,
                "malformed header: nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  if (header.is_discarded()) failCorrupt(path, "malformed header: not valid JSON");
  const std::vector<DirEntry> entries = checkHeader(path, header, sections.dataBytes());
  Checkpoint result;
  result.metadata = header.at("metadata");
  for (const auto& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
    file.readAt(t.data_ptr(), e.length, sections.dataStart + e.offset);
    result.tensors.add(e.name, std::move(t));
  }
  return result;
}

// ---- CheckpointDir -----------------------------------------------------------------------

CheckpointDir::CheckpointDir(fs::path dir, std::size_t keep) : dir_(std::move(dir)), keep_(keep) {
  SFN_ENFORCE(keep_ >= 1, ConfigError, "CheckpointDir '", dir_.string(),
              "': keep must be at least 1");
}

std::string CheckpointDir::fileName(std::uint64_t round) {
  std::ostringstream os;
  os << "ckpt-" << std::setw(6) << std::setfill('0') << round << ".sfn";
  return os.str();
}

std::vector<std::uint64_t> CheckpointDir::rounds() const {
  std::vector<std::uint64_t> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), last; !ec && it != last; it.increment(ec)) {
    std::error_code statError;
    if (!it->is_regular_file(statError)) continue;
    if (const auto round = parseCheckpointName(it->path().filename().string()))
      out.push_back(*round);
  }
  std::sort(out.begin(), out.end());
  return out;
}

fs::path CheckpointDir::save(std::uint64_t round, const NamedTensors& tensors,
                             const json& metadata) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) failIo(dir_, "create checkpoint directory", ec.value());
  const std::string name = fileName(round);
  const fs::path file = dir_ / name;
  writeCheckpoint(file, tensors, metadata);
  // The pointer is updated only after the checkpoint is durable, so it never names a
  // file that a crash could leave incomplete.
  writeFileAtomically(dir_ / kLatestName, asBytes(name + "\n"));

  std::vector<std::uint64_t> present = rounds();
  std::sort(present.rbegin(), present.rend());
  for (std::size_t i = keep_; i < present.size(); ++i) {
    if (present[i] == round) continue;
    const fs::path old = dir_ / fileName(present[i]);
    if (!fs::remove(old, ec) && ec) failIo(old, "remove old checkpoint", ec.value());
  }

  // Temporary files of writers that died mid-write would otherwise pile up, each as large
  // as a checkpoint. Only files whose owning process is gone are touched: a live pid may
  // be a writer still at work (or an unrelated process that reused the pid; then the
  // file stays until that process exits, which is harmless).
  const long self = static_cast<long>(::getpid());
  for (fs::directory_iterator it(dir_, ec), last; !ec && it != last; it.increment(ec)) {
    const auto owner = tempFileOwner(it->path().filename().string());
    if (!owner || *owner == self) continue;
    if (::kill(static_cast<pid_t>(*owner), 0) != 0 && errno == ESRCH) {
      std::error_code removeError;
      fs::remove(it->path(), removeError);  // best effort: a leftover is only wasted space
    }
  }
  return file;
}

std::optional<fs::path> CheckpointDir::latest() const {
  std::ifstream pointer(dir_ / kLatestName, std::ios::binary);
  if (pointer) {
    // A pointer is one short line; reading a bounded prefix keeps a garbage file cheap.
    std::string text(256, '\0');
    pointer.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(pointer.gcount()));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
      text.pop_back();
    std::error_code ec;
    if (parseCheckpointName(text) && fs::is_regular_file(dir_ / text, ec)) return dir_ / text;
  }
  const std::vector<std::uint64_t> present = rounds();
  if (present.empty()) return std::nullopt;
  return dir_ / fileName(present.back());
}

}  // namespace sfn
