// bench_wire: TrainTask + Update round trip of a MaxNet-sized payload over tcp loopback.
//
// sfn side: the server encodes a TrainTask holding the MaxNet slice (views into the
// SuperNet), sends it with ZmqServerTransport; the client (a second thread) receives it with
// ZmqClientTransport, decodes it (zero-copy views), encodes an Update of the decoded tensors
// and sends it back; the server receives and decodes it. Measured with CURVE off (insecure)
// and on.
//
// Baseline: raw cppzmq ROUTER/DEALER in the same process, one context per side like the sfn
// variants, the same byte count each way, each side copying its payload into a fresh
// zmq::message_t per send (the idiomatic socket.send(zmq::buffer(...))), which matches the
// one copy encode() makes; the raw client echoes what it received, as the sfn client
// re-encodes the tensors it received.
//
// Throughput counts the tensor payload bytes in both directions. Every variant runs
// --repeats repetitions of at least --min-seconds each, interleaved variant by variant so
// that load from other processes hits all of them alike; the best repetition is kept (noise
// only ever slows a repetition down), the median is reported too. CPU milliseconds per round
// trip (all threads) and the codec alone (encode/decode vs memcpy, one thread, no sockets)
// show where a gap comes from.
//
// Output: one flat JSON object on stdout (and in --json PATH).
#include "sfn/core/error.h"
#include "sfn/model/subnet_config.h"
#include "sfn/model/supernet.h"
#include "sfn/wire/wire.h"
#include "sfn/net/zmq_transport.h"

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct BenchOptions {
  std::string preset = "fmnist";
  int repeats = 5;
  double min_seconds = 0.5;
  int warmup = 20;
  std::string variants = "raw,plain,curve";
  std::string json;
};

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Repetition {
  int iterations = 0;
  double seconds = 0.0;
};

// One measured configuration: a server side on the calling thread and a peer thread.
class Variant {
 public:
  virtual ~Variant() = default;
  // Runs round trips until `min_seconds` have passed (at least `min_iterations`).
  Repetition run(double min_seconds, int min_iterations) {
    Repetition r;
    const auto t0 = Clock::now();
    while (r.iterations < min_iterations || secondsSince(t0) < min_seconds) {
      roundTrip();
      ++r.iterations;
    }
    r.seconds = secondsSince(t0);
    afterRun();
    return r;
  }

 protected:
  virtual void roundTrip() = 0;
  virtual void afterRun() {}  // e.g. rethrow what the peer thread failed with
};

// --- sfn transports -------------------------------------------------------------------

class SfnVariant final : public Variant {
 public:
  SfnVariant(const sfn::SuperNet& net, bool curve, sfn::DecodeCounters& server_counters,
             sfn::DecodeCounters& client_counters)
      : server_counters_(server_counters), client_counters_(client_counters) {
    task_.round = 1;
    task_.subnet = sfn::SubNetConfig::maxNet(net.space()).toString(net.space());
    task_.tensors = net.sliceViews(sfn::SubNetConfig::maxNet(net.space()));
    sfn::ZmqServerOptions so;
    sfn::ZmqClientOptions co;
    so.insecure = !curve;
    co.insecure = !curve;
    if (curve) {
      so.server_keys = sfn::generateCurveKeyPair();
      co.client_keys = sfn::generateCurveKeyPair();
      so.allowed_client_keys = {co.client_keys.public_key};
      co.server_public_key = so.server_keys.public_key;
    }
    server_ = sfn::makeZmqServer(so);
    co.server_endpoint = server_->endpoint();
    client_thread_ = std::thread([this, co] { clientLoop(co); });
    // The client announces itself so the server learns its (authenticated) peer id.
    auto hello = server_->recv(20s);
    SFN_ENFORCE(hello.has_value(), sfn::Error, "bench_wire: client never connected");
    peer_ = hello->peer;
  }

  ~SfnVariant() override {
    (void)server_->send(peer_, sfn::encode(sfn::ByeMsg{"done"}));
    stop_ = true;
    client_thread_.join();
  }

  SfnVariant(const SfnVariant&) = delete;
  SfnVariant& operator=(const SfnVariant&) = delete;

 private:
  void afterRun() override { rethrowClientError(); }

  void roundTrip() override {
    task_.task_id = ++task_id_;
    const sfn::SendResult sent = server_->send(peer_, sfn::encode(task_));
    SFN_ENFORCE(sent.ok(), sfn::Error, "bench_wire: server send: ", sent.reason);
    auto got = server_->recv(20s);
    if (!got) rethrowClientError();
    SFN_ENFORCE(got.has_value(), sfn::Error, "bench_wire: no update within 20 s");
    sfn::DecodeResult decoded = sfn::decode(std::move(got->message), {}, &server_counters_);
    SFN_ENFORCE(decoded.ok(), sfn::Error, "bench_wire: bad update: ", decoded.error().reason);
    const auto* update = std::get_if<sfn::UpdateMsg>(&decoded.message());
    SFN_ENFORCE(update != nullptr && update->task_id == task_id_, sfn::Error,
                "bench_wire: unexpected reply");
  }

  void clientLoop(const sfn::ZmqClientOptions& co) {
    try {
      auto client = sfn::makeZmqClient(co);
      sfn::RegisterMsg reg;
      reg.client_name = "bench";
      SFN_ENFORCE(client->send(sfn::encode(reg)).ok(), sfn::Error, "bench_wire: register");
      while (!stop_) {
        auto bytes = client->recv(100ms);
        if (!bytes) continue;
        sfn::DecodeResult decoded = sfn::decode(std::move(*bytes), {}, &client_counters_);
        SFN_ENFORCE(decoded.ok(), sfn::Error, "bench_wire: bad task: ", decoded.error().reason);
        auto* task = std::get_if<sfn::TrainTaskMsg>(&decoded.message());
        if (task == nullptr) break;  // Bye
        sfn::UpdateMsg update;
        update.round = task->round;
        update.task_id = task->task_id;
        update.samples = 1;
        update.tensors = std::move(task->tensors);  // views into the received message
        const sfn::SendResult sent = client->send(sfn::encode(update));
        SFN_ENFORCE(sent.ok(), sfn::Error, "bench_wire: client send: ", sent.reason);
      }
    } catch (...) {
      client_error_ = std::current_exception();
      failed_ = true;
    }
  }

  void rethrowClientError() {
    if (failed_) std::rethrow_exception(client_error_);
  }

  sfn::DecodeCounters& server_counters_;
  sfn::DecodeCounters& client_counters_;
  sfn::TrainTaskMsg task_;
  std::uint64_t task_id_ = 0;
  std::unique_ptr<sfn::ZmqServerTransport> server_;
  sfn::PeerId peer_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::exception_ptr client_error_;  // written before failed_ is set
  std::thread client_thread_;
};

// --- raw cppzmq -----------------------------------------------------------------------

class RawVariant final : public Variant {
 public:
  explicit RawVariant(std::size_t payload_bytes)
      : server_buf_(payload_bytes, 1), router_(context_, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    const std::string endpoint = router_.get(zmq::sockopt::last_endpoint);
    client_thread_ = std::thread([this, endpoint] { clientLoop(endpoint); });
    zmq::message_t hello;
    SFN_ENFORCE(recvWithin(router_, routing_id_, 20s) && routing_id_.more() &&
                    router_.recv(hello, zmq::recv_flags::none),
                sfn::Error, "bench_wire: raw client never connected");
  }

  ~RawVariant() override {
    sendToClient(zmq::message_t());  // empty frame: stop
    client_thread_.join();
  }

  RawVariant(const RawVariant&) = delete;
  RawVariant& operator=(const RawVariant&) = delete;

 private:
  void roundTrip() override {
    sendToClient(zmq::message_t(server_buf_.data(), server_buf_.size()));
    zmq::message_t id;
    zmq::message_t reply;
    SFN_ENFORCE(recvWithin(router_, id, 20s) && router_.recv(reply, zmq::recv_flags::none),
                sfn::Error, "bench_wire: raw reply missing");
    SFN_ENFORCE(reply.size() == server_buf_.size(), sfn::Error, "bench_wire: raw size");
  }

  static bool recvWithin(zmq::socket_t& socket, zmq::message_t& msg,
                         std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return false;
    return socket.recv(msg, zmq::recv_flags::none).has_value();
  }

  void sendToClient(zmq::message_t payload) {
    zmq::message_t id;
    id.copy(routing_id_);
    (void)router_.send(id, zmq::send_flags::sndmore);
    (void)router_.send(payload, zmq::send_flags::none);
  }

  // Echoes what it receives, copied into a fresh message: the sfn client likewise encodes
  // its Update from the tensors it just received (one copy out of the received buffer).
  void clientLoop(const std::string& endpoint) {
    zmq::socket_t dealer(client_context_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    (void)dealer.send(zmq::str_buffer("hello"), zmq::send_flags::none);
    for (;;) {
      zmq::message_t msg;
      if (!dealer.recv(msg, zmq::recv_flags::none) || msg.size() == 0) break;
      (void)dealer.send(zmq::buffer(msg.data(), msg.size()), zmq::send_flags::none);  // copies
    }
  }

  // One context (one I/O thread) per side, as in the sfn variants and in a real deployment
  // where server and client are different processes.
  zmq::context_t context_;
  zmq::context_t client_context_;
  std::vector<std::uint8_t> server_buf_;
  zmq::socket_t router_;
  zmq::message_t routing_id_;
  std::thread client_thread_;
};

// CPU time of the whole process (all threads, user + system), in seconds.
double processCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// The codec alone, on one thread and without sockets: encode() of the MaxNet TrainTask and
// of a strided one (stridedTask), decode() of the first, and std::memcpy of the same bytes
// into a reused buffer. Explains where a
// gap to raw ZeroMQ comes from (the codec's one copy vs everything else).
struct CodecCost {
  double encode_gbps = 0.0;
  double encode_strided_gbps = 0.0;
  double decode_gbps = 0.0;
  double memcpy_gbps = 0.0;
};

// A TrainTask of the SubNet with every block at its largest depth and smallest expand
// ratio: most of its slices are strided views of the SuperNet (prefix boxes of the mid
// channels), as in most tasks a server sends.
sfn::TrainTaskMsg stridedTask(const sfn::SuperNet& net) {
  sfn::SubNetConfig config = sfn::SubNetConfig::maxNet(net.space());
  for (int& e : config.expand) e = 0;
  sfn::TrainTaskMsg task;
  task.subnet = config.toString(net.space());
  task.tensors = net.sliceViews(config);
  return task;
}

CodecCost measureCodec(const sfn::SuperNet& net, double min_seconds) {
  sfn::TrainTaskMsg task;
  task.subnet = sfn::SubNetConfig::maxNet(net.space()).toString(net.space());
  task.tensors = net.sliceViews(sfn::SubNetConfig::maxNet(net.space()));
  const sfn::TrainTaskMsg strided = stridedTask(net);
  // GB/s of tensor bytes in `payload` that `op` gets through.
  auto rate = [&](const sfn::NamedTensors& payload, auto&& op) {
    const auto bytes = static_cast<double>(payload.nbytes());
    double best = 0.0;
    for (int rep = 0; rep < 3; ++rep) {
      int n = 0;
      const auto t0 = Clock::now();
      while (n < 5 || secondsSince(t0) < min_seconds / 2) {
        op();
        ++n;
      }
      best = std::max(best, bytes * n / secondsSince(t0) / 1e9);
    }
    return best;
  };
  CodecCost c;
  c.encode_gbps = rate(task.tensors, [&] { (void)sfn::encode(task); });
  c.encode_strided_gbps = rate(strided.tensors, [&] { (void)sfn::encode(strided); });
  const sfn::BytesPtr encoded = sfn::encode(task);
  c.decode_gbps = rate(task.tensors, [&] {
    sfn::DecodeResult d = sfn::decode(encoded);
    SFN_ENFORCE(d.ok(), sfn::Error, "bench_wire: codec decode failed");
  });
  std::vector<std::uint8_t> dst(encoded->size());
  c.memcpy_gbps = rate(task.tensors, [&] {
    std::memcpy(dst.data(), encoded->data(), encoded->size());
    asm volatile("" : : "r"(dst.data()) : "memory");  // keep the copy
  });
  return c;
}

// Per-variant results of the interleaved repetitions.
struct Measured {
  std::vector<std::vector<double>> gbps;  // per variant, per repetition
  std::vector<double> cpu_ms;             // process CPU time per round trip, best repetition
  long iterations = 0;

  double best(std::size_t i) const {
    return gbps[i].empty() ? 0.0 : *std::max_element(gbps[i].begin(), gbps[i].end());
  }
  double median(std::size_t i) const {
    if (gbps[i].empty()) return 0.0;
    std::vector<double> v = gbps[i];
    std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
    return v[v.size() / 2];
  }
};

const std::vector<std::string> kVariantNames = {"raw", "plain", "curve"};

// The variants asked for by --variants (null where not asked for), warmed up.
std::vector<std::unique_ptr<Variant>> makeVariants(const BenchOptions& opts,
                                                   const sfn::SuperNet& net,
                                                   std::size_t payload_bytes,
                                                   sfn::DecodeCounters& server_counters,
                                                   sfn::DecodeCounters& client_counters) {
  std::vector<std::unique_ptr<Variant>> variants(kVariantNames.size());
  for (std::size_t i = 0; i < kVariantNames.size(); ++i) {
    const std::string& name = kVariantNames[i];
    if (("," + opts.variants + ",").find("," + name + ",") == std::string::npos) continue;
    if (name == "raw")
      variants[i] = std::make_unique<RawVariant>(payload_bytes);
    else
      variants[i] =
          std::make_unique<SfnVariant>(net, name == "curve", server_counters, client_counters);
    std::cerr << "bench_wire: warm-up " << name << "\n";
    (void)variants[i]->run(0.0, opts.warmup);
  }
  return variants;
}

// Repetitions interleaved variant by variant, so load from elsewhere hits all alike.
Measured measure(const BenchOptions& opts, std::vector<std::unique_ptr<Variant>>& variants,
                 std::size_t payload_bytes) {
  Measured m;
  m.gbps.resize(variants.size());
  m.cpu_ms.assign(variants.size(), 0.0);
  for (int rep = 0; rep < opts.repeats; ++rep) {
    std::cerr << "bench_wire: repetition " << rep + 1 << "/" << opts.repeats;
    for (std::size_t i = 0; i < variants.size(); ++i) {
      if (!variants[i]) continue;
      const double cpu0 = processCpuSeconds();
      const Repetition r = variants[i]->run(opts.min_seconds, 1);
      const double cpu = (processCpuSeconds() - cpu0) * 1e3 / r.iterations;
      m.cpu_ms[i] = rep == 0 ? cpu : std::min(m.cpu_ms[i], cpu);
      m.gbps[i].push_back(2.0 * static_cast<double>(payload_bytes) * r.iterations / r.seconds /
                          1e9);
      m.iterations += r.iterations;
      std::cerr << " " << kVariantNames[i] << " " << m.gbps[i].back() << " GB/s";
    }
    std::cerr << "\n";
  }
  return m;
}

// Flat: one scalar per key. A variant that was not run reports 0.
Json report(const BenchOptions& opts, std::size_t payload_bytes, const Measured& m,
            const CodecCost& codec, const sfn::DecodeCounters& server_counters,
            const sfn::DecodeCounters& client_counters) {
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  const double ratio_goal = 0.8;
  const std::uint64_t copies = server_counters.copies.load() + client_counters.copies.load();
  return Json{{"bench", "wire"},
              {"preset", opts.preset},
              {"payload_bytes", payload_bytes},
              {"iterations", m.iterations},
              {"repeats", opts.repeats},
              {"min_seconds", opts.min_seconds},
              {"raw_zmq_gbps", m.best(0)},
              {"roundtrip_gbps_plain", m.best(1)},
              {"ratio_plain", ratio(m.best(1), m.best(0))},
              {"roundtrip_gbps_curve", m.best(2)},
              {"ratio_curve", ratio(m.best(2), m.best(0))},
              {"raw_zmq_gbps_median", m.median(0)},
              {"roundtrip_gbps_plain_median", m.median(1)},
              {"roundtrip_gbps_curve_median", m.median(2)},
              {"cpu_ms_per_roundtrip_raw", m.cpu_ms[0]},
              {"cpu_ms_per_roundtrip_plain", m.cpu_ms[1]},
              {"cpu_ms_per_roundtrip_curve", m.cpu_ms[2]},
              {"encode_gbps", codec.encode_gbps},
              {"encode_strided_gbps", codec.encode_strided_gbps},
              {"decode_gbps", codec.decode_gbps},
              {"memcpy_gbps", codec.memcpy_gbps},
              {"decode_copies", copies},
              {"decodes", server_counters.decoded.load() + client_counters.decoded.load()},
              {"goal_ratio_plain_min", ratio_goal},
              {"goal_decode_copies", 0},
              {"goals_met", ratio(m.best(1), m.best(0)) >= ratio_goal && copies == 0}};
}

int run(const BenchOptions& opts) {
  at::set_num_threads(1);
  const sfn::DesignSpace space = sfn::DesignSpace::preset(opts.preset);
  const sfn::SuperNet net(space, 1);
  const auto payload_bytes =
      static_cast<std::size_t>(net.sliceViews(sfn::SubNetConfig::maxNet(space)).nbytes());
  sfn::DecodeCounters server_counters;
  sfn::DecodeCounters client_counters;
  auto variants = makeVariants(opts, net, payload_bytes, server_counters, client_counters);
  const Measured m = measure(opts, variants, payload_bytes);
  variants.clear();  // joins the client threads
  const CodecCost codec = measureCodec(net, opts.min_seconds);
  const std::string text =
      report(opts, payload_bytes, m, codec, server_counters, client_counters).dump(2);
  std::cout << text << std::endl;
  if (opts.json.empty()) return 0;
  std::ofstream f(opts.json);
  f << text << "\n";
  if (!f) {
    std::cerr << "bench_wire: cannot write " << opts.json << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions opts;
  CLI::App app{"Wire round-trip benchmark: TrainTask + Update over ZeroMQ vs raw cppzmq"};
  app.add_option("--preset", opts.preset, "design space preset of the MaxNet payload");
  app.add_option("--repeats", opts.repeats, "repetitions per variant (best is kept)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--min-seconds", opts.min_seconds, "minimum seconds per repetition");
  app.add_option("--warmup", opts.warmup, "untimed round trips per variant")
      ->check(CLI::Range(0, 100000));
  app.add_option("--variants", opts.variants,
                 "comma-separated subset of raw,plain,curve (for profiling one of them)")
      ->capture_default_str();
  app.add_option("--json,--out", opts.json, "also write the JSON to this file");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(opts);
  } catch (const std::exception& e) {
    std::cerr << "bench_wire: " << e.what() << "\n";
    return 1;
  }
}
