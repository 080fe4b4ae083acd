// Wire format: encoding, verification and zero-copy decoding of protocol messages.
//
// Every message is one FlatBuffers Envelope (schemas/sfn.fbs). encode() builds it with the
// tensor bytes written once, straight into the builder. decode() never throws on bad bytes:
// it returns a WireError naming what was wrong, after checks in this order: size limits,
// FlatBuffers verification (depth/table/size limits), file identifier, protocol version,
// known payload type, then field semantics (tensor names, dtypes, shapes, byte counts,
// alignment). Only then is any LibTorch object created.
//
// Decoded tensors are views into the received message (at::from_blob); each view holds a
// reference to the message's Bytes, so the message lives exactly as long as the last
// tensor (or the DecodeResult) that uses it. Writing into a decoded tensor writes into
// the message buffer: clone() before modifying if the bytes may be shared (in-process
// transport hands the sender's buffer to the receiver).
//
// Received bytes never reach torch::load or any other deserializer.
#pragma once

#include "sfn/core/bytes.h"
#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_shapes.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sfn {

// Envelope.version written by encode() and required by decode().
// 2: Register carries the client's data (DataInfo) or a shard request, Welcome the run's
// settings, Bye a code.
inline constexpr std::uint16_t kProtocolVersion = 2;

// --- messages -------------------------------------------------------------------------

struct LatencyEntry {
  std::string key;
  float ms = 0.0f;
};

// What a client's samples look like (schema: DataInfo).
struct DataInfo {
  std::uint32_t channels = 0;
  std::uint32_t height = 0;
  std::uint32_t width = 0;
  std::int64_t max_label = -1;
  bool operator==(const DataInfo&) const = default;
};

// Shard mode: shard `index` of `count` of the run's dataset (schema: ShardRequest).
struct ShardRequest {
  std::uint32_t index = 0;
  std::uint32_t count = 0;
  bool operator==(const ShardRequest&) const = default;
};

struct RegisterMsg {
  std::string client_name;
  std::string device_class;
  std::uint32_t cores = 0;
  std::uint64_t memory_bytes = 0;
  std::uint64_t samples = 0;          // own data; 0 in shard mode
  std::vector<LatencyEntry> latency;  // optional; empty when the device has no table
  std::optional<DataInfo> data;       // own data: required
  std::optional<ShardRequest> shard;  // shard mode only
};

// Mirror the schema's enums (same values; unknown values read as kUnknown).
enum class DatasetKind : std::uint8_t {
  kUnknown = 0,
  kFashionMnist = 1,
  kSynthetic = 2,
  kCifar10 = 3
};
enum class PartitionScheme : std::uint8_t { kUnknown = 0, kIid = 1, kDirichlet = 2, kShards = 3 };

// The [data] names of these values ("fmnist", "synthetic", "cifar10"; "iid", "dirichlet",
// "shards"); parse returns kUnknown for any other text.
std::string_view toString(DatasetKind kind);
DatasetKind parseDatasetKind(std::string_view text);
std::string_view toString(PartitionScheme scheme);
PartitionScheme parsePartitionScheme(std::string_view text);

// The server's [data] settings a shard-mode client cuts its shard with (schema: ShardSettings).
struct ShardSettings {
  DatasetKind dataset = DatasetKind::kUnknown;
  std::uint64_t seed = 0;  // of the partition
  double val_fraction = 0.0;
  PartitionScheme scheme = PartitionScheme::kUnknown;
  double alpha = 1.0;
  std::uint64_t synthetic_train = 0;
  std::uint64_t synthetic_test = 0;
  std::uint64_t samples = 0;  // the shard's size as the server computed it
  std::uint32_t shards_per_client = 2;
  std::int64_t min_samples = 10;
  std::uint64_t split_seed = 0;  // of the validation split
  bool operator==(const ShardSettings&) const = default;
};

struct WelcomeMsg {
  std::uint64_t client_id = 0;
  std::string server_name;
  std::uint16_t protocol_version = kProtocolVersion;
  std::string run_id;
  std::string design_space;  // DesignSpace::toToml() of the run's SuperNet
  std::optional<ShardSettings> shard;
};

// Mirrors the schema's RejectCode (same values).
enum class RejectCode : std::uint8_t {
  kUnspecified = 0,
  kNotRegistered = 1,
  kSampleCountOutOfRange = 2,
  kClientIdCollision = 3,
  kDataMismatch = 4,
  kProtocolMismatch = 5,
};
std::string_view toString(RejectCode code);

struct RejectMsg {
  RejectCode code = RejectCode::kUnspecified;
  std::string reason;  // human-readable, for logs
};

// TrainOptions minus the client-local device string.
struct HyperParams {
  std::int32_t epochs = 1;
  std::int32_t batch_size = 64;
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
  double clip_grad_norm = 10.0;
  std::uint64_t seed = 0;
};

struct TrainTaskMsg {
  std::uint64_t round = 0;
  std::uint64_t task_id = 0;
  std::string subnet;  // canonical SubNetConfig text
  NamedTensors tensors;
  HyperParams hyper;
  std::uint64_t deadline_ms = 0;  // relative to receipt
};

struct UpdateMsg {
  std::uint64_t round = 0;
  std::uint64_t task_id = 0;
  std::uint64_t samples = 0;
  NamedTensors tensors;
  double mean_loss = 0.0;
  double compute_seconds = 0.0;
};

struct EvalTaskMsg {
  std::uint64_t round = 0;
  std::uint64_t task_id = 0;
  std::string subnet;
  NamedTensors tensors;
};

struct EvalResultMsg {
  std::uint64_t round = 0;
  std::uint64_t task_id = 0;
  double accuracy = 0.0;
  double loss = 0.0;
  std::uint64_t samples = 0;
};

struct HeartbeatMsg {
  std::uint64_t sequence = 0;
};

// Mirrors the schema's ByeCode (same values).
enum class ByeCode : std::uint8_t { kUnspecified = 0, kFinished = 1, kStopping = 2 };
std::string_view toString(ByeCode code);

struct ByeMsg {
  std::string reason;
  ByeCode code = ByeCode::kUnspecified;
};

// Alternatives are in the order of the schema's Payload union.
using Message = std::variant<RegisterMsg, WelcomeMsg, RejectMsg, TrainTaskMsg, UpdateMsg,
                             EvalTaskMsg, EvalResultMsg, HeartbeatMsg, ByeMsg>;

// "Register", "TrainTask", ... for logs.
std::string_view messageName(const Message& message);

// --- encoding -------------------------------------------------------------------------

// Serializes one message into a new buffer (16-byte aligned, tensor data 16-byte aligned
// inside it). Tensors must be defined, on the CPU, Float32 or Int64, with non-empty names;
// non-contiguous tensors are made contiguous first (one extra copy on the sender).
// Throws ProtocolError when a message cannot be represented (bad tensor, > 2 GiB).
[[nodiscard]] BytesPtr encode(const Message& message);

// --- decoding -------------------------------------------------------------------------

enum class WireErrorCode {
  kTooSmall,        // shorter than any valid Envelope
  kTooLarge,        // above DecodeLimits::max_message_bytes
  kVerifyFailed,    // FlatBuffers verifier rejected the buffer
  kBadIdentifier,   // file identifier is not "SFN1"
  kBadVersion,      // Envelope.version != kProtocolVersion
  kUnknownPayload,  // payload missing or union type outside the known members
  kBadField,        // a string or list exceeds its limit
  kTooManyTensors,  // more tensors than DecodeLimits::max_tensors
  kBadTensorName,   // empty, too long or duplicated tensor name
  kBadDtype,        // tensor dtype not Float32/Int64
  kBadShape,        // negative dimension or too many dimensions
  kSizeOverflow,    // element count * element size overflows
  kSizeMismatch,    // data length != product(shape) * element size
  kMisaligned,      // tensor data not aligned for its element type
  kCountMismatch,   // validateTensors: wrong number of tensors
  kNameMismatch,    // validateTensors: name differs from the expected spec
  kDtypeMismatch,   // validateTensors: dtype differs from the expected spec
  kShapeMismatch,   // validateTensors: shape differs from the expected spec
  kNonFinite,       // validateTensors: NaN or infinity
};
std::string_view toString(WireErrorCode code);

struct WireError {
  WireErrorCode code;
  std::string reason;  // human-readable, for logs; names the field or tensor
};

struct DecodeLimits {
  // Must stay below FlatBuffers' 2 GiB limit; larger values are clamped.
  std::size_t max_message_bytes = std::size_t{1} << 30;
  std::uint32_t max_depth = 16;           // nesting of tables/vectors in the verifier
  std::uint32_t max_tables = 100'000;     // tables visited by the verifier
  std::uint32_t max_tensors = 4096;       // per message
  std::uint32_t max_dims = 8;             // per tensor
  std::uint32_t max_name_bytes = 256;     // tensor name / latency key
  std::uint32_t max_string_bytes = 4096;  // other strings (names, reasons, SubNet text)
  std::uint32_t max_latency_entries = 4096;
};

// Counters shared by the decoders of one node (thread-safe). decode_copies is the number
// of messages or tensors decode() had to copy instead of viewing in place; it stays 0
// when buffers arrive aligned, which encode() and both transports guarantee.
struct DecodeCounters {
  std::atomic<std::uint64_t> decoded{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> copies{0};
  std::atomic<std::uint64_t> bytes{0};
};

// Either a decoded message or the reason it was rejected.
class DecodeResult {
 public:
  DecodeResult(Message message, std::size_t copies) : value_(std::move(message)), copies_(copies) {}
  DecodeResult(WireError error) : value_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return value_.index() == 0; }
  explicit operator bool() const { return ok(); }
  // Preconditions: ok() for message(), !ok() for error() (std::bad_variant_access otherwise).
  Message& message() { return std::get<Message>(value_); }
  const Message& message() const { return std::get<Message>(value_); }
  const WireError& error() const { return std::get<WireError>(value_); }
  // Copies made while decoding this message (0 = all tensors are views of the message).
  std::size_t copies() const { return copies_; }

 private:
  std::variant<Message, WireError> value_;
  std::size_t copies_ = 0;
};

// Verifies and decodes one message; tensors are views into *bytes. If the buffer start is
// not 8-byte aligned the message is copied once (counted) so that every field can be read
// in place. Never throws on malformed input; may throw std::bad_alloc.
[[nodiscard]] DecodeResult decode(BytesPtr bytes, const DecodeLimits& limits = {},
                                  DecodeCounters* counters = nullptr);
// Same for bytes the caller owns: they are copied once (counted) into a buffer the decoded
// tensors can keep alive.
[[nodiscard]] DecodeResult decode(const std::uint8_t* data, std::size_t size,
                                  const DecodeLimits& limits = {},
                                  DecodeCounters* counters = nullptr);

// The semantic check the server runs on an update before aggregating it: `tensors` must
// list exactly the names of `expected` in the same order, with the expected shapes and
// dtypes (Float32, or Int64 for non-averaged buffers), and all float values finite.
// Returns the first violation, or nothing when the tensors are acceptable.
[[nodiscard]] std::optional<WireError> validateTensors(const NamedTensors& tensors,
                                                       const std::vector<TensorSpec>& expected);

}  // namespace sfn
