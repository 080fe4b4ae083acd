#include "sfn/wire/wire.h"

#include "sfn/core/error.h"
#include "sfn/model/shape_text.h"

#include "sfn_generated.h"

#include <ATen/ATen.h>
#include <flatbuffers/flatbuffers.h>

#include <array>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>

namespace sfn {
namespace {

namespace fbw = ::sfn::wire;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

// FlatBuffers asserts (aborts in debug builds) on buffers of 2 GiB or more, so every size
// that reaches the library is checked against this first.
constexpr std::size_t kMaxFlatBufferBytes = std::size_t{FLATBUFFERS_MAX_BUFFER_SIZE} - 1;
// Root offset + file identifier: anything shorter cannot be an Envelope.
constexpr std::size_t kMinMessageBytes = 8;
// The widest scalar in the schema is 8 bytes; a buffer starting at a multiple of 8 can be
// read in place (and its 16-aligned tensor data viewed in place).
constexpr std::size_t kBaseAlignment = 8;
constexpr std::size_t kTensorAlignment = 16;

// Keeps an encoder's output without copying it.
class DetachedBytes final : public Bytes {
 public:
  explicit DetachedBytes(flatbuffers::DetachedBuffer buffer) : buffer_(std::move(buffer)) {}
  const std::uint8_t* data() const override { return buffer_.data(); }
  std::size_t size() const override { return buffer_.size(); }

 private:
  flatbuffers::DetachedBuffer buffer_;
};

// --- encoding -------------------------------------------------------------------------

struct PreparedTensor {
  const std::string* name;
  at::Tensor tensor;  // CPU; strided when it is a slice view, copied as such (copyInto)
  fbw::DType dtype;
  std::size_t nbytes;
};

std::vector<PreparedTensor> prepareTensors(const NamedTensors& tensors) {
  std::vector<PreparedTensor> out;
  out.reserve(tensors.size());
  for (const auto& item : tensors) {
    SFN_ENFORCE(!item.name.empty(), ProtocolError, "cannot encode a tensor without a name");
    const at::Tensor& t = item.tensor;
    SFN_ENFORCE(t.defined(), ProtocolError, "tensor '", item.name, "' is undefined");
    SFN_ENFORCE(t.device().is_cpu(), ProtocolError, "tensor '", item.name,
                "' must be on the CPU to be encoded, is on ", t.device());
    fbw::DType dtype = fbw::DType::Unknown;
    if (t.scalar_type() == at::kFloat) {
      dtype = fbw::DType::Float32;
    } else if (t.scalar_type() == at::kLong) {
      dtype = fbw::DType::Int64;
    } else {
      SFN_THROW(ProtocolError, "tensor '", item.name, "' has dtype ", t.scalar_type(),
                "; the wire carries Float32 and Int64 only");
    }
    out.push_back({&item.name, t, dtype, static_cast<std::size_t>(t.numel()) * t.element_size()});
  }
  return out;
}

// Writes `t` to `dst` in row-major order, each byte once: one memcpy for a contiguous
// tensor; for a strided view (a SuperNet slice), one memcpy per run of its innermost
// dimensions that are contiguous in memory, walking the outer dimensions with an odometer.
// This replaces t.contiguous() followed by a memcpy, which wrote every byte twice.
void copyInto(const at::Tensor& t, std::uint8_t* dst) {
  const auto* src = static_cast<const std::uint8_t*>(t.data_ptr());
  const auto elem = static_cast<std::int64_t>(t.element_size());
  if (t.is_contiguous()) {
    std::memcpy(dst, src, static_cast<std::size_t>(t.numel() * elem));
    return;
  }
  const c10::IntArrayRef sizes = t.sizes();
  const c10::IntArrayRef strides = t.strides();
  // Dimensions [outer, dim) form one contiguous run of `run` elements.
  std::size_t outer = sizes.size();
  std::int64_t run = 1;
  while (outer > 0 && (sizes[outer - 1] == 1 || strides[outer - 1] == run)) {
    run *= sizes[outer - 1];
    --outer;
  }
  const auto run_bytes = static_cast<std::size_t>(run * elem);
  std::vector<std::int64_t> index(outer, 0);
  std::int64_t offset = 0;  // in elements, of index
  for (std::int64_t n = t.numel() / run; n > 0; --n) {
    std::memcpy(dst, src + offset * elem, run_bytes);
    dst += run_bytes;
    for (std::size_t k = outer; k-- > 0;) {
      offset += strides[k];
      if (++index[k] < sizes[k]) break;
      offset -= sizes[k] * strides[k];
      index[k] = 0;
    }
  }
}

// Upper bound of what the builder will need after the strings written before the tensors,
// so that it never grows (and re-copies tensor bytes) once tensor data is in place.
std::size_t tensorBytesBound(const std::vector<PreparedTensor>& tensors) {
  std::size_t n = 0;
  for (const auto& t : tensors)
    n += t.nbytes + kTensorAlignment + t.name->size() + 8 * t.tensor.dim() + 128;
  return n;
}

// Strings are created before the tensors on purpose (see tensorBytesBound).
Offset<flatbuffers::Vector<Offset<fbw::Tensor>>> writeTensors(
    FlatBufferBuilder& fbb, const std::vector<PreparedTensor>& tensors) {
  std::vector<Offset<fbw::Tensor>> offsets;
  offsets.reserve(tensors.size());
  for (const auto& t : tensors) {
    auto name = fbb.CreateString(*t.name);
    const auto sizes = t.tensor.sizes();
    auto shape = fbb.CreateVector(sizes.data(), sizes.size());
    fbb.ForceVectorAlignment(t.nbytes, 1, kTensorAlignment);
    std::uint8_t* dst = nullptr;
    auto data = fbb.CreateUninitializedVector(t.nbytes, 1, &dst);
    // dst is valid only until the builder grows again, so the bytes go in right now: this
    // is the one and only copy of the tensor on the sending side.
    if (t.nbytes > 0) copyInto(t.tensor, dst);
    offsets.push_back(fbw::CreateTensor(fbb, name, t.dtype, shape, data));
  }
  return fbb.CreateVector(offsets);
}

Offset<fbw::HyperParams> writeHyper(FlatBufferBuilder& fbb, const HyperParams& h) {
  return fbw::CreateHyperParams(fbb, h.epochs, h.batch_size, h.lr, h.momentum, h.weight_decay,
                                h.clip_grad_norm, h.seed);
}

using PayloadOffset = std::pair<fbw::Payload, Offset<void>>;

PayloadOffset writePayload(FlatBufferBuilder& fbb, const RegisterMsg& m,
                           const std::vector<PreparedTensor>&) {
  auto name = fbb.CreateString(m.client_name);
  auto device = fbb.CreateString(m.device_class);
  Offset<flatbuffers::Vector<Offset<fbw::LatencyEntry>>> latency;
  if (!m.latency.empty()) {
    std::vector<Offset<fbw::LatencyEntry>> entries;
    entries.reserve(m.latency.size());
    for (const auto& e : m.latency)
      entries.push_back(fbw::CreateLatencyEntry(fbb, fbb.CreateString(e.key), e.ms));
    latency = fbb.CreateVector(entries);
  }
  Offset<fbw::DataInfo> data;
  if (m.data)
    data = fbw::CreateDataInfo(fbb, m.data->channels, m.data->height, m.data->width,
                               m.data->max_label);
  Offset<fbw::ShardRequest> shard;
  if (m.shard) shard = fbw::CreateShardRequest(fbb, m.shard->index, m.shard->count);
  auto off = fbw::CreateRegister(fbb, name, device, m.cores, m.memory_bytes, m.samples, latency,
                                 data, shard);
  return {fbw::Payload::Register, off.Union()};
}

Offset<fbw::ShardSettings> writeShardSettings(FlatBufferBuilder& fbb, const ShardSettings& s) {
  return fbw::CreateShardSettings(
      fbb, static_cast<fbw::DatasetKind>(static_cast<std::uint8_t>(s.dataset)), s.seed,
      s.val_fraction, static_cast<fbw::PartitionScheme>(static_cast<std::uint8_t>(s.scheme)),
      s.alpha, s.synthetic_train, s.synthetic_test, s.samples, s.shards_per_client, s.min_samples,
      s.split_seed);
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const WelcomeMsg& m,
                           const std::vector<PreparedTensor>&) {
  auto server = fbb.CreateString(m.server_name);
  auto run_id = fbb.CreateString(m.run_id);
  auto space = fbb.CreateString(m.design_space);
  Offset<fbw::ShardSettings> shard;
  if (m.shard) shard = writeShardSettings(fbb, *m.shard);
  auto off = fbw::CreateWelcome(fbb, m.client_id, server, m.protocol_version, run_id, space, shard);
  return {fbw::Payload::Welcome, off.Union()};
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const RejectMsg& m,
                           const std::vector<PreparedTensor>&) {
  auto off = fbw::CreateReject(fbb, fbb.CreateString(m.reason),
                               static_cast<fbw::RejectCode>(static_cast<std::uint8_t>(m.code)));
  return {fbw::Payload::Reject, off.Union()};
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const TrainTaskMsg& m,
                           const std::vector<PreparedTensor>& tensors) {
  auto subnet = fbb.CreateString(m.subnet);
  auto list = writeTensors(fbb, tensors);
  auto hyper = writeHyper(fbb, m.hyper);
  auto off = fbw::CreateTrainTask(fbb, m.round, m.task_id, subnet, list, hyper, m.deadline_ms);
  return {fbw::Payload::TrainTask, off.Union()};
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const UpdateMsg& m,
                           const std::vector<PreparedTensor>& tensors) {
  auto list = writeTensors(fbb, tensors);
  auto off =
      fbw::CreateUpdate(fbb, m.round, m.task_id, m.samples, list, m.mean_loss, m.compute_seconds);
  return {fbw::Payload::Update, off.Union()};
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const EvalTaskMsg& m,
                           const std::vector<PreparedTensor>& tensors) {
  auto subnet = fbb.CreateString(m.subnet);
  auto list = writeTensors(fbb, tensors);
  auto off = fbw::CreateEvalTask(fbb, m.round, m.task_id, subnet, list);
  return {fbw::Payload::EvalTask, off.Union()};
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const EvalResultMsg& m,
                           const std::vector<PreparedTensor>&) {
  auto off = fbw::CreateEvalResult(fbb, m.round, m.task_id, m.accuracy, m.loss, m.samples);
  return {fbw::Payload::EvalResult, off.Union()};
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const HeartbeatMsg& m,
                           const std::vector<PreparedTensor>&) {
  return {fbw::Payload::Heartbeat, fbw::CreateHeartbeat(fbb, m.sequence).Union()};
}

PayloadOffset writePayload(FlatBufferBuilder& fbb, const ByeMsg& m,
                           const std::vector<PreparedTensor>&) {
  auto off = fbw::CreateBye(fbb, fbb.CreateString(m.reason),
                            static_cast<fbw::ByeCode>(static_cast<std::uint8_t>(m.code)));
  return {fbw::Payload::Bye, off.Union()};
}

// Strings and small lists of a message, for the builder's initial size.
std::size_t otherBytesBound(const Message& message) {
  return std::visit(
      [](const auto& m) -> std::size_t {
        std::size_t n = 1024;
        if constexpr (requires { m.client_name; })
          n += m.client_name.size() + m.device_class.size();
        if constexpr (requires { m.latency; })
          for (const auto& e : m.latency) n += e.key.size() + 64;
        if constexpr (requires { m.server_name; })
          n += m.server_name.size() + m.run_id.size() + m.design_space.size();
        if constexpr (requires { m.reason; }) n += m.reason.size();
        if constexpr (requires { m.subnet; }) n += m.subnet.size();
        return n;
      },
      message);
}

// --- decoding -------------------------------------------------------------------------

WireError makeError(WireErrorCode code, std::string reason) {
  return WireError{code, std::move(reason)};
}

std::optional<WireError> readString(const flatbuffers::String* s, std::uint32_t max_bytes,
                                    const char* field, std::string& out) {
  if (s == nullptr) {
    out.clear();
    return std::nullopt;
  }
  if (s->size() > max_bytes)
    return makeError(WireErrorCode::kBadField, std::string(field) + " is " +
                                                   std::to_string(s->size()) + " bytes, limit " +
                                                   std::to_string(max_bytes));
  out.assign(s->c_str(), s->size());
  return std::nullopt;
}

struct CheckedTensor {
  std::string name;
  at::ScalarType type;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data;  // nullptr when empty
};

// The element type of a tensor; kBadDtype for anything the wire does not carry.
std::optional<WireError> checkDtype(const fbw::Tensor& t, const std::string& label,
                                    at::ScalarType& type, std::uint64_t& elem_size) {
  switch (t.dtype()) {
    case fbw::DType::Float32:
      type = at::kFloat;
      elem_size = 4;
      return std::nullopt;
    case fbw::DType::Int64:
      type = at::kLong;
      elem_size = 8;
      return std::nullopt;
    default:
      return makeError(
          WireErrorCode::kBadDtype,
          label + " has unknown dtype " + std::to_string(static_cast<unsigned>(t.dtype())));
  }
}

// The shape of a tensor and, in `nbytes` (which comes in holding the element size), the
// bytes it needs. Starting the product at the element size lets one multiplication chain
// catch overflow of both the element count and the byte count.
std::optional<WireError> checkShape(const fbw::Tensor& t, const DecodeLimits& limits,
                                    const std::string& label, std::vector<std::int64_t>& shape,
                                    std::uint64_t& nbytes) {
  const auto* dims = t.shape();
  if (dims == nullptr) return std::nullopt;
  if (dims->size() > limits.max_dims)
    return makeError(WireErrorCode::kBadShape, label + " has " + std::to_string(dims->size()) +
                                                   " dimensions, limit " +
                                                   std::to_string(limits.max_dims));
  // The 2.0.8 verifier checks the alignment of a vector's length, not of its 8-byte
  // elements; reading misaligned int64s would be undefined behaviour. (An empty vector
  // has no elements to align, and builders do not align it.)
  if (dims->size() > 0 &&
      reinterpret_cast<std::uintptr_t>(dims->data()) % alignof(std::int64_t) != 0)
    return makeError(WireErrorCode::kMisaligned, label + " shape is not 8-byte aligned");
  shape.reserve(dims->size());
  for (flatbuffers::uoffset_t d = 0; d < dims->size(); ++d) {
    const std::int64_t dim = dims->Get(d);
    if (dim < 0)
      return makeError(WireErrorCode::kBadShape,
                       label + " has negative dimension " + std::to_string(dim));
    if (__builtin_mul_overflow(nbytes, static_cast<std::uint64_t>(dim), &nbytes))
      return makeError(WireErrorCode::kSizeOverflow, label + " shape overflows");
    shape.push_back(dim);
  }
  return std::nullopt;
}

// Type, shape, size and alignment of one named tensor.
std::optional<WireError> checkTensor(const fbw::Tensor& t, std::string_view name,
                                     const DecodeLimits& limits, std::vector<CheckedTensor>& out) {
  const std::string label = "tensor '" + std::string(name) + "'";
  at::ScalarType type = at::kFloat;
  std::uint64_t elem_size = 0;
  if (auto e = checkDtype(t, label, type, elem_size)) return e;
  std::vector<std::int64_t> shape;
  std::uint64_t nbytes = elem_size;
  if (auto e = checkShape(t, limits, label, shape, nbytes)) return e;
  const std::uint64_t have = t.data() != nullptr ? t.data()->size() : 0;
  if (have != nbytes)
    return makeError(WireErrorCode::kSizeMismatch, label + " carries " + std::to_string(have) +
                                                       " bytes, shape needs " +
                                                       std::to_string(nbytes));
  const std::uint8_t* data = nbytes > 0 ? t.data()->data() : nullptr;
  if (data != nullptr && reinterpret_cast<std::uintptr_t>(data) % elem_size != 0)
    return makeError(WireErrorCode::kMisaligned,
                     label + " data is not aligned to " + std::to_string(elem_size) + " bytes");
  out.push_back({std::string(name), type, std::move(shape), data});
  return std::nullopt;
}

// All checks of a tensor list happen before the first LibTorch call, so a message that is
// rejected never allocates tensors.
std::optional<WireError> checkTensors(const flatbuffers::Vector<Offset<fbw::Tensor>>* list,
                                      const DecodeLimits& limits, std::vector<CheckedTensor>& out) {
  if (list == nullptr) return std::nullopt;
  if (list->size() > limits.max_tensors)
    return makeError(
        WireErrorCode::kTooManyTensors,
        std::to_string(list->size()) + " tensors, limit " + std::to_string(limits.max_tensors));
  out.reserve(list->size());
  std::unordered_set<std::string_view> seen;
  for (flatbuffers::uoffset_t i = 0; i < list->size(); ++i) {
    const fbw::Tensor* t = list->Get(i);
    const std::string where = "tensor #" + std::to_string(i);
    if (t == nullptr || t->name() == nullptr || t->name()->size() == 0)
      return makeError(WireErrorCode::kBadTensorName, where + " has no name");
    const std::string_view name(t->name()->c_str(), t->name()->size());
    if (name.size() > limits.max_name_bytes)
      return makeError(WireErrorCode::kBadTensorName,
                       where + " name is " + std::to_string(name.size()) + " bytes");
    if (!seen.insert(name).second)
      return makeError(WireErrorCode::kBadTensorName,
                       "tensor '" + std::string(name) + "' appears twice");
    if (auto e = checkTensor(*t, name, limits, out)) return e;
  }
  return std::nullopt;
}

// Views every checked tensor in place; each view keeps `owner` alive.
NamedTensors viewTensors(std::vector<CheckedTensor>& checked, const BytesPtr& owner) {
  NamedTensors out;
  for (auto& c : checked) {
    const auto options = at::TensorOptions().dtype(c.type).device(at::kCPU);
    at::Tensor t;
    if (c.data == nullptr) {
      t = at::empty(c.shape, options);  // no elements: nothing to alias
    } else {
      // from_blob wants void*: the bytes are only ever read unless the caller writes into
      // the decoded tensor, which wire.h documents as writing into the message.
      t = at::from_blob(
          const_cast<std::uint8_t*>(c.data), c.shape,
          [keep = owner](void*) mutable { keep.reset(); }, options);
    }
    out.add(std::move(c.name), std::move(t));
  }
  return out;
}

std::optional<WireError> decodeTensorList(const flatbuffers::Vector<Offset<fbw::Tensor>>* list,
                                          const DecodeLimits& limits, const BytesPtr& owner,
                                          NamedTensors& out) {
  std::vector<CheckedTensor> checked;
  if (auto err = checkTensors(list, limits, checked)) return err;
  out = viewTensors(checked, owner);
  return std::nullopt;
}

using PayloadResult = std::variant<Message, WireError>;

PayloadResult decodePayload(const fbw::Register& p, const DecodeLimits& limits, const BytesPtr&) {
  RegisterMsg m;
  if (auto e = readString(p.client_name(), limits.max_string_bytes, "client_name", m.client_name))
    return *e;
  if (auto e =
          readString(p.device_class(), limits.max_string_bytes, "device_class", m.device_class))
    return *e;
  m.cores = p.cores();
  m.memory_bytes = p.memory_bytes();
  m.samples = p.samples();
  if (const auto* list = p.latency()) {
    if (list->size() > limits.max_latency_entries)
      return makeError(WireErrorCode::kBadField,
                       "latency table has " + std::to_string(list->size()) + " entries");
    m.latency.reserve(list->size());
    for (flatbuffers::uoffset_t i = 0; i < list->size(); ++i) {
      const fbw::LatencyEntry* entry = list->Get(i);
      LatencyEntry e;
      if (auto err = readString(entry->key(), limits.max_name_bytes, "latency key", e.key))
        return *err;
      e.ms = entry->ms();
      m.latency.push_back(std::move(e));
    }
  }
  if (const auto* d = p.data())
    m.data = DataInfo{d->channels(), d->height(), d->width(), d->max_label()};
  if (const auto* s = p.shard()) m.shard = ShardRequest{s->index(), s->count()};
  return m;
}

// A value a newer peer may add reads as 0 (kUnknown); the receiver refuses what it needs.
template <typename E, typename F>
E knownOrUnknown(F value, E last) {
  const auto v = static_cast<std::uint8_t>(value);
  return v <= static_cast<std::uint8_t>(last) ? static_cast<E>(v) : E{};
}

ShardSettings readShardSettings(const fbw::ShardSettings& s) {
  ShardSettings out;
  out.dataset = knownOrUnknown(s.dataset(), DatasetKind::kCifar10);
  out.seed = s.seed();
  out.val_fraction = s.val_fraction();
  out.scheme = knownOrUnknown(s.scheme(), PartitionScheme::kShards);
  out.alpha = s.alpha();
  out.synthetic_train = s.synthetic_train();
  out.synthetic_test = s.synthetic_test();
  out.samples = s.samples();
  out.shards_per_client = s.shards_per_client();
  out.min_samples = s.min_samples();
  out.split_seed = s.split_seed();
  return out;
}

PayloadResult decodePayload(const fbw::Welcome& p, const DecodeLimits& limits, const BytesPtr&) {
  WelcomeMsg m;
  m.client_id = p.client_id();
  if (auto e = readString(p.server_name(), limits.max_string_bytes, "server_name", m.server_name))
    return *e;
  m.protocol_version = p.protocol_version();
  if (auto e = readString(p.run_id(), limits.max_string_bytes, "run_id", m.run_id)) return *e;
  if (auto e =
          readString(p.design_space(), limits.max_string_bytes, "design_space", m.design_space))
    return *e;
  if (const auto* s = p.shard()) m.shard = readShardSettings(*s);
  return m;
}

PayloadResult decodePayload(const fbw::Reject& p, const DecodeLimits& limits, const BytesPtr&) {
  RejectMsg m;
  if (auto e = readString(p.reason(), limits.max_string_bytes, "reason", m.reason)) return *e;
  const auto code = static_cast<std::uint8_t>(p.code());
  // A newer peer may send codes we do not know; they still refuse, for a reason we log.
  m.code = code <= static_cast<std::uint8_t>(RejectCode::kProtocolMismatch)
               ? static_cast<RejectCode>(code)
               : RejectCode::kUnspecified;
  return m;
}

PayloadResult decodePayload(const fbw::TrainTask& p, const DecodeLimits& limits,
                            const BytesPtr& owner) {
  TrainTaskMsg m;
  m.round = p.round();
  m.task_id = p.task_id();
  m.deadline_ms = p.deadline_ms();
  if (auto e = readString(p.subnet(), limits.max_string_bytes, "subnet", m.subnet)) return *e;
  // Defaults for missing hyper-parameters would be silently wrong (epochs 0, lr 0).
  const fbw::HyperParams* h = p.hyper();
  if (h == nullptr) return makeError(WireErrorCode::kBadField, "TrainTask without hyper");
  m.hyper = HyperParams{h->epochs(),       h->batch_size(),     h->lr(),  h->momentum(),
                        h->weight_decay(), h->clip_grad_norm(), h->seed()};
  if (auto e = decodeTensorList(p.tensors(), limits, owner, m.tensors)) return *e;
  return m;
}

PayloadResult decodePayload(const fbw::Update& p, const DecodeLimits& limits,
                            const BytesPtr& owner) {
  UpdateMsg m;
  m.round = p.round();
  m.task_id = p.task_id();
  m.samples = p.samples();
  m.mean_loss = p.mean_loss();
  m.compute_seconds = p.compute_seconds();
  if (auto e = decodeTensorList(p.tensors(), limits, owner, m.tensors)) return *e;
  return m;
}

PayloadResult decodePayload(const fbw::EvalTask& p, const DecodeLimits& limits,
                            const BytesPtr& owner) {
  EvalTaskMsg m;
  m.round = p.round();
  m.task_id = p.task_id();
  if (auto e = readString(p.subnet(), limits.max_string_bytes, "subnet", m.subnet)) return *e;
  if (auto e = decodeTensorList(p.tensors(), limits, owner, m.tensors)) return *e;
  return m;
}

PayloadResult decodePayload(const fbw::EvalResult& p, const DecodeLimits&, const BytesPtr&) {
  return EvalResultMsg{p.round(), p.task_id(), p.accuracy(), p.loss(), p.samples()};
}

PayloadResult decodePayload(const fbw::Heartbeat& p, const DecodeLimits&, const BytesPtr&) {
  return HeartbeatMsg{p.sequence()};
}

PayloadResult decodePayload(const fbw::Bye& p, const DecodeLimits& limits, const BytesPtr&) {
  ByeMsg m;
  if (auto e = readString(p.reason(), limits.max_string_bytes, "reason", m.reason)) return *e;
  m.code = knownOrUnknown(p.code(), ByeCode::kStopping);
  return m;
}

template <typename T>
PayloadResult decodeAs(const fbw::Envelope& env, const DecodeLimits& limits,
                       const BytesPtr& owner) {
  return decodePayload(*static_cast<const T*>(env.payload()), limits, owner);
}

std::optional<WireError> checkSize(std::size_t size, const DecodeLimits& limits) {
  const std::size_t max = std::min(limits.max_message_bytes, kMaxFlatBufferBytes);
  if (size > max)
    return makeError(WireErrorCode::kTooLarge,
                     "message is " + std::to_string(size) + " bytes, limit " + std::to_string(max));
  if (size < kMinMessageBytes)
    return makeError(WireErrorCode::kTooSmall,
                     "message is " + std::to_string(size) + " bytes, too short for an Envelope");
  return std::nullopt;
}

DecodeResult decodeChecked(BytesPtr bytes, const DecodeLimits& limits, std::size_t copies) {
  if (reinterpret_cast<std::uintptr_t>(bytes->data()) % kBaseAlignment != 0) {
    bytes = copyBytes(bytes->data(), bytes->size());
    ++copies;
  }
  const std::uint8_t* buf = bytes->data();
  const std::size_t size = bytes->size();

  flatbuffers::Verifier::Options options;
  options.max_depth = limits.max_depth;
  options.max_tables = limits.max_tables;
  options.check_alignment = true;
  flatbuffers::Verifier verifier(buf, size, options);
  // No identifier here: a wrong identifier is reported as such, after verification.
  if (!verifier.VerifyBuffer<fbw::Envelope>(nullptr))
    return makeError(WireErrorCode::kVerifyFailed, "FlatBuffers verification failed");
  if (!fbw::EnvelopeBufferHasIdentifier(buf))
    return makeError(WireErrorCode::kBadIdentifier,
                     "file identifier is not " + std::string(fbw::EnvelopeIdentifier()));
  const fbw::Envelope* env = fbw::GetEnvelope(buf);
  if (env->version() != kProtocolVersion)
    return makeError(WireErrorCode::kBadVersion,
                     "protocol version " + std::to_string(env->version()) + ", expected " +
                         std::to_string(kProtocolVersion));
  // The verifier skips union members it does not know, so their bytes are unverified and
  // must not be read.
  const auto type = env->payload_type();
  if (type == fbw::Payload::NONE || type > fbw::Payload::MAX || env->payload() == nullptr)
    return makeError(WireErrorCode::kUnknownPayload,
                     "unknown payload type " + std::to_string(static_cast<unsigned>(type)));

  PayloadResult result = [&]() -> PayloadResult {
    switch (type) {
      case fbw::Payload::Register:
        return decodeAs<fbw::Register>(*env, limits, bytes);
      case fbw::Payload::Welcome:
        return decodeAs<fbw::Welcome>(*env, limits, bytes);
      case fbw::Payload::Reject:
        return decodeAs<fbw::Reject>(*env, limits, bytes);
      case fbw::Payload::TrainTask:
        return decodeAs<fbw::TrainTask>(*env, limits, bytes);
      case fbw::Payload::Update:
        return decodeAs<fbw::Update>(*env, limits, bytes);
      case fbw::Payload::EvalTask:
        return decodeAs<fbw::EvalTask>(*env, limits, bytes);
      case fbw::Payload::EvalResult:
        return decodeAs<fbw::EvalResult>(*env, limits, bytes);
      case fbw::Payload::Heartbeat:
        return decodeAs<fbw::Heartbeat>(*env, limits, bytes);
      case fbw::Payload::Bye:
        return decodeAs<fbw::Bye>(*env, limits, bytes);
      default:
        break;
    }
    return makeError(WireErrorCode::kUnknownPayload, "unknown payload type");
  }();
  if (auto* err = std::get_if<WireError>(&result)) return std::move(*err);
  return DecodeResult(std::move(std::get<Message>(result)), copies);
}

void count(DecodeCounters* counters, const DecodeResult& result, std::size_t size) {
  if (counters == nullptr) return;
  if (result.ok()) {
    counters->decoded.fetch_add(1, std::memory_order_relaxed);
    counters->bytes.fetch_add(size, std::memory_order_relaxed);
    counters->copies.fetch_add(result.copies(), std::memory_order_relaxed);
  } else {
    counters->rejected.fetch_add(1, std::memory_order_relaxed);
  }
}

// Finite iff the exponent bits are not all ones; a bit test stays correct even when the
// build uses -ffast-math, where std::isfinite may be folded to true.
std::int64_t firstNonFinite(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  const float* p = c.data_ptr<float>();
  const std::int64_t n = c.numel();
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, p + i, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) return i;
  }
  return -1;
}

}  // namespace

namespace {
constexpr std::array<std::string_view, 4> kDatasetNames = {"unknown", "fmnist", "synthetic",
                                                           "cifar10"};
constexpr std::array<std::string_view, 4> kSchemeNames = {"unknown", "iid", "dirichlet", "shards"};

template <typename E, std::size_t N>
E parseName(std::string_view text, const std::array<std::string_view, N>& names) {
  for (std::size_t i = 1; i < N; ++i)
    if (names[i] == text) return static_cast<E>(i);
  return E{};
}
}  // namespace

std::string_view toString(DatasetKind kind) {
  const auto i = static_cast<std::size_t>(kind);
  return i < kDatasetNames.size() ? kDatasetNames[i] : "unknown";
}
DatasetKind parseDatasetKind(std::string_view text) {
  return parseName<DatasetKind>(text, kDatasetNames);
}
std::string_view toString(PartitionScheme scheme) {
  const auto i = static_cast<std::size_t>(scheme);
  return i < kSchemeNames.size() ? kSchemeNames[i] : "unknown";
}
PartitionScheme parsePartitionScheme(std::string_view text) {
  return parseName<PartitionScheme>(text, kSchemeNames);
}

std::string_view toString(ByeCode code) {
  switch (code) {
    case ByeCode::kUnspecified:
      return "unspecified";
    case ByeCode::kFinished:
      return "finished";
    case ByeCode::kStopping:
      return "stopping";
  }
  return "unknown";
}

std::string_view toString(RejectCode code) {
  switch (code) {
    case RejectCode::kUnspecified:
      return "unspecified";
    case RejectCode::kNotRegistered:
      return "not_registered";
    case RejectCode::kSampleCountOutOfRange:
      return "sample_count_out_of_range";
    case RejectCode::kClientIdCollision:
      return "client_id_collision";
    case RejectCode::kDataMismatch:
      return "data_mismatch";
    case RejectCode::kProtocolMismatch:
      return "protocol_mismatch";
  }
  return "unknown";
}

std::string_view messageName(const Message& message) {
  static constexpr std::array<std::string_view, 9> kNames = {"Register",   "Welcome",   "Reject",
                                                             "TrainTask",  "Update",    "EvalTask",
                                                             "EvalResult", "Heartbeat", "Bye"};
  static_assert(kNames.size() == std::variant_size_v<Message>);
  return kNames[message.index()];
}

BytesPtr encode(const Message& message) {
  const std::vector<PreparedTensor> tensors = std::visit(
      [](const auto& m) {
        if constexpr (requires { m.tensors; }) {
          return prepareTensors(m.tensors);
        } else {
          return std::vector<PreparedTensor>{};
        }
      },
      message);
  const std::size_t bound = tensorBytesBound(tensors) + otherBytesBound(message);
  SFN_ENFORCE(bound < kMaxFlatBufferBytes, ProtocolError, messageName(message), " of about ", bound,
              " bytes exceeds the 2 GiB FlatBuffers limit");

  // minalign 16 makes the final buffer start 16-aligned, so tensor data (16-aligned relative
  // to the buffer) is 16-aligned in memory too.
  FlatBufferBuilder fbb(bound, nullptr, false, kTensorAlignment);
  // Every message is a multiple of 8 bytes long, so its start (the end of the builder's
  // 16-aligned buffer minus its size) is 8-aligned and decode() reads it in place even when
  // no field needs 8-byte alignment (Reject, Bye).
  fbb.TrackMinAlign(kBaseAlignment);
  const auto [type, payload] =
      std::visit([&](const auto& m) { return writePayload(fbb, m, tensors); }, message);
  auto envelope = fbw::CreateEnvelope(fbb, kProtocolVersion, type, payload);
  fbw::FinishEnvelopeBuffer(fbb, envelope);
  return std::make_shared<DetachedBytes>(fbb.Release());
}

DecodeResult decode(BytesPtr bytes, const DecodeLimits& limits, DecodeCounters* counters) {
  if (bytes == nullptr) {
    DecodeResult r = makeError(WireErrorCode::kTooSmall, "no message");
    count(counters, r, 0);
    return r;
  }
  const std::size_t size = bytes->size();
  if (auto err = checkSize(size, limits)) {
    DecodeResult r = std::move(*err);
    count(counters, r, size);
    return r;
  }
  DecodeResult r = decodeChecked(std::move(bytes), limits, 0);
  count(counters, r, size);
  return r;
}

DecodeResult decode(const std::uint8_t* data, std::size_t size, const DecodeLimits& limits,
                    DecodeCounters* counters) {
  // Size first, so an oversized or empty buffer is rejected without being copied.
  if (auto err = checkSize(data == nullptr ? 0 : size, limits)) {
    DecodeResult r = std::move(*err);
    count(counters, r, size);
    return r;
  }
  DecodeResult r = decodeChecked(copyBytes(data, size), limits, 1);
  count(counters, r, size);
  return r;
}

std::string_view toString(WireErrorCode code) {
  switch (code) {
    case WireErrorCode::kTooSmall:
      return "too_small";
    case WireErrorCode::kTooLarge:
      return "too_large";
    case WireErrorCode::kVerifyFailed:
      return "verify_failed";
    case WireErrorCode::kBadIdentifier:
      return "bad_identifier";
    case WireErrorCode::kBadVersion:
      return "bad_version";
    case WireErrorCode::kUnknownPayload:
      return "unknown_payload";
    case WireErrorCode::kBadField:
      return "bad_field";
    case WireErrorCode::kTooManyTensors:
      return "too_many_tensors";
    case WireErrorCode::kBadTensorName:
      return "bad_tensor_name";
    case WireErrorCode::kBadDtype:
      return "bad_dtype";
    case WireErrorCode::kBadShape:
      return "bad_shape";
    case WireErrorCode::kSizeOverflow:
      return "size_overflow";
    case WireErrorCode::kSizeMismatch:
      return "size_mismatch";
    case WireErrorCode::kMisaligned:
      return "misaligned";
    case WireErrorCode::kCountMismatch:
      return "count_mismatch";
    case WireErrorCode::kNameMismatch:
      return "name_mismatch";
    case WireErrorCode::kDtypeMismatch:
      return "dtype_mismatch";
    case WireErrorCode::kShapeMismatch:
      return "shape_mismatch";
    case WireErrorCode::kNonFinite:
      return "non_finite";
  }
  return "unknown";
}

std::optional<WireError> validateTensors(const NamedTensors& tensors,
                                         const std::vector<TensorSpec>& expected) {
  if (tensors.size() != expected.size())
    return makeError(
        WireErrorCode::kCountMismatch,
        std::to_string(tensors.size()) + " tensors, expected " + std::to_string(expected.size()));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const NamedTensor& got = tensors[i];
    const TensorSpec& spec = expected[i];
    if (got.name != spec.name)
      return makeError(
          WireErrorCode::kNameMismatch,
          "tensor #" + std::to_string(i) + " is '" + got.name + "', expected '" + spec.name + "'");
    const std::string label = "tensor '" + spec.name + "'";
    const at::ScalarType want = spec.averaged ? at::kFloat : at::kLong;
    if (!got.tensor.defined() || !got.tensor.device().is_cpu() || got.tensor.scalar_type() != want)
      return makeError(WireErrorCode::kDtypeMismatch,
                       label + " is not a CPU " + std::string(c10::toString(want)) + " tensor");
    if (got.tensor.sizes() != c10::IntArrayRef(spec.shape))
      return makeError(WireErrorCode::kShapeMismatch, label + " has shape " +
                                                          shapeText(got.tensor.sizes()) +
                                                          ", expected " + shapeText(spec.shape));
    if (want == at::kFloat) {
      if (const std::int64_t bad = firstNonFinite(got.tensor); bad >= 0)
        return makeError(WireErrorCode::kNonFinite,
                         label + " element " + std::to_string(bad) + " is not finite");
    }
  }
  return std::nullopt;
}

}  // namespace sfn
