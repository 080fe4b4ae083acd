#include "sfn/data/local_data.h"

#include "sfn/core/error.h"
#include "sfn/data/idx_reader.h"

#include <ATen/ATen.h>
#include <torch/serialize.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <system_error>
#include <utility>

namespace sfn {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kCifarChannels = 3;
constexpr std::int64_t kCifarSide = 32;
constexpr std::int64_t kCifarPixels = kCifarChannels * kCifarSide * kCifarSide;
constexpr std::int64_t kCifarRecord = 1 + kCifarPixels;

constexpr const char* kAcceptedFormats =
    "accepted: a folder of IDX files (*images*idx3-ubyte[.gz] or *images*idx4-ubyte[.gz] with "
    "*labels*idx1-ubyte[.gz]), CIFAR-10 binary batches (a .bin file or a folder of them), or a "
    "zip-format torch.save file (.pt/.pth) of {\"images\": ..., \"labels\": ...}";

template <typename... Parts>
[[noreturn]] void fail(const std::string& path, const Parts&... parts) {
  SFN_THROW(IoError, "local data '", path, "': ", parts...);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// The file name, lower-cased: extensions and name patterns match in any case.
std::string lowerName(const fs::path& p) { return lower(p.filename().string()); }

// The status of `path`, which must exist.
fs::file_status existingStatus(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec && st.type() != fs::file_type::not_found) fail(path, "cannot be accessed: ", ec.message());
  if (!fs::exists(st)) fail(path, "does not exist");
  return st;
}

// The regular files directly in `dir`, sorted by name.
std::vector<fs::path> listFiles(const std::string& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    // A dangling link is no data file: its own error must not end the listing.
    std::error_code entry_ec;
    if (it->is_regular_file(entry_ec)) out.push_back(it->path());
  }
  if (ec) fail(dir, "cannot list the folder: ", ec.message());
  std::sort(out.begin(), out.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  return out;
}

std::string nameList(const std::vector<fs::path>& files) {
  std::string out;
  for (const fs::path& f : files) out += (out.empty() ? "" : ", ") + f.filename().string();
  return out.empty() ? "none" : out;
}

template <typename Pred>
std::vector<fs::path> filtered(const std::vector<fs::path>& files, Pred pred) {
  std::vector<fs::path> out;
  std::copy_if(files.begin(), files.end(), std::back_inserter(out), pred);
  return out;
}

std::string shapeText(at::IntArrayRef sizes) {
  std::ostringstream os;
  os << sizes;
  return os.str();
}

// Checks the labels, sets num_classes and wraps up a Dataset named `path`.
Dataset finishDataset(const std::string& path, at::Tensor images, at::Tensor labels) {
  const std::int64_t n = labels.size(0);
  if (n == 0) fail(path, "holds no samples");
  const std::int64_t min_label = labels.min().item<std::int64_t>();
  if (min_label < 0) {
    const std::int64_t at_index = labels.lt(0).nonzero()[0][0].item<std::int64_t>();
    fail(path, "label ", min_label, " of sample ", at_index, " is negative");
  }
  const std::int64_t max_label = labels.max().item<std::int64_t>();
  if (max_label >= std::numeric_limits<int>::max()) {
    fail(path, "label ", max_label, " is too large for a class index");
  }
  Dataset ds;
  ds.name = path;
  ds.images = std::move(images);
  ds.labels = std::move(labels);
  ds.num_classes = static_cast<int>(max_label) + 1;
  return ds;
}

// --- IDX folder ---

bool isIdxImages(const fs::path& p) {
  const std::string n = lowerName(p);
  return contains(n, "images") && (endsWith(n, "idx3-ubyte") || endsWith(n, "idx3-ubyte.gz") ||
                                   endsWith(n, "idx4-ubyte") || endsWith(n, "idx4-ubyte.gz"));
}

bool isIdxLabels(const fs::path& p) {
  const std::string n = lowerName(p);
  return contains(n, "labels") && (endsWith(n, "idx1-ubyte") || endsWith(n, "idx1-ubyte.gz"));
}

// Drops X.gz where X is present too (a folder unpacked with gunzip -k): they hold the same
// data, and the plain file is the faster read.
std::vector<fs::path> withoutGzCopies(const std::vector<fs::path>& files) {
  return filtered(files, [&](const fs::path& f) {
    if (!endsWith(lowerName(f), ".gz")) return true;
    const fs::path plain = f.parent_path() / f.stem();
    return std::find(files.begin(), files.end(), plain) == files.end();
  });
}

struct IdxPair {
  fs::path images;
  fs::path labels;
};

IdxPair pickIdxPair(const std::string& dir) {
  const std::vector<fs::path> files = withoutGzCopies(listFiles(dir));
  const std::vector<fs::path> images = filtered(files, isIdxImages);
  const std::vector<fs::path> labels = filtered(files, isIdxLabels);
  if (images.empty() || labels.empty()) {
    fail(dir, "is not an IDX folder: it holds no ",
         images.empty() ? "*images*idx3-ubyte[.gz] or *images*idx4-ubyte[.gz]"
                        : "*labels*idx1-ubyte[.gz]",
         " file (files: ", nameList(files), ")");
  }
  if (images.size() == 1 && labels.size() == 1) return {images[0], labels[0]};
  // MNIST-style folders ship a train and a test pair; a device trains on the train pair.
  const auto is_train = [](const fs::path& f) { return contains(lowerName(f), "train"); };
  const auto is_test = [](const fs::path& f) {
    const std::string n = lowerName(f);
    return !contains(n, "train") && (contains(n, "t10k") || contains(n, "test"));
  };
  std::vector<fs::path> all = images;
  all.insert(all.end(), labels.begin(), labels.end());
  const std::vector<fs::path> train_images = filtered(images, is_train);
  const std::vector<fs::path> train_labels = filtered(labels, is_train);
  const bool rest_is_test = std::all_of(
      all.begin(), all.end(), [&](const fs::path& f) { return is_train(f) || is_test(f); });
  if (train_images.size() == 1 && train_labels.size() == 1 && rest_is_test) {
    return {train_images[0], train_labels[0]};
  }
  fail(dir, "holds several IDX images or labels files and no single train pair beside test files",
       " to choose from: ", nameList(all));
}

Dataset readIdxFolder(const std::string& dir) {
  if (!fs::is_directory(existingStatus(dir))) {
    fail(dir,
         "is not a folder (the IDX format reads a folder holding an images and a labels file)");
  }
  const IdxPair pair = pickIdxPair(dir);
  const std::string image_path = pair.images.string();
  const std::string label_path = pair.labels.string();
  IdxArray images = readIdx(image_path);
  std::vector<std::int64_t> dims = images.dims;
  if (dims.size() == 3) dims.insert(dims.begin() + 1, 1);
  if (dims.size() != 4) {
    fail(image_path, "expected images of shape [N,H,W] (idx3) or [N,C,H,W] (idx4), got ",
         images.dims.size(), " dimensions");
  }
  if (dims[0] > 0 && (dims[1] == 0 || dims[2] == 0 || dims[3] == 0)) {
    fail(image_path, "images of shape ", shapeText(dims), " hold no pixels");
  }
  IdxArray labels = readIdx(label_path);
  if (labels.dims.size() != 1) {
    fail(label_path, "expected a 1-d label array, got ", labels.dims.size(), " dimensions");
  }
  if (labels.dims[0] != dims[0]) {
    fail(dir, "count mismatch: '", pair.images.filename().string(), "' holds ", dims[0],
         " images but '", pair.labels.filename().string(), "' holds ", labels.dims[0], " labels");
  }
  // from_blob only borrows the vectors; the conversions allocate owning tensors.
  at::Tensor x = at::from_blob(images.data.data(), dims, at::kByte).to(at::kFloat).div_(255.0);
  at::Tensor y = at::from_blob(labels.data.data(), {dims[0]}, at::kByte).to(at::kLong);
  return finishDataset(dir, std::move(x), std::move(y));
}

// --- CIFAR-10 binary batches ---

std::int64_t cifarRecordCount(const std::string& file) {
  if (!fs::is_regular_file(existingStatus(file))) fail(file, "is not a regular file");
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  if (ec) fail(file, "cannot determine size: ", ec.message());
  if (size == 0) fail(file, "is empty");
  if (size % kCifarRecord != 0) {
    fail(file, "size ", size, " bytes is not a whole number of ", kCifarRecord,
         "-byte CIFAR-10 records (1 label byte + 3x32x32 pixel bytes); truncated or not CIFAR-10");
  }
  return static_cast<std::int64_t>(size / kCifarRecord);
}

std::vector<std::string> cifarFolderFiles(const std::string& dir) {
  const std::vector<fs::path> files = listFiles(dir);
  const std::vector<fs::path> bins =
      filtered(files, [](const fs::path& f) { return endsWith(lowerName(f), ".bin"); });
  // The CIFAR-10 download holds the training batches and test_batch.bin side by side.
  std::vector<fs::path> chosen =
      filtered(bins, [](const fs::path& f) { return lowerName(f).rfind("data_batch_", 0) == 0; });
  if (chosen.empty()) chosen = bins;
  if (chosen.empty()) fail(dir, "holds no CIFAR-10 .bin files (files: ", nameList(files), ")");
  std::vector<std::string> out;
  for (const fs::path& f : chosen) out.push_back(f.string());
  return out;
}

Dataset readCifarPath(const std::string& path) {
  const fs::file_status st = existingStatus(path);
  return loadCifar10Batches(
      fs::is_directory(st) ? cifarFolderFiles(path) : std::vector<std::string>{path}, path);
}

// --- torch.save tensor file ---

std::vector<char> readWholeFile(const std::string& path) {
  if (!fs::is_regular_file(existingStatus(path))) fail(path, "is not a regular file");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot be opened for reading");
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail(path, "read error");
  return bytes;
}

c10::IValue loadPickle(const std::string& path) {
  const std::vector<char> bytes = readWholeFile(path);
  if (bytes.size() < 2 || bytes[0] != 'P' || bytes[1] != 'K') {
    fail(path, "is not a zip archive; expected a file written by torch.save in its default zip ",
         "format (PyTorch >= 1.6; the legacy format is not supported)");
  }
  try {
    return torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    fail(path, "cannot be read as a torch.save file: ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(path, "cannot be read as a torch.save file: ", e.what());
  }
}

at::Tensor entry(const std::string& path, const c10::impl::GenericDict& dict, const char* key) {
  for (const auto& kv : dict) {
    if (!kv.key().isString() || kv.key().toStringRef() != key) continue;
    if (!kv.value().isTensor()) {
      fail(path, "entry \"", key, "\" is a ", kv.value().tagKind(), ", expected a tensor");
    }
    const at::Tensor t = kv.value().toTensor();
    if (t.layout() != at::kStrided) {
      fail(path, "entry \"", key, "\" is a ", t.layout(), " tensor, expected a dense one");
    }
    // A tensor saved with requires_grad would drag autograd into training.
    return t.detach();
  }
  fail(path, "has no \"", key, "\" entry (expected a dict with \"images\" and \"labels\" tensors)");
}

at::Tensor tensorFileImages(const std::string& path, const c10::impl::GenericDict& dict) {
  at::Tensor x = entry(path, dict, "images");
  if (x.dim() != 3 && x.dim() != 4) {
    fail(path, "entry \"images\" has shape ", shapeText(x.sizes()),
         ", expected [N,H,W] or [N,C,H,W]");
  }
  if (x.dim() == 3) x = x.unsqueeze(1);
  if (x.scalar_type() == at::kByte) return x.to(at::kFloat).div_(255.0);
  if (x.scalar_type() != at::kFloat) {
    fail(path, "entry \"images\" has dtype ", x.dtype(), ", expected uint8 or float32");
  }
  x = x.contiguous();
  // Float images must not be normalised yet (the server's normalisation comes on top) nor
  // in 0..255: either would train on silently wrong inputs.
  const at::Tensor bad = (x.isnan() | x.lt(0) | x.gt(1)).flatten().nonzero();
  if (bad.size(0) > 0) {
    const std::int64_t i = bad[0][0].item<std::int64_t>();
    fail(path, "entry \"images\" holds ", x.flatten()[i].item<float>(), " at flat index ", i,
         "; float32 images must be in [0,1] (save uint8 pixels or divide by 255)");
  }
  return x;
}

Dataset readTensorFile(const std::string& path) {
  const c10::IValue top = loadPickle(path);
  if (!top.isGenericDict()) {
    fail(path, "holds a ", top.tagKind(), ", expected a dict with \"images\" and \"labels\"");
  }
  const c10::impl::GenericDict dict = top.toGenericDict();
  at::Tensor images = tensorFileImages(path, dict);
  at::Tensor labels = entry(path, dict, "labels");
  if (labels.dim() != 1) {
    fail(path, "entry \"labels\" has shape ", shapeText(labels.sizes()), ", expected [N]");
  }
  if (!at::isIntegralType(labels.scalar_type(), /*includeBool=*/false)) {
    fail(path, "entry \"labels\" has dtype ", labels.dtype(), ", expected an integer type");
  }
  if (labels.size(0) != images.size(0)) {
    fail(path, "count mismatch: entry \"images\" holds ", images.size(0),
         " samples but entry \"labels\" holds ", labels.size(0));
  }
  return finishDataset(path, std::move(images), labels.to(at::kLong).contiguous());
}

// --- format choice ---

bool hasZipMagic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::array<char, 2> m{};
  f.read(m.data(), m.size());
  return f.gcount() == 2 && m[0] == 'P' && m[1] == 'K';
}

LocalDataFormat detectFormat(const std::string& path) {
  const fs::file_status st = existingStatus(path);
  if (fs::is_directory(st)) {
    const std::vector<fs::path> files = listFiles(path);
    if (std::any_of(files.begin(), files.end(), isIdxImages)) return LocalDataFormat::kIdx;
    if (std::any_of(files.begin(), files.end(),
                    [](const fs::path& f) { return endsWith(lowerName(f), ".bin"); })) {
      return LocalDataFormat::kCifar10;
    }
    fail(path, "is a folder with neither IDX images files nor .bin files (files: ", nameList(files),
         "); ", kAcceptedFormats);
  }
  if (!fs::is_regular_file(st)) fail(path, "is neither a regular file nor a folder");
  const std::string name = lowerName(path);
  if (endsWith(name, ".bin")) return LocalDataFormat::kCifar10;
  if (hasZipMagic(path) || endsWith(name, ".pt") || endsWith(name, ".pth")) {
    return LocalDataFormat::kTensorFile;
  }
  fail(path, "is a file of no accepted data format; ", kAcceptedFormats);
}

// `values` for each of `channels` channels: one value serves them all.
std::vector<double> perChannel(const std::vector<double>& values, std::int64_t channels,
                               const char* what, const Dataset& data) {
  if (values.size() == 1) return std::vector<double>(static_cast<std::size_t>(channels), values[0]);
  if (static_cast<std::int64_t>(values.size()) != channels) {
    SFN_THROW(ConfigError, "normalize: ", what, " has ", values.size(), " values but dataset '",
              data.name, "' has ", channels, " channels (give 1 value or ", channels, ")");
  }
  return values;
}

}  // namespace

LocalDataFormat parseLocalDataFormat(std::string_view text) {
  if (text == "auto") return LocalDataFormat::kAuto;
  if (text == "idx") return LocalDataFormat::kIdx;
  if (text == "cifar10") return LocalDataFormat::kCifar10;
  if (text == "torch") return LocalDataFormat::kTensorFile;
  SFN_THROW(ConfigError, "local data format must be auto, idx, cifar10 or torch (got \"", text,
            "\")");
}

std::string_view toString(LocalDataFormat format) {
  switch (format) {
    case LocalDataFormat::kAuto:
      return "auto";
    case LocalDataFormat::kIdx:
      return "idx";
    case LocalDataFormat::kCifar10:
      return "cifar10";
    case LocalDataFormat::kTensorFile:
      return "torch";
  }
  return "unknown";
}

Dataset loadLocalData(const std::string& path, LocalDataFormat format) {
  if (format == LocalDataFormat::kAuto) format = detectFormat(path);
  switch (format) {
    case LocalDataFormat::kIdx:
      return readIdxFolder(path);
    case LocalDataFormat::kCifar10:
      return readCifarPath(path);
    case LocalDataFormat::kTensorFile:
      return readTensorFile(path);
    case LocalDataFormat::kAuto:
      break;
  }
  SFN_THROW(ConfigError, "loadLocalData: format ", static_cast<int>(format), " is not readable");
}

Dataset loadCifar10Batches(const std::vector<std::string>& files, std::string name) {
  if (files.empty()) SFN_THROW(IoError, "CIFAR-10 data '", name, "': no batch files given");
  std::vector<std::int64_t> counts;
  std::int64_t total = 0;
  for (const std::string& f : files) total += counts.emplace_back(cifarRecordCount(f));
  // One buffer for all records; the sizes were checked above, so a short read means the file
  // changed underneath us.
  at::Tensor raw = at::empty({total, kCifarRecord}, at::kByte);
  char* dst = reinterpret_cast<char*>(raw.data_ptr<std::uint8_t>());
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::ifstream in(files[i], std::ios::binary);
    if (!in) fail(files[i], "cannot be opened for reading");
    const std::streamsize want = counts[i] * kCifarRecord;
    in.read(dst, want);
    if (in.gcount() != want)
      fail(files[i], "truncated: read ", in.gcount(), " of ", want, " bytes");
    dst += want;
  }
  at::Tensor labels = raw.select(1, 0).to(at::kLong);
  at::Tensor images = raw.narrow(1, 1, kCifarPixels)
                          .to(at::kFloat)
                          .div_(255.0)
                          .reshape({total, kCifarChannels, kCifarSide, kCifarSide});
  return finishDataset(name, std::move(images), std::move(labels));
}

void normalize(Dataset& data, const std::vector<double>& mean, const std::vector<double>& stddev) {
  if (!data.images.defined() || data.images.dim() != 4 || data.images.scalar_type() != at::kFloat) {
    SFN_THROW(ConfigError, "normalize: dataset '", data.name, "' has no float32 [N,C,H,W] images");
  }
  const std::int64_t channels = data.images.size(1);
  const std::vector<double> m = perChannel(mean, channels, "mean", data);
  const std::vector<double> s = perChannel(stddev, channels, "std", data);
  for (std::size_t c = 0; c < s.size(); ++c) {
    if (!std::isfinite(m[c])) SFN_THROW(ConfigError, "normalize: mean[", c, "] is ", m[c]);
    if (!(s[c] > 0) || !std::isfinite(s[c])) {
      SFN_THROW(ConfigError, "normalize: std[", c, "] is ", s[c], ", must be finite and > 0");
    }
  }
  if (mean.size() == 1 && stddev.size() == 1) {
    // The very operations loadFashionMnist applies, so a client normalising its own copy of
    // Fashion-MNIST gets the server's tensors bit for bit.
    data.images.sub_(m[0]).div_(s[0]);
    return;
  }
  for (std::int64_t c = 0; c < channels; ++c) {
    const auto i = static_cast<std::size_t>(c);
    data.images.select(1, c).sub_(m[i]).div_(s[i]);
  }
}

}  // namespace sfn
