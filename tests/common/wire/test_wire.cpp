// Wire format: round trips, zero-copy decoding, and rejection of malformed messages.
#include "sfn/wire/wire.h"

#include "sfn/model/design_space.h"
#include "sfn/core/error.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/subnet_shapes.h"
#include "sfn/model/supernet.h"
#include "sfn/core/rng.h"

#include "sfn_generated.h"

#include <ATen/ATen.h>
// sfn::toString and c10::toString return string_view / const char*, which doctest would
// otherwise pick up by ADL and fail to concatenate when printing a failed comparison.
#define DOCTEST_CONFIG_DOUBLE_STRINGIFY
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

namespace fbw = sfn::wire;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;
using sfn::BytesPtr;
using sfn::DecodeResult;
using sfn::WireErrorCode;

namespace {

sfn::NamedTensors sampleTensors() {
  sfn::NamedTensors t;
  t.add("stem.conv.weight", at::randn({8, 1, 3, 3}));
  t.add("stem.bn.weight", at::rand({8}));
  t.add("stem.bn.num_batches_tracked", at::scalar_tensor(42, at::kLong));
  t.add("head.weight", at::randn({10, 8}));
  t.add("head.bias", at::zeros({10}));
  t.add("empty", at::zeros({0, 4}));
  return t;
}

bool inside(const at::Tensor& t, const sfn::Bytes& bytes) {
  const auto* p = static_cast<const std::uint8_t*>(t.data_ptr());
  return p >= bytes.data() && p + t.nbytes() <= bytes.data() + bytes.size();
}

// Checks every non-empty tensor is a view into the message and 16-byte aligned.
void checkAliases(const sfn::NamedTensors& tensors, const sfn::Bytes& bytes) {
  for (const auto& it : tensors) {
    if (it.tensor.numel() == 0) continue;
    CHECK_MESSAGE(inside(it.tensor, bytes), it.name);
    CHECK(reinterpret_cast<std::uintptr_t>(it.tensor.data_ptr()) % 16 == 0);
  }
}

// Whether decode() refuses `b`; a refusal must be for misalignment.
bool refusedAsMisaligned(const BytesPtr& b) {
  DecodeResult r = sfn::decode(b);
  if (r.ok()) return false;
  CHECK(r.error().code == WireErrorCode::kMisaligned);
  return true;
}

template <typename T>
T roundTrip(const T& msg, sfn::DecodeCounters* counters = nullptr) {
  BytesPtr bytes = sfn::encode(msg);
  DecodeResult r = sfn::decode(bytes, {}, counters);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().reason));
  CHECK(r.copies() == 0);
  T* out = std::get_if<T>(&r.message());
  REQUIRE(out != nullptr);
  if constexpr (requires { msg.tensors; }) checkAliases(out->tensors, *bytes);
  return *out;
}

BytesPtr finished(FlatBufferBuilder& fbb) {
  return std::make_shared<sfn::VectorBytes>(
      std::vector<std::uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()));
}

// An Update envelope around one hand-built tensor, for malformed-tensor cases.
BytesPtr rawUpdate(const std::function<Offset<fbw::Tensor>(FlatBufferBuilder&)>& make,
                   std::uint16_t version = sfn::kProtocolVersion) {
  FlatBufferBuilder fbb;
  const auto tensor = make(fbb);
  const auto list = fbb.CreateVector(&tensor, 1);
  const auto update = fbw::CreateUpdate(fbb, 1, 2, 3, list, 0.5, 0.1);
  fbw::FinishEnvelopeBuffer(
      fbb, fbw::CreateEnvelope(fbb, version, fbw::Payload::Update, update.Union()));
  return finished(fbb);
}

Offset<fbw::Tensor> floatTensor(FlatBufferBuilder& fbb, const char* name,
                                std::vector<std::int64_t> shape, std::size_t nbytes,
                                fbw::DType dtype = fbw::DType::Float32) {
  std::vector<std::uint8_t> data(nbytes, 0);
  return fbw::CreateTensorDirect(fbb, name, dtype, &shape, &data);
}

WireErrorCode codeOf(const DecodeResult& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().code;
}

// Why decode() under `limits` refuses an Update of sampleTensors(); it must refuse it.
WireErrorCode sampleUpdateRefusal(const sfn::DecodeLimits& limits) {
  sfn::UpdateMsg m;
  m.tensors = sampleTensors();
  return codeOf(sfn::decode(sfn::encode(m), limits));
}

// A Bytes that reports when it is destroyed, to observe lifetimes.
class TrackedBytes final : public sfn::Bytes {
 public:
  TrackedBytes(BytesPtr inner, bool* destroyed) : inner_(std::move(inner)), destroyed_(destroyed) {}
  ~TrackedBytes() override { *destroyed_ = true; }
  const std::uint8_t* data() const override { return inner_->data(); }
  std::size_t size() const override { return inner_->size(); }

 private:
  BytesPtr inner_;
  bool* destroyed_;
};

// A view of someone else's bytes at an offset, to simulate a misaligned receive buffer.
class OffsetBytes final : public sfn::Bytes {
 public:
  OffsetBytes(std::vector<std::uint8_t> storage, std::size_t offset)
      : storage_(std::move(storage)), offset_(offset) {}
  const std::uint8_t* data() const override { return storage_.data() + offset_; }
  std::size_t size() const override { return storage_.size() - offset_; }

 private:
  std::vector<std::uint8_t> storage_;
  std::size_t offset_;
};

// After a test's round trips: something was decoded, all of it in place, none refused.
void checkZeroCopyDecodes(const sfn::DecodeCounters& counters) {
  CHECK(counters.decoded.load() >= 1);
  CHECK(counters.copies.load() == 0);
  CHECK(counters.rejected.load() == 0);
}

// Whether an Update around the tensor `make` builds is refused as misaligned for some
// padding of 0, 4, 8 or 12 bytes written before it: FlatBuffers aligns vectors to 4 bytes
// only, so one of the shifts puts an 8-byte field off its alignment.
bool somePaddingMisaligns(const std::function<Offset<fbw::Tensor>(FlatBufferBuilder&)>& make) {
  for (int pad = 0; pad < 4; ++pad) {
    BytesPtr b = rawUpdate([&make, pad](FlatBufferBuilder& fbb) {
      fbb.CreateVector(std::vector<std::uint8_t>(static_cast<std::size_t>(4 * pad), 0));
      return make(fbb);
    });
    if (refusedAsMisaligned(b)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("wire: enum names are the [data] names") {
  CHECK(sfn::toString(sfn::DatasetKind::kFashionMnist) == "fmnist");
  CHECK((sfn::parseDatasetKind("cifar10") == sfn::DatasetKind::kCifar10));
  CHECK((sfn::parseDatasetKind("mnist") == sfn::DatasetKind::kUnknown));
  CHECK((sfn::parsePartitionScheme("dirichlet") == sfn::PartitionScheme::kDirichlet));
  CHECK(sfn::toString(sfn::PartitionScheme::kShards) == "shards");
  CHECK(sfn::toString(sfn::ByeCode::kStopping) == "stopping");
}

TEST_CASE("wire: Welcome round-trips with the run's settings") {
  sfn::DecodeCounters counters;

  SUBCASE("Welcome") {
    sfn::WelcomeMsg w;
    w.client_id = 99;
    w.server_name = "server-a";
    w.run_id = "run-1";
    w.design_space = "name = \"tiny\"\nin_channels = 1\n";
    auto out = roundTrip(w, &counters);
    CHECK(out.client_id == 99);
    CHECK(out.server_name == "server-a");
    CHECK(out.protocol_version == sfn::kProtocolVersion);
    CHECK(out.run_id == "run-1");
    CHECK(out.design_space == w.design_space);
    CHECK_FALSE(out.shard.has_value());
  }
  SUBCASE("Welcome with shard settings") {
    sfn::WelcomeMsg w;
    w.design_space = "name = \"tiny\"\n";
    sfn::ShardSettings s;
    s.dataset = sfn::DatasetKind::kFashionMnist;
    s.seed = 5;
    s.split_seed = 6;
    s.val_fraction = 0.1;
    s.scheme = sfn::PartitionScheme::kDirichlet;
    s.alpha = 0.3;
    s.synthetic_train = 11;
    s.synthetic_test = 12;
    s.samples = 541;
    s.shards_per_client = 3;
    s.min_samples = 7;
    w.shard = s;
    const auto out = roundTrip(w, &counters);
    REQUIRE(out.shard.has_value());
    CHECK(*out.shard == s);
  }

  checkZeroCopyDecodes(counters);
}

TEST_CASE("wire: handshake and control messages round-trip") {
  sfn::DecodeCounters counters;

  SUBCASE("Register") {
    sfn::RegisterMsg m{"client-7",
                       "rpi4",
                       4,
                       4ull << 30,
                       1234,
                       {{"stage0.block0", 1.5f}, {"head", 0.25f}},
                       sfn::DataInfo{3, 32, 30, 9},
                       std::nullopt};
    auto out = roundTrip(m, &counters);
    REQUIRE(out.data.has_value());
    CHECK(*out.data == sfn::DataInfo{3, 32, 30, 9});
    CHECK_FALSE(out.shard.has_value());
    CHECK(out.client_name == m.client_name);
    CHECK(out.device_class == m.device_class);
    CHECK(out.cores == 4);
    CHECK(out.memory_bytes == m.memory_bytes);
    CHECK(out.samples == 1234);
    REQUIRE(out.latency.size() == 2);
    CHECK(out.latency[0].key == "stage0.block0");
    CHECK(out.latency[1].ms == 0.25f);
    sfn::RegisterMsg shard;
    shard.client_name = "c";
    shard.shard = sfn::ShardRequest{7, 100};
    auto no_table = roundTrip(shard);
    CHECK(no_table.latency.empty());
    CHECK_FALSE(no_table.data.has_value());
    REQUIRE(no_table.shard.has_value());
    CHECK(*no_table.shard == sfn::ShardRequest{7, 100});
  }
  SUBCASE("Reject") {
    const auto out =
        roundTrip(sfn::RejectMsg{sfn::RejectCode::kDataMismatch, "not allowed"}, &counters);
    CHECK(out.reason == "not allowed");
    CHECK(out.code == sfn::RejectCode::kDataMismatch);
  }
  SUBCASE("Heartbeat") {
    CHECK(roundTrip(sfn::HeartbeatMsg{123456789}, &counters).sequence == 123456789);
  }
  SUBCASE("Bye") {
    const auto out = roundTrip(sfn::ByeMsg{"shutdown", sfn::ByeCode::kFinished}, &counters);
    CHECK(out.reason == "shutdown");
    CHECK((out.code == sfn::ByeCode::kFinished));
    CHECK((roundTrip(sfn::ByeMsg{"x"}, &counters).code == sfn::ByeCode::kUnspecified));
  }

  checkZeroCopyDecodes(counters);
}

TEST_CASE("wire: task and result messages round-trip") {
  sfn::DecodeCounters counters;

  SUBCASE("TrainTask") {
    sfn::TrainTaskMsg m;
    m.round = 12;
    m.task_id = 345;
    m.subnet = "d=2-1-0-2;e=0.25-0.1-0.14";
    m.tensors = sampleTensors();
    m.hyper = sfn::HyperParams{3, 32, 0.05, 0.9, 1e-4, 1.0, 777};
    m.deadline_ms = 60'000;
    auto out = roundTrip(m, &counters);
    CHECK(out.round == 12);
    CHECK(out.task_id == 345);
    CHECK(out.subnet == m.subnet);
    CHECK(out.deadline_ms == 60'000);
    CHECK(out.hyper.epochs == 3);
    CHECK(out.hyper.batch_size == 32);
    CHECK(out.hyper.lr == 0.05);
    CHECK(out.hyper.momentum == 0.9);
    CHECK(out.hyper.weight_decay == 1e-4);
    CHECK(out.hyper.clip_grad_norm == 1.0);
    CHECK(out.hyper.seed == 777);
    CHECK(out.tensors.bitEqual(m.tensors));
    CHECK(out.tensors[2].tensor.scalar_type() == at::kLong);
    CHECK(out.tensors[2].tensor.dim() == 0);
  }
  SUBCASE("Update") {
    sfn::UpdateMsg m{5, 6, 600, sampleTensors(), 1.25, 3.5};
    auto out = roundTrip(m, &counters);
    CHECK(out.round == 5);
    CHECK(out.task_id == 6);
    CHECK(out.samples == 600);
    CHECK(out.mean_loss == 1.25);
    CHECK(out.compute_seconds == 3.5);
    CHECK(out.tensors.bitEqual(m.tensors));
  }
  SUBCASE("EvalTask") {
    sfn::EvalTaskMsg m{7, 8, "d=0-0-0-0;e=0.1", sampleTensors()};
    auto out = roundTrip(m, &counters);
    CHECK(out.subnet == m.subnet);
    CHECK(out.tensors.bitEqual(m.tensors));
  }
  SUBCASE("EvalResult") {
    auto out = roundTrip(sfn::EvalResultMsg{9, 10, 0.875, 0.33, 5000}, &counters);
    CHECK(out.round == 9);
    CHECK(out.task_id == 10);
    CHECK(out.accuracy == 0.875);
    CHECK(out.loss == 0.33);
    CHECK(out.samples == 5000);
  }

  checkZeroCopyDecodes(counters);
}

TEST_CASE("wire: messageName") {
  CHECK(sfn::messageName(sfn::HeartbeatMsg{}) == "Heartbeat");
  CHECK(sfn::messageName(sfn::TrainTaskMsg{}) == "TrainTask");
}

TEST_CASE("wire: decoded tensors keep the message alive") {
  bool destroyed = false;
  at::Tensor kept;
  const at::Tensor original = at::randn({64});
  {
    sfn::UpdateMsg m;
    m.tensors.add("w", original);
    auto bytes = std::make_shared<TrackedBytes>(sfn::encode(m), &destroyed);
    DecodeResult r = sfn::decode(bytes);
    REQUIRE(r.ok());
    kept = std::get<sfn::UpdateMsg>(r.message()).tensors[0].tensor;
  }
  CHECK_FALSE(destroyed);  // the view still refers to the message
  CHECK(at::equal(kept, original));
  kept = at::Tensor();
  CHECK(destroyed);
}

// encode() writes strided views straight into the message (no contiguous() copy first);
// the bytes must be exactly those of encoding contiguous copies.
TEST_CASE("wire: a strided slice encodes to the same bytes as its contiguous copy") {
  const at::Tensor conv = at::randn({16, 12, 3, 3});
  const at::Tensor longs = at::arange(60, at::kLong).reshape({6, 10});
  sfn::NamedTensors views;
  views.add("prefix_box", conv.slice(0, 0, 10).slice(1, 0, 5));  // a SuperNet slice
  views.add("inner_prefix", conv.slice(1, 0, 7));
  views.add("stepped", conv.slice(0, 1, 16, 3));
  views.add("transposed", at::randn({5, 7}).t());
  views.add("broadcast", at::randn({3, 1}).expand({3, 4}));
  views.add("size_one_dims", conv.slice(0, 2, 3).slice(1, 4, 5).slice(3, 0, 2));
  views.add("int64_columns", longs.slice(1, 2, 8));
  views.add("scalar_view", conv[1][2][0][1]);
  views.add("empty_view", conv.slice(0, 0, 0));
  sfn::NamedTensors copies;
  for (const auto& it : views) {
    if (it.name != "empty_view" && it.name != "scalar_view")
      REQUIRE_FALSE(it.tensor.is_contiguous());
    copies.add(it.name, it.tensor.contiguous());
  }
  sfn::UpdateMsg a;
  a.tensors = views;
  sfn::UpdateMsg b;
  b.tensors = copies;
  const BytesPtr strided = sfn::encode(a);
  const BytesPtr contiguous = sfn::encode(b);
  REQUIRE(strided->size() == contiguous->size());
  CHECK(std::memcmp(strided->data(), contiguous->data(), strided->size()) == 0);
  DecodeResult r = sfn::decode(strided);
  REQUIRE(r.ok());
  CHECK(std::get<sfn::UpdateMsg>(r.message()).tensors.bitEqual(copies));
}

TEST_CASE("wire: SuperNet slice views of random SubNets encode like their copies") {
  const sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  const sfn::SuperNet net(space, 3);
  sfn::Rng rng(7, 0, 0);
  for (int i = 0; i < 10; ++i) {
    const sfn::SubNetConfig config = sfn::SubNetConfig::random(space, rng);
    sfn::TrainTaskMsg views;
    views.subnet = config.toString(space);
    views.tensors = net.sliceViews(config);
    sfn::TrainTaskMsg copies = views;
    copies.tensors = views.tensors.clone();
    const BytesPtr a = sfn::encode(views);
    const BytesPtr b = sfn::encode(copies);
    REQUIRE(a->size() == b->size());
    CHECK_MESSAGE(std::memcmp(a->data(), b->data(), a->size()) == 0, views.subnet);
  }
}

TEST_CASE("wire: copies are counted when the buffer cannot be viewed in place") {
  sfn::UpdateMsg m;
  m.tensors.add("w", at::randn({16}));
  BytesPtr bytes = sfn::encode(m);
  sfn::DecodeCounters counters;

  SUBCASE("caller-owned pointer") {
    DecodeResult r = sfn::decode(bytes->data(), bytes->size(), {}, &counters);
    REQUIRE(r.ok());
    CHECK(r.copies() == 1);
    CHECK(std::get<sfn::UpdateMsg>(r.message()).tensors.bitEqual(m.tensors));
  }
  SUBCASE("misaligned receive buffer") {
    std::vector<std::uint8_t> storage(bytes->size() + 1);
    std::memcpy(storage.data() + 1, bytes->data(), bytes->size());
    DecodeResult r =
        sfn::decode(std::make_shared<OffsetBytes>(std::move(storage), 1), {}, &counters);
    REQUIRE(r.ok());
    CHECK(r.copies() == 1);
    CHECK(std::get<sfn::UpdateMsg>(r.message()).tensors.bitEqual(m.tensors));
  }
  CHECK(counters.copies.load() == 1);
}

TEST_CASE("wire: encode refuses tensors the wire cannot carry") {
  auto encodeWith = [](const std::string& name, const at::Tensor& t) {
    sfn::UpdateMsg m;
    m.tensors.add(name, t);
    return sfn::encode(m);
  };
  CHECK_THROWS_AS((void)encodeWith("w", at::zeros({2}, at::kDouble)), sfn::ProtocolError);
  CHECK_THROWS_AS((void)encodeWith("w", at::Tensor()), sfn::ProtocolError);
  CHECK_THROWS_AS((void)encodeWith("", at::zeros({2})), sfn::ProtocolError);
  // Non-contiguous input is accepted and arrives contiguous with the same values.
  const at::Tensor t = at::randn({4, 3}).t();
  sfn::DecodeResult r = sfn::decode(encodeWith("w", t));
  REQUIRE(r.ok());
  CHECK(at::equal(std::get<sfn::UpdateMsg>(r.message()).tensors[0].tensor, t));
}

TEST_CASE("wire: garbage, short, large and misnamed buffers are rejected") {
  const BytesPtr valid = sfn::encode(sfn::HeartbeatMsg{1});
  std::vector<std::uint8_t> bytes(valid->data(), valid->data() + valid->size());
  sfn::DecodeCounters counters;

  SUBCASE("garbage") {
    std::vector<std::uint8_t> garbage(64, 0xab);
    CHECK(codeOf(sfn::decode(garbage.data(), garbage.size(), {}, &counters)) ==
          WireErrorCode::kVerifyFailed);
  }
  SUBCASE("empty and tiny") {
    CHECK(codeOf(sfn::decode(nullptr, 0)) == WireErrorCode::kTooSmall);
    CHECK(codeOf(sfn::decode(BytesPtr())) == WireErrorCode::kTooSmall);
    CHECK(codeOf(sfn::decode(bytes.data(), 4)) == WireErrorCode::kTooSmall);
  }
  SUBCASE("truncated") {
    CHECK(codeOf(sfn::decode(bytes.data(), bytes.size() / 2)) == WireErrorCode::kVerifyFailed);
    sfn::TrainTaskMsg big;
    big.tensors = sampleTensors();
    const BytesPtr task = sfn::encode(big);
    CHECK(codeOf(sfn::decode(task->data(), task->size() - 100)) == WireErrorCode::kVerifyFailed);
  }
  SUBCASE("too large") {
    sfn::DecodeLimits limits;
    limits.max_message_bytes = bytes.size() - 1;
    CHECK(codeOf(sfn::decode(valid, limits)) == WireErrorCode::kTooLarge);
  }
  SUBCASE("wrong file identifier") {
    std::memcpy(bytes.data() + 4, "XXXX", 4);
    CHECK(codeOf(sfn::decode(bytes.data(), bytes.size())) == WireErrorCode::kBadIdentifier);
  }
  CHECK(counters.decoded.load() == 0);
}

TEST_CASE("wire: envelopes with a bad version or payload are rejected") {
  const BytesPtr valid = sfn::encode(sfn::HeartbeatMsg{1});
  std::vector<std::uint8_t> bytes(valid->data(), valid->data() + valid->size());

  SUBCASE("wrong version") {
    FlatBufferBuilder fbb;
    const auto hb = fbw::CreateHeartbeat(fbb, 1);
    fbw::FinishEnvelopeBuffer(fbb, fbw::CreateEnvelope(fbb, sfn::kProtocolVersion + 1,
                                                       fbw::Payload::Heartbeat, hb.Union()));
    CHECK(codeOf(sfn::decode(finished(fbb))) == WireErrorCode::kBadVersion);
  }
  SUBCASE("unknown union member") {
    FlatBufferBuilder fbb;
    const auto hb = fbw::CreateHeartbeat(fbb, 1);
    fbw::FinishEnvelopeBuffer(fbb, fbw::CreateEnvelope(fbb, sfn::kProtocolVersion,
                                                       static_cast<fbw::Payload>(42), hb.Union()));
    CHECK(codeOf(sfn::decode(finished(fbb))) == WireErrorCode::kUnknownPayload);
  }
  SUBCASE("patched union type byte") {
    // Find the byte holding Payload::Heartbeat by decoding with each candidate patched.
    bool patched = false;
    for (std::size_t i = 8; i < bytes.size() && !patched; ++i) {
      if (bytes[i] != static_cast<std::uint8_t>(fbw::Payload::Heartbeat)) continue;
      auto copy = bytes;
      copy[i] = 200;
      DecodeResult r = sfn::decode(copy.data(), copy.size());
      if (!r.ok() && r.error().code == WireErrorCode::kUnknownPayload) patched = true;
    }
    CHECK(patched);
  }
  SUBCASE("no payload") {
    FlatBufferBuilder fbb;
    fbw::EnvelopeBuilder env(fbb);
    env.add_version(sfn::kProtocolVersion);
    fbw::FinishEnvelopeBuffer(fbb, env.Finish());
    CHECK(codeOf(sfn::decode(finished(fbb))) == WireErrorCode::kUnknownPayload);
  }
}

TEST_CASE("wire: missing fields and exceeded limits are rejected") {
  SUBCASE("TrainTask without hyper-parameters") {
    FlatBufferBuilder fbb;
    const auto task = fbw::CreateTrainTaskDirect(fbb, 1, 2, "d=0", nullptr, 0, 1000);
    fbw::FinishEnvelopeBuffer(fbb, fbw::CreateEnvelope(fbb, sfn::kProtocolVersion,
                                                       fbw::Payload::TrainTask, task.Union()));
    CHECK(codeOf(sfn::decode(finished(fbb))) == WireErrorCode::kBadField);
  }
  SUBCASE("string over its limit") {
    sfn::DecodeLimits limits;
    limits.max_string_bytes = 8;
    CHECK(codeOf(sfn::decode(sfn::encode(sfn::ByeMsg{"a reason longer than 8"}), limits)) ==
          WireErrorCode::kBadField);
  }
  SUBCASE("verifier depth and table limits") {
    sfn::DecodeLimits limits;
    limits.max_tables = 2;
    CHECK(sampleUpdateRefusal(limits) == WireErrorCode::kVerifyFailed);
    limits = {};
    limits.max_depth = 2;
    CHECK(sampleUpdateRefusal(limits) == WireErrorCode::kVerifyFailed);
  }
}

TEST_CASE("wire: tensors with a bad shape or size are rejected") {
  SUBCASE("data length does not match shape") {
    auto r = sfn::decode(rawUpdate([](auto& fbb) { return floatTensor(fbb, "w", {2, 3}, 20); }));
    CHECK(codeOf(r) == WireErrorCode::kSizeMismatch);
  }
  SUBCASE("missing data for a non-empty shape") {
    auto r = sfn::decode(rawUpdate([](FlatBufferBuilder& fbb) {
      std::vector<std::int64_t> shape{4};
      return fbw::CreateTensorDirect(fbb, "w", fbw::DType::Float32, &shape, nullptr);
    }));
    CHECK(codeOf(r) == WireErrorCode::kSizeMismatch);
  }
  SUBCASE("negative dimension") {
    auto r = sfn::decode(rawUpdate([](auto& fbb) { return floatTensor(fbb, "w", {-1, 4}, 16); }));
    CHECK(codeOf(r) == WireErrorCode::kBadShape);
  }
  SUBCASE("too many dimensions") {
    auto r = sfn::decode(rawUpdate(
        [](auto& fbb) { return floatTensor(fbb, "w", std::vector<std::int64_t>(9, 1), 4); }));
    CHECK(codeOf(r) == WireErrorCode::kBadShape);
  }
  SUBCASE("huge dimensions overflow") {
    auto r = sfn::decode(rawUpdate([](auto& fbb) {
      return floatTensor(fbb, "w", {std::int64_t{1} << 40, std::int64_t{1} << 40}, 16);
    }));
    CHECK(codeOf(r) == WireErrorCode::kSizeOverflow);
    auto r2 = sfn::decode(rawUpdate([](auto& fbb) {
      return floatTensor(fbb, "w", {std::numeric_limits<std::int64_t>::max()}, 16);
    }));
    CHECK(codeOf(r2) == WireErrorCode::kSizeOverflow);
  }
}

TEST_CASE("wire: tensors with a bad dtype, name or count are rejected") {
  SUBCASE("unknown dtype") {
    auto r = sfn::decode(rawUpdate(
        [](auto& fbb) { return floatTensor(fbb, "w", {2}, 8, static_cast<fbw::DType>(99)); }));
    CHECK(codeOf(r) == WireErrorCode::kBadDtype);
    auto r0 = sfn::decode(
        rawUpdate([](auto& fbb) { return floatTensor(fbb, "w", {2}, 8, fbw::DType::Unknown); }));
    CHECK(codeOf(r0) == WireErrorCode::kBadDtype);
  }
  SUBCASE("empty name") {
    auto r = sfn::decode(rawUpdate([](auto& fbb) { return floatTensor(fbb, "", {2}, 8); }));
    CHECK(codeOf(r) == WireErrorCode::kBadTensorName);
  }
  SUBCASE("duplicate names") {
    sfn::UpdateMsg m;
    m.tensors.add("w", at::zeros({2}));
    m.tensors.add("w", at::zeros({2}));
    CHECK(codeOf(sfn::decode(sfn::encode(m))) == WireErrorCode::kBadTensorName);
  }
  SUBCASE("too many tensors") {
    sfn::DecodeLimits limits;
    limits.max_tensors = 1;
    CHECK(sampleUpdateRefusal(limits) == WireErrorCode::kTooManyTensors);
  }
}

TEST_CASE("wire: misaligned tensor fields are rejected") {
  SUBCASE("misaligned shape vector") {
    // An int64 vector written as pairs of uint32s is only 4-aligned, which the FlatBuffers
    // verifier does not notice; shift it until it lands off an 8-byte boundary.
    CHECK(somePaddingMisaligns([](FlatBufferBuilder& fbb) {
      fbb.StartVector(2, sizeof(std::uint32_t));
      fbb.PushElement<std::uint32_t>(0);
      fbb.PushElement<std::uint32_t>(0);
      const Offset<flatbuffers::Vector<std::int64_t>> shape(fbb.EndVector(1));
      return fbw::CreateTensor(fbb, fbb.CreateString("s"), fbw::DType::Float32, shape, 0);
    }));
  }
  SUBCASE("misaligned tensor data") {
    // Without forced alignment a byte vector is only 4-aligned; shift it with padding until
    // an Int64 payload lands on an address that is not a multiple of 8.
    CHECK(somePaddingMisaligns([](FlatBufferBuilder& fbb) {
      const auto data = fbb.CreateVector(std::vector<std::uint8_t>(8, 0));
      const auto shape = fbb.CreateVector(std::vector<std::int64_t>{1});
      return fbw::CreateTensor(fbb, fbb.CreateString("n"), fbw::DType::Int64, shape, data);
    }));
  }
}

namespace {

// The expected slice for the validateTensors cases, and a valid update for it.
std::vector<sfn::TensorSpec> validationSpec() {
  return {
      {"conv.weight", {4, 2, 3, 3}, true},
      {"bn.num_batches_tracked", {}, false},
      {"head.weight", {10, 4}, true},
  };
}

sfn::NamedTensors validSlice() {
  sfn::NamedTensors t;
  t.add("conv.weight", at::randn({4, 2, 3, 3}));
  t.add("bn.num_batches_tracked", at::scalar_tensor(3, at::kLong));
  t.add("head.weight", at::randn({10, 4}));
  return t;
}

// Through the wire, as the server sees it.
sfn::NamedTensors throughWire(sfn::NamedTensors t) {
  sfn::UpdateMsg m;
  m.tensors = std::move(t);
  DecodeResult r = sfn::decode(sfn::encode(m));
  REQUIRE(r.ok());
  return std::get<sfn::UpdateMsg>(r.message()).tensors;
}

// The code validateTensors refuses `t` with; it must refuse it.
WireErrorCode validationCode(const sfn::NamedTensors& t) {
  auto err = sfn::validateTensors(t, validationSpec());
  REQUIRE(err.has_value());
  return err->code;
}

}  // namespace

TEST_CASE("wire: validateTensors checks an update against its expected slice") {
  CHECK_FALSE(sfn::validateTensors(throughWire(validSlice()), validationSpec()).has_value());

  SUBCASE("NaN") {
    auto t = validSlice();
    t[2].tensor[3][1] = std::numeric_limits<float>::quiet_NaN();
    CHECK(validationCode(throughWire(t)) == WireErrorCode::kNonFinite);
  }
  SUBCASE("infinity") {
    auto t = validSlice();
    t[0].tensor[0][0][0][0] = -std::numeric_limits<float>::infinity();
    CHECK(validationCode(throughWire(t)) == WireErrorCode::kNonFinite);
  }
  SUBCASE("wrong shape") {
    sfn::NamedTensors t;
    t.add("conv.weight", at::randn({4, 2, 3, 3}));
    t.add("bn.num_batches_tracked", at::scalar_tensor(3, at::kLong));
    t.add("head.weight", at::randn({10, 5}));
    CHECK(validationCode(throughWire(t)) == WireErrorCode::kShapeMismatch);
  }
  SUBCASE("wrong name") {
    auto t = validSlice();
    t[1].name = "bn.running_mean";
    CHECK(validationCode(throughWire(t)) == WireErrorCode::kNameMismatch);
  }
  SUBCASE("wrong dtype") {
    auto t = validSlice();
    t[1].tensor = at::scalar_tensor(3.0, at::kFloat);
    CHECK(validationCode(throughWire(t)) == WireErrorCode::kDtypeMismatch);
  }
  SUBCASE("wrong count") {
    auto t = validSlice();
    t.add("extra", at::zeros({1}));
    CHECK(validationCode(throughWire(t)) == WireErrorCode::kCountMismatch);
  }
}

TEST_CASE("wire: a real SubNet slice passes validation after a round trip") {
  const sfn::DesignSpace space = sfn::DesignSpace::preset("tiny");
  const sfn::SubNetConfig config = sfn::SubNetConfig::minNet(space);
  const std::vector<sfn::TensorSpec> spec = sfn::sliceSpec(space, config);
  sfn::UpdateMsg m;
  for (const auto& s : spec)
    m.tensors.add(s.name, s.averaged ? at::randn(s.shape) : at::zeros(s.shape, at::kLong));
  DecodeResult r = sfn::decode(sfn::encode(m));
  REQUIRE(r.ok());
  CHECK_FALSE(
      sfn::validateTensors(std::get<sfn::UpdateMsg>(r.message()).tensors, spec).has_value());
}

TEST_CASE("wire: random corruption never crashes the decoder") {
  sfn::TrainTaskMsg m;
  m.subnet = "d=1-1-1-1;e=0.25";
  m.tensors = sampleTensors();
  const BytesPtr valid = sfn::encode(m);
  std::mt19937_64 rng(20240607);
  std::uniform_int_distribution<std::size_t> pos(0, valid->size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> flips(1, 8);
  sfn::DecodeCounters counters;
  int accepted = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<std::uint8_t> b(valid->data(), valid->data() + valid->size());
    // Small mutations stay near the header and tables; an occasional truncation too.
    const int n = flips(rng);
    for (int i = 0; i < n; ++i) {
      const std::size_t at = iter % 2 == 0 ? pos(rng) % 256 : pos(rng);
      b[at] = static_cast<std::uint8_t>(byte(rng));
    }
    if (iter % 17 == 0) b.resize(pos(rng));
    DecodeResult r = sfn::decode(std::make_shared<sfn::VectorBytes>(std::move(b)), {}, &counters);
    if (r.ok()) {
      ++accepted;
      // Whatever was accepted must be safe to read in full.
      if (auto* task = std::get_if<sfn::TrainTaskMsg>(&r.message()))
        for (const auto& t : task->tensors) (void)t.tensor.sum().item<double>();
    }
  }
  CHECK(counters.decoded.load() + counters.rejected.load() == 4000);
  CHECK(counters.rejected.load() > 0);
  MESSAGE("fuzz: accepted " << accepted << " of 4000 mutated messages");
}
