#include "sfn/server/coordinator.h"

#include "sfn/core/error.h"
#include "sfn/model/subnet_shapes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace sfn {

std::string_view toString(RoundState state) {
  switch (state) {
    case RoundState::kIdle:
      return "idle";
    case RoundState::kSelecting:
      return "selecting";
    case RoundState::kTraining:
      return "training";
    case RoundState::kAggregating:
      return "aggregating";
    case RoundState::kEvaluating:
      return "evaluating";
    case RoundState::kCheckpointing:
      return "checkpointing";
  }
  return "unknown";
}

namespace {

// The run's training options as sent to clients (the device string stays client-local).
HyperParams hyperParamsOf(const TrainOptions& o) {
  return HyperParams{o.epochs, o.batch_size, o.lr, o.momentum, o.weight_decay, o.clip_grad_norm,
                     o.seed};
}

double wallNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::chrono::milliseconds toTimeout(double seconds) {
  if (seconds <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000.0)));
}

// Records what became of a task in the round's metrics (a short linear search: K entries).
void markTask(RoundMetrics* metrics, std::uint64_t task_id, const char* status) {
  if (metrics == nullptr) return;
  for (auto& t : metrics->tasks)
    if (t.task_id == task_id) t.status = status;
}

// The fixed policy's SubNet ("max", "min" or text), resolved against the SuperNet's space;
// throws ConfigError on a bad text so a typo fails at start-up.
std::optional<SubNetConfig> fixedSubNet(const CoordinatorOptions& o, const DesignSpace& space) {
  if (o.policy != AssignPolicy::kFixed) return std::nullopt;
  return resolveSubNet(o.fixed_subnet, space);
}

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, SuperNet supernet, ServerTransport& transport,
                         Clock& clock, Evaluator* evaluator, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)),
      supernet_(std::move(supernet)),
      transport_(transport),
      clock_(clock),
      evaluator_(evaluator),
      log_(logger ? std::move(logger) : spdlog::default_logger()),
      assigner_(supernet_.space(), options_.policy, options_.seed,
                fixedSubNet(options_, supernet_.space())),
      accumulator_(superNetSpec(supernet_.space())) {
  options_.validate();
  // Fail at start-up, not at the first evaluation, on a bad eval SubNet.
  for (const auto& s : options_.eval_subnets) (void)resolveSubNet(s, supernet_.space());
}

void Coordinator::setState(RoundState s) {
  state_ = s;
  log_->debug("round {}: state {}", next_round_, toString(s));
}

void Coordinator::send(const PeerId& peer, const Message& msg, RoundMetrics* metrics) {
  BytesPtr bytes = encode(msg);
  const std::size_t n = bytes->size();
  SendResult r = transport_.send(peer, std::move(bytes));
  if (!r.ok()) {
    log_->warn("round {}: send {} to client {} failed: {} {}", next_round_, messageName(msg), peer,
               toString(r.status), r.reason);
    return;
  }
  if (metrics) metrics->bytes_sent += n;
}

void Coordinator::reject(const PeerId& peer, const std::string& why, RoundMetrics* metrics) {
  log_->warn("round {}: rejected message from client {}: {}", next_round_, peer, why);
  if (metrics) ++metrics->rejected;
}

bool Coordinator::handle(const Received& received, RoundMetrics* metrics) {
  const std::size_t n = received.message ? received.message->size() : 0;
  if (metrics) metrics->bytes_received += n;
  DecodeResult decoded = decode(received.message, options_.limits, &decode_counters_);
  if (!decoded) {
    reject(received.peer,
           std::string(toString(decoded.error().code)) + ": " + decoded.error().reason, metrics);
    return false;
  }
  Message& msg = decoded.message();
  if (auto* reg = std::get_if<RegisterMsg>(&msg)) {
    handleRegister(received.peer, *reg);
    return false;
  }
  ClientInfo* client = registry_.find(received.peer);
  if (client == nullptr) {
    reject(received.peer, std::string(messageName(msg)) + " from an unregistered peer", metrics);
    send(received.peer, RejectMsg{RejectCode::kNotRegistered, "not registered"}, nullptr);
    return false;
  }
  registry_.touch(received.peer, clock_.now());
  if (auto* upd = std::get_if<UpdateMsg>(&msg))
    return handleUpdate(received.peer, *upd, n, metrics);
  if (std::holds_alternative<HeartbeatMsg>(msg)) return false;
  if (auto* bye = std::get_if<ByeMsg>(&msg)) {
    log_->info("client {} ({}) left: {}", client->name, received.peer, bye->reason);
    registry_.markGone(received.peer);
    return false;
  }
  reject(received.peer, std::string("unexpected ") + std::string(messageName(msg)), metrics);
  return false;
}

void Coordinator::handleRegister(const PeerId& peer, const RegisterMsg& msg) {
  if (msg.samples == 0 || msg.samples > options_.max_samples_per_client) {
    log_->warn("client {} ({}) refused: sample count {} out of range", msg.client_name, peer,
               msg.samples);
    send(peer, RejectMsg{RejectCode::kSampleCountOutOfRange, "sample count out of range"}, nullptr);
    return;
  }
  ClientInfo info;
  info.name = msg.client_name;
  info.device_class = msg.device_class;
  info.cores = msg.cores;
  info.samples = msg.samples;
  auto it = options_.device_macs_budget.find(msg.device_class);
  info.macs_budget = it == options_.device_macs_budget.end() ? 0 : it->second;
  const ClientInfo* stored = registry_.upsert(peer, std::move(info), clock_.now());
  if (stored == nullptr) {
    log_->error("client {} ({}) refused: id collision", msg.client_name, peer);
    send(peer, RejectMsg{RejectCode::kClientIdCollision, "client id collision"}, nullptr);
    return;
  }
  log_->debug("client {} ({}, {}) registered as {}", stored->name, peer, stored->device_class,
              stored->id);
  send(peer, WelcomeMsg{stored->id, options_.server_name, kProtocolVersion}, nullptr);
}

bool Coordinator::handleUpdate(const PeerId& peer, UpdateMsg& msg, std::size_t message_bytes,
                               RoundMetrics* metrics) {
  (void)message_bytes;
  auto it = pending_.find(msg.task_id);
  if (static_cast<std::int64_t>(msg.round) != next_round_ || state_ != RoundState::kTraining ||
      it == pending_.end()) {
    // A finished task id is a duplicate; anything else is late (closed round) or unknown.
    const bool dup = static_cast<std::int64_t>(msg.round) == next_round_ &&
                     state_ == RoundState::kTraining && msg.task_id < next_task_id_;
    log_->info("round {}: discarded {} update (round {}, task {}) from client {}", next_round_,
               dup ? "duplicate" : "late", msg.round, msg.task_id, peer);
    if (metrics) ++(dup ? metrics->duplicate : metrics->late);
    return false;
  }
  PendingTask& task = it->second;
  if (task.peer != peer) {
    reject(peer, "update for task " + std::to_string(msg.task_id) + " assigned to another client",
           metrics);
    return false;
  }
  const ClientInfo* client = registry_.find(peer);
  if (msg.samples == 0 || (client && msg.samples > client->samples)) {
    reject(peer, "sample count " + std::to_string(msg.samples) + " out of range", metrics);
    markTask(metrics, msg.task_id, "rejected");
    pending_.erase(it);
    return false;
  }
  if (auto err = validateTensors(msg.tensors, task.spec)) {
    reject(peer, std::string(toString(err->code)) + ": " + err->reason, metrics);
    markTask(metrics, msg.task_id, "rejected");
    pending_.erase(it);
    return false;
  }
  if (!std::isfinite(msg.mean_loss)) {
    reject(peer, "non-finite loss", metrics);
    markTask(metrics, msg.task_id, "rejected");
    pending_.erase(it);
    return false;
  }
  accumulator_.addPrefixSlice(msg.tensors, task.weight);
  markTask(metrics, msg.task_id, "accepted");
  if (metrics) {
    // Running mean of client losses.
    const double prev = metrics->train_loss * metrics->accepted;
    ++metrics->accepted;
    metrics->train_loss = (prev + msg.mean_loss) / metrics->accepted;
    metrics->train_macs += 3 * computeCost(supernet_.space(), task.config).macs *
                           static_cast<std::int64_t>(msg.samples) * options_.train.epochs;
  }
  pending_.erase(it);
  return true;
}

void Coordinator::pump() { pump(nullptr); }

void Coordinator::pump(RoundMetrics* metrics) {
  while (auto r = transport_.recv(std::chrono::milliseconds(0))) handle(*r, metrics);
}

bool Coordinator::waitForClients(std::size_t min_clients, double timeout_s) {
  const double until = clock_.now() + timeout_s;
  while (true) {
    if (registry_.available(clock_.now(), options_.liveness_s).size() >= min_clients) return true;
    const double left = until - clock_.now();
    if (left <= 0) return false;
    if (auto r = transport_.recv(toTimeout(std::min(left, 0.5)))) handle(*r, nullptr);
  }
}

RoundMetrics Coordinator::runRound() {
  const std::int64_t t = next_round_;
  RoundMetrics m;
  m.round = t;
  m.clock_start = clock_.now();
  double w0 = wallNow();

  // --- Selecting ---
  setState(RoundState::kSelecting);
  pump(&m);  // stragglers of the last round count as late in this one
  auto available = registry_.available(clock_.now(), options_.liveness_s);
  m.available = static_cast<int>(available.size());
  const int k = options_.clients_per_round;
  const auto want = static_cast<std::size_t>(std::ceil(k * (1.0 + options_.over_selection)));
  const std::size_t n = std::min(want, available.size());
  // Partial Fisher-Yates over the id-ordered list, with the round's own stream.
  Rng rng(options_.seed, static_cast<std::uint64_t>(t), 0x5e1ec7);
  for (std::size_t i = 0; i < n; ++i)
    std::swap(available[i], available[i + rng.below(available.size() - i)]);
  available.resize(n);
  m.selected = static_cast<int>(n);

  std::vector<AssignInput> inputs;
  for (const ClientInfo* c : available) inputs.push_back({c->id, c->macs_budget});
  const std::vector<SubNetConfig> configs = assigner_.assign(t, inputs);

  // Weights are fixed at selection from registered sample counts, so each update can be
  // streamed into the accumulator on arrival; only ratios between clients matter.
  std::vector<WeightInput> winputs;
  for (std::size_t i = 0; i < n; ++i)
    winputs.push_back(
        {configs[i].isMaxNet(supernet_.space()), static_cast<std::int64_t>(available[i]->samples)});
  const std::vector<double> weights = clientWeights(options_.weighting, t, winputs);
  m.beta = betaCosine(static_cast<double>(t), options_.weighting.b0, options_.weighting.bT,
                      options_.weighting.decay_rounds);
  m.wall_select_s = wallNow() - w0;

  // --- Training ---
  w0 = wallNow();
  setState(RoundState::kTraining);
  pending_.clear();
  accumulator_.reset();
  const double deadline = clock_.now() + options_.round_deadline_s;
  HyperParams hyper = hyperParamsOf(options_.train);
  for (std::size_t i = 0; i < n; ++i) {
    PendingTask task;
    task.task_id = next_task_id_++;
    task.peer = available[i]->peer;
    task.config = configs[i];
    task.is_maxnet = winputs[i].is_maxnet;
    task.weight = weights[i];
    task.spec = sliceSpec(supernet_.space(), configs[i]);
    TrainTaskMsg msg;
    msg.round = static_cast<std::uint64_t>(t);
    msg.task_id = task.task_id;
    msg.subnet = configs[i].toString(supernet_.space());
    msg.tensors = supernet_.sliceViews(configs[i]);
    hyper.seed = Rng(options_.seed, static_cast<std::uint64_t>(t), task.task_id)();
    msg.hyper = hyper;
    msg.deadline_ms = static_cast<std::uint64_t>(options_.round_deadline_s * 1000.0);
    log_->debug("round {}: task {} -> client {} ({}) subnet {} weight {:.4f}", t, task.task_id,
                available[i]->name, task.peer, msg.subnet, task.weight);
    send(task.peer, msg, &m);
    m.tasks.push_back({task.task_id, available[i]->name, msg.subnet, "dropped"});
    pending_.emplace(task.task_id, std::move(task));
  }
  while (m.accepted < k && !pending_.empty()) {
    const double left = deadline - clock_.now();
    if (left <= 0) break;
    auto r = transport_.recv(toTimeout(left));
    if (!r) continue;  // re-check the deadline
    handle(*r, &m);
  }
  // Tasks still pending got no valid update in time. (Not selected - accepted - rejected:
  // `rejected` also counts malformed messages that never named a task.)
  m.dropped = static_cast<int>(pending_.size());
  pending_.clear();  // anything arriving from now on is late
  m.wall_train_s = wallNow() - w0;

  // --- Aggregating ---
  w0 = wallNow();
  setState(RoundState::kAggregating);
  if (m.accepted >= options_.effectiveQuorum()) {
    accumulator_.finishInto(supernet_.tensors());
    m.outcome = "completed";
  } else {
    m.outcome = "abandoned";
    log_->warn("round {}: abandoned, {} of quorum {} updates; SuperNet kept", t, m.accepted,
               options_.effectiveQuorum());
  }
  accumulator_.reset();
  m.wall_aggregate_s = wallNow() - w0;
  m.clock_end = clock_.now();

  // --- Evaluating ---
  w0 = wallNow();
  if (evaluator_ && options_.eval_every > 0 && (t + 1) % options_.eval_every == 0) {
    setState(RoundState::kEvaluating);
    m.evals = evaluateNow();
  }
  m.wall_eval_s = wallNow() - w0;
  setState(RoundState::kIdle);
  ++next_round_;
  log_->info("round {}: {} accepted {}/{} (dropped {}, rejected {}, late {}) loss {:.4f}{}", t,
             m.outcome, m.accepted, m.selected, m.dropped, m.rejected, m.late, m.train_loss,
             m.evals.empty() ? std::string()
                             : fmt::format(" acc max {:.4f} min {:.4f}", m.evals.front().accuracy,
                                           m.evals.size() > 1 ? m.evals[1].accuracy : 0.0));
  history_.push_back(m);
  return m;
}

std::vector<EvalRecord> Coordinator::evaluateNow() {
  std::vector<EvalRecord> out;
  if (!evaluator_) return out;
  for (const auto& t : evalTargets(options_.eval_subnets, supernet_.space()))
    out.push_back(evaluator_->evaluate(supernet_, t));
  return out;
}

CoordinatorSnapshot Coordinator::snapshot() const {
  CoordinatorSnapshot s;
  s.next_round = next_round_;
  s.next_task_id = next_task_id_;
  s.counters = assigner_.allCounters();
  s.history = history_;
  return s;
}

void Coordinator::restore(const CoordinatorSnapshot& snap) {
  next_round_ = snap.next_round;
  next_task_id_ = snap.next_task_id;
  assigner_.setCounters(snap.counters);
  history_ = snap.history;
}

void Coordinator::sayGoodbye(const std::string& reason) {
  for (const ClientInfo* c : registry_.available(clock_.now(), options_.liveness_s))
    send(c->peer, ByeMsg{reason}, nullptr);
}

}  // namespace sfn
