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
    case RoundState::kBackingOff:
      return "backing_off";
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
  return HyperParams{o.epochs,       o.batch_size,     o.lr,  o.momentum,
                     o.weight_decay, o.clip_grad_norm, o.seed};
}

// A round's waits are cut into slices this long, so that a stop request or a progress
// line is never more than a slice away.
constexpr double kPollSliceS = 0.5;
// Messages handled between two client counts while waiting for clients.
constexpr int kWaitBatch = 1024;
constexpr double kProgressLogS = 10.0;
// The random stream of replacements (per round), apart from selection's 0x5e1ec7.
constexpr std::uint64_t kSpareStream = 0x5ba7e5;

double wallNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::chrono::milliseconds toTimeout(double seconds) {
  if (seconds <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(seconds * 1000.0)));
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
      admission_(supernet_.space(), options_.server_name, options_.run_id,
                 options_.max_samples_per_client),
      assigner_(supernet_.space(), options_.policy, options_.seed,
                fixedSubNet(options_, supernet_.space())),
      accumulator_(superNetSpec(supernet_.space())),
      bound_(options_.robust.bound),
      backup_(superNetSpec(supernet_.space())) {
  options_.validate();
  if (options_.robust.trim_fraction > 0)
    trimmed_.emplace(superNetSpec(supernet_.space()), options_.robust.trim_fraction);
  // Fail at start-up, not at the first evaluation, on a bad eval SubNet.
  for (const auto& s : options_.eval_subnets) (void)resolveSubNet(s, supernet_.space());
}

void Coordinator::setState(RoundState s) {
  state_ = s;
  log_->debug("round {}: state {}", next_round_, toString(s));
  if (state_observer_) state_observer_(s);
}

std::size_t Coordinator::send(const PeerId& peer, const Message& msg) {
  BytesPtr bytes = encode(msg);
  const std::size_t n = bytes->size();
  SendResult r = transport_.send(peer, std::move(bytes));
  if (!r.ok()) {
    log_->warn("round {}: send {} to client {} failed: {} {}", next_round_, messageName(msg), peer,
               toString(r.status), r.reason);
    // It cannot get its task (or anything else): waiting for its update would only burn the
    // deadline. It becomes available again when it registers anew.
    registry_.markGone(peer);
    dropTaskOf(
        peer, std::string("a send to its client failed (") + std::string(toString(r.status)) + ")");
    return 0;
  }
  return n;
}

void Coordinator::dropTaskOf(const PeerId& peer, const std::string& why) {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->second.peer != peer) continue;
    log_->info("round {}: task {} of client {} dropped: {}", next_round_, it->first, peer, why);
    if (round_) ++round_->dropped;
    pending_.erase(it);
    return;  // one task per client and round
  }
}

void Coordinator::stopAwaiting(const PeerId& peer) {
  for (auto& [id, task] : pending_) {
    if (task.peer != peer || !task.awaited) continue;
    task.awaited = false;
    markTask(id, TaskStatus::kRejected);
    log_->info("round {}: no longer waiting for task {}: its client {} sent a malformed message",
               next_round_, id, peer);
  }
}

std::size_t Coordinator::awaitedTasks() const {
  return static_cast<std::size_t>(std::count_if(pending_.begin(), pending_.end(),
                                                [](const auto& p) { return p.second.awaited; }));
}

void Coordinator::runPollHook() {
  for (const LogRateLimiter::Suppressed& held : log_limit_.flush()) log_->warn("{}", held.text());
  if (poll_hook_) poll_hook_();
}

void Coordinator::revoke(const PeerId& peer, const std::string& reason) {
  if (!revoked_.insert(peer).second) return;
  dropTaskOf(peer, reason);
  if (ClientInfo* c = registry_.find(peer); c != nullptr && !c->gone) {
    log_->warn("client {} ({}): session ended: {}", c->name, peer, reason);
    registry_.markGone(peer);
    (void)send(peer, ByeMsg{reason, ByeCode::kUnspecified});
  }
}

void Coordinator::reject(const PeerId& peer, RejectReason reason, const std::string& why) {
  const ClientInfo* client = registry_.find(peer);
  if (log_limit_.allow("rejected messages (" + std::string(toString(reason)) + ")"))
    log_->warn("round {}: rejected message from client {}: {} (reason {}, client name '{}')",
               next_round_, peer, why, toString(reason), client ? client->name : "?");
  if (!round_) return;
  ++round_->rejected;
  ++round_->rejected_reasons[reason];
}

// This round's record of a task (a short linear search: K entries).
TaskRecord* Coordinator::taskRecord(std::uint64_t task_id) {
  if (!round_) return nullptr;
  for (auto& t : round_->tasks)
    if (t.task_id == task_id) return &t;
  return nullptr;
}

void Coordinator::markTask(std::uint64_t task_id, TaskStatus status) {
  if (TaskRecord* t = taskRecord(task_id)) t->status = status;
}

bool Coordinator::handle(const Received& received) {
  const std::size_t n = received.message ? received.message->size() : 0;
  if (round_) round_->bytes_received += n;
  DecodeResult decoded = decode(received.message, options_.limits, &decode_counters_);
  if (!decoded) {
    reject(received.peer, RejectReason::kMalformed,
           std::string(toString(decoded.error().code)) + ": " + decoded.error().reason);
    // Only its own client can send as this peer (the transport authenticates it), and a
    // client that sends garbage is not going to send a useful update in time.
    stopAwaiting(received.peer);
    return false;
  }
  Message& msg = decoded.message();
  if (isRevoked(received.peer)) {
    // The ZeroMQ transport drops these itself; this holds for any transport.
    reject(received.peer, RejectReason::kUnregistered,
           std::string(messageName(msg)) + " from a client whose session was revoked");
    if (std::holds_alternative<RegisterMsg>(msg))
      send(received.peer, RejectMsg{RejectCode::kUnspecified, "client key revoked"});
    return false;
  }
  if (auto* reg = std::get_if<RegisterMsg>(&msg)) {
    handleRegister(received.peer, *reg);
    return false;
  }
  ClientInfo* client = registry_.find(received.peer);
  if (client == nullptr) {
    reject(received.peer, RejectReason::kUnregistered,
           std::string(messageName(msg)) + " from an unregistered peer");
    send(received.peer, RejectMsg{RejectCode::kNotRegistered, "not registered"});
    return false;
  }
  registry_.touch(received.peer, clock_.now());
  if (auto* upd = std::get_if<UpdateMsg>(&msg)) return handleUpdate(received.peer, *upd);
  if (std::holds_alternative<HeartbeatMsg>(msg)) return false;
  if (auto* bye = std::get_if<ByeMsg>(&msg)) {
    log_->info("client {} ({}) left: {}", client->name, received.peer, bye->reason);
    registry_.markGone(received.peer);
    return false;
  }
  reject(received.peer, RejectReason::kUnexpected,
         std::string("unexpected ") + std::string(messageName(msg)));
  return false;
}

void Coordinator::handleRegister(const PeerId& peer, const RegisterMsg& msg) {
  auto decision = admission_.admit(msg);
  if (const auto* refused = std::get_if<RejectMsg>(&decision)) {
    log_->warn("client {} ({}) refused: {}", msg.client_name, peer, refused->reason);
    send(peer, *refused);
    return;
  }
  Admitted& admitted = std::get<Admitted>(decision);
  if (const ClientInfo* old = registry_.find(peer); old != nullptr) {
    // One session per authenticated peer: the new one replaces the old, whose task (if any)
    // the client no longer knows about.
    if (log_limit_.allow("clients registered again"))
      log_->info("client {} ({}) registered again: the new session replaces the old one",
                 msg.client_name, peer);
    dropTaskOf(peer, "its client registered again");
  }
  ClientInfo info;
  info.name = msg.client_name;
  info.device_class = msg.device_class;
  info.cores = msg.cores;
  info.samples = admitted.samples;
  auto it = options_.device_macs_budget.find(msg.device_class);
  info.macs_budget = it == options_.device_macs_budget.end() ? 0 : it->second;
  const ClientInfo* stored = registry_.upsert(peer, std::move(info), clock_.now());
  if (stored == nullptr) {
    log_->error("client {} ({}) refused: id collision", msg.client_name, peer);
    send(peer, RejectMsg{RejectCode::kClientIdCollision, "client id collision"});
    return;
  }
  log_->debug("client {} ({}, {}) registered as {}", stored->name, peer, stored->device_class,
              stored->id);
  admitted.welcome.client_id = stored->id;
  send(peer, admitted.welcome);
}

void Coordinator::rejectTask(const PeerId& peer, RejectReason reason, const std::string& why,
                             PendingMap::iterator it) {
  reject(peer, reason, "update for task " + std::to_string(it->first) + ": " + why);
  markTask(it->first, TaskStatus::kRejected);
  pending_.erase(it);
}

bool Coordinator::handleUpdate(const PeerId& peer, UpdateMsg& msg) {
  auto it = pending_.find(msg.task_id);
  if (static_cast<std::int64_t>(msg.round) != next_round_ || state_ != RoundState::kTraining ||
      it == pending_.end()) {
    // A finished task id is a duplicate; anything else is late (closed round) or unknown.
    const bool dup = static_cast<std::int64_t>(msg.round) == next_round_ &&
                     state_ == RoundState::kTraining && msg.task_id < next_task_id_;
    log_->info("round {}: discarded {} update (round {}, task {}) from client {}", next_round_,
               dup ? "duplicate" : "late", msg.round, msg.task_id, peer);
    if (round_) ++(dup ? round_->duplicate : round_->late);
    return false;
  }
  const PendingTask& task = it->second;
  if (task.peer != peer) {
    reject(peer, RejectReason::kWrongClient,
           "update for task " + std::to_string(msg.task_id) + " assigned to another client");
    return false;
  }
  const ClientInfo* client = registry_.find(peer);
  if (msg.samples == 0 || (client && msg.samples > client->samples)) {
    rejectTask(peer, RejectReason::kSampleCount,
               "sample count " + std::to_string(msg.samples) + " out of range", it);
    return false;
  }
  if (auto err = validateTensors(msg.tensors, task.spec)) {
    rejectTask(peer,
               err->code == WireErrorCode::kNonFinite ? RejectReason::kNonFinite
                                                      : RejectReason::kBadTensors,
               std::string(toString(err->code)) + ": " + err->reason, it);
    return false;
  }
  if (!std::isfinite(msg.mean_loss)) {
    rejectTask(peer, RejectReason::kNonFinite, "non-finite loss", it);
    return false;
  }
  // The bound, measured as the update arrives: the SuperNet is still the slice that was sent.
  const ChangeNorm change = measureChange(msg.tensors, supernet_.tensors());
  if (TaskRecord* record = taskRecord(msg.task_id)) record->change_rms = change.rms();
  logChange(peer, msg.task_id, change);
  if (const BoundCheck bound = bound_.check(change); !bound.ok()) {
    rejectTask(peer,
               bound.verdict == BoundVerdict::kOverCap ? RejectReason::kChangeOverCap
                                                       : RejectReason::kChangeOverBound,
               bound.describe(), it);
    return false;
  }
  bound_.accept(change);
  mergeUpdate(msg.tensors, task.weight, change.rms());
  markTask(msg.task_id, TaskStatus::kAccepted);
  if (round_) {
    RoundMetrics& m = *round_;  // train_loss: a running mean of the clients' losses
    const double prev = m.train_loss * m.accepted;
    ++m.accepted;
    m.train_loss = (prev + msg.mean_loss) / m.accepted;
    m.train_macs += 3 * computeCost(supernet_.space(), task.config).macs *
                    static_cast<std::int64_t>(msg.samples) * options_.train.epochs;
  }
  pending_.erase(it);
  return true;
}

void Coordinator::logChange(const PeerId& peer, std::uint64_t task_id,
                            const ChangeNorm& change) const {
  if (!log_->should_log(spdlog::level::debug)) return;
  const auto largest = std::max_element(
      change.tensors.begin(), change.tensors.end(),
      [](const TensorChange& a, const TensorChange& b) { return a.rms() < b.rms(); });
  log_->debug("round {}: task {} from client {}: change rms {:.4g}, largest in '{}' ({:.4g})",
              next_round_, task_id, peer, change.rms(),
              largest == change.tensors.end() ? "" : largest->name,
              largest == change.tensors.end() ? 0.0 : largest->rms());
}

void Coordinator::mergeUpdate(NamedTensors& tensors, double weight, double change_rms) {
  const double scale = clipScale(change_rms, options_.robust.clip_norm);
  if (scale < 1.0 && round_) ++round_->clipped;
  if (probe_.enabled()) backup_.cover(tensors);
  if (trimmed_) {
    trimmed_->add(std::move(tensors), weight, scale);  // held until the round aggregates
  } else if (scale < 1.0) {
    accumulator_.addScaledChange(tensors, supernet_.tensors(), weight, scale);
  } else {
    accumulator_.addPrefixSlice(tensors, weight);
  }
}

void Coordinator::pump() {
  while (auto r = transport_.recv(std::chrono::milliseconds(0))) handle(*r);
}

bool Coordinator::waitForClients(std::size_t min_clients, double timeout_s) {
  const double until = clock_.now() + timeout_s;
  while (true) {
    runPollHook();
    // Counted once per batch of messages, not once per message: thousands of clients
    // registering and sending heartbeats made a count per message quadratic (registration
    // of 10,000 stalled at 4,500).
    if (registry_.countAvailable(clock_.now(), options_.liveness_s) >= min_clients) return true;
    const double left = until - clock_.now();
    if (left <= 0) return false;
    auto r = transport_.recv(toTimeout(std::min(left, kPollSliceS)));
    for (int n = 0; r && n < kWaitBatch; ++n) {
      handle(*r);
      r = transport_.recv(std::chrono::milliseconds(0));
    }
    if (r) handle(*r);
  }
}

RoundMetrics Coordinator::runRound() {
  round_.emplace();
  round_->round = next_round_;
  backOffIfDue();
  round_->clock_start = clock_.now();
  double w0 = wallNow();
  const std::vector<Selected> selected = selectClients();
  round_->wall_select_s = wallNow() - w0;

  w0 = wallNow();
  collectUpdates(sendTasks(selected));
  round_->wall_train_s = wallNow() - w0;

  w0 = wallNow();
  aggregate();
  round_->wall_aggregate_s = wallNow() - w0;
  round_->clock_end = clock_.now();

  w0 = wallNow();
  evaluateIfDue();
  round_->wall_eval_s = wallNow() - w0;
  setState(RoundState::kIdle);
  logRound();
  ++next_round_;
  RoundMetrics m = std::move(*round_);
  round_.reset();
  history_.push_back(m);
  return m;
}

int Coordinator::failedInARow() const {
  int n = 0;
  for (auto it = history_.rbegin(); it != history_.rend(); ++it, ++n)
    if (it->outcome == RoundOutcome::kCompleted) break;
  return n;
}

// kBackingOff: after too many failed rounds in a row, wait before selecting again, so that
// a fault that outlasts a few rounds (clients gone, a poisoner in every round) does not
// run through the round budget at the pace of the deadline.
void Coordinator::backOffIfDue() {
  const int failed = failedInARow();
  const double wait = options_.robust.backoffSeconds(failed);
  if (wait <= 0) return;
  setState(RoundState::kBackingOff);
  log_->warn(
      "round {}: the last {} rounds were abandoned or rolled back; backing off {:.1f} s before "
      "selecting clients (doubling per further failed round, at most {:.0f} s; the wait is not "
      "a round)",
      next_round_, failed, wait, options_.robust.backoff_max_s);
  round_->backoff_s = wait;
  const double until = clock_.now() + wait;
  // Slices of at most 0.5 s so a stop request ends the wait promptly.
  for (double left = wait; left > 0 && !stopRequested(); left = until - clock_.now()) {
    runPollHook();
    if (auto r = transport_.recv(toTimeout(std::min(left, kPollSliceS)))) handle(*r);
  }
}

std::unordered_set<std::uint64_t> Coordinator::quarantinedClients() const {
  std::unordered_set<std::uint64_t> out;
  const std::int64_t since = next_round_ - options_.robust.quarantine_rounds;
  for (auto it = history_.rbegin(); it != history_.rend() && it->round >= since; ++it) {
    if (it->outcome != RoundOutcome::kRolledBack) continue;
    for (const TaskRecord& task : it->tasks)
      if (task.status == TaskStatus::kAccepted) out.insert(task.client_id);
  }
  return out;
}

// kSelecting: who trains this round, on which SubNet, with which weight.
std::vector<Coordinator::Selected> Coordinator::selectClients() {
  const std::int64_t t = next_round_;
  setState(RoundState::kSelecting);
  pump();  // stragglers of the last round count as late in this one
  runPollHook();
  if (const std::size_t pruned = registry_.prune(clock_.now(), options_.liveness_s); pruned > 0)
    log_->info("round {}: forgot {} sessions that ended or went silent", t, pruned);
  const double window = options_.select_within_s > 0
                            ? std::min(options_.select_within_s, options_.liveness_s)
                            : options_.liveness_s;
  auto available = registry_.available(clock_.now(), window);
  round_->available = static_cast<int>(available.size());
  if (const auto barred = quarantinedClients(); !barred.empty()) {
    std::erase_if(available, [&](const ClientInfo* c) { return barred.count(c->id) > 0; });
    round_->quarantined = round_->available - static_cast<int>(available.size());
    if (round_->quarantined > 0)
      log_->info("round {}: {} clients quarantined after a rolled-back round, not selected", t,
                 round_->quarantined);
  }
  const int k = options_.clients_per_round;
  const auto want = static_cast<std::size_t>(std::ceil(k * (1.0 + options_.over_selection)));
  const std::size_t n = std::min(want, available.size());
  // Partial Fisher-Yates over the id-ordered list, with the round's own stream.
  Rng rng(options_.seed, static_cast<std::uint64_t>(t), 0x5e1ec7);
  for (std::size_t i = 0; i < n; ++i)
    std::swap(available[i], available[i + rng.below(available.size() - i)]);
  spares_.assign(available.begin() + static_cast<std::ptrdiff_t>(n), available.end());
  available.resize(n);
  round_->selected = static_cast<int>(n);

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
  round_->beta = options_.weighting.beta(t);
  std::vector<Selected> selected;
  selected.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    selected.push_back({available[i], configs[i], winputs[i].is_maxnet, weights[i]});
  return selected;
}

// kTraining, first half: every selected client gets its SubNet slice as a TrainTask; a
// slot whose send fails goes to a replacement. Returns the round's deadline (clock time),
// fixed before the first task leaves.
double Coordinator::sendTasks(const std::vector<Selected>& selected) {
  const std::int64_t t = next_round_;
  setState(RoundState::kTraining);
  pending_.clear();
  accumulator_.reset();
  if (trimmed_) trimmed_->reset();
  backup_.reset();
  const double deadline = clock_.now() + options_.round_deadline_s;
  HyperParams hyper = hyperParamsOf(options_.train);
  hyper.lr = options_.lr_schedule.at(options_.train.lr, t);
  round_->lr = hyper.lr;
  Rng spare_rng(options_.seed, static_cast<std::uint64_t>(t), kSpareStream);
  for (const Selected& s : selected) {
    std::optional<Selected> slot = s;
    while (slot && !sendTask(*slot, hyper)) slot = replacementFor(*slot, spare_rng);
  }
  spares_.clear();  // its pointers die with the next registry change
  return deadline;
}

bool Coordinator::sendTask(const Selected& s, HyperParams hyper) {
  const std::int64_t t = next_round_;
  PendingTask task;
  task.task_id = next_task_id_++;
  task.peer = s.client->peer;
  task.config = s.config;
  task.is_maxnet = s.is_maxnet;
  task.weight = s.weight;
  task.spec = sliceSpec(supernet_.space(), s.config);
  TrainTaskMsg msg;
  msg.round = static_cast<std::uint64_t>(t);
  msg.task_id = task.task_id;
  msg.subnet = s.config.toString(supernet_.space());
  msg.tensors = supernet_.sliceViews(s.config);
  hyper.seed = Rng(options_.seed, static_cast<std::uint64_t>(t), task.task_id)();
  msg.hyper = hyper;
  msg.deadline_ms = static_cast<std::uint64_t>(options_.round_deadline_s * 1000.0);
  log_->debug("round {}: task {} -> client {} ({}) subnet {} weight {:.4f}", t, task.task_id,
              s.client->name, task.peer, msg.subnet, task.weight);
  const std::size_t bytes = send(task.peer, msg);
  round_->bytes_sent += bytes;
  round_->tasks.push_back(
      {task.task_id, s.client->name, msg.subnet, TaskStatus::kDropped, task.weight, s.client->id});
  if (bytes == 0) {
    ++round_->dropped;  // never pending: send() found nothing to drop
    return false;
  }
  pending_.emplace(task.task_id, std::move(task));
  return true;
}

std::optional<Coordinator::Selected> Coordinator::replacementFor(const Selected& failed, Rng& rng) {
  while (!spares_.empty()) {
    const std::size_t i = rng.below(spares_.size());
    const ClientInfo* c = spares_[i];
    spares_[i] = spares_.back();
    spares_.pop_back();
    if (c->gone) continue;  // a send to it failed earlier this round
    log_->info("round {}: client {} ({}) takes the slot of {}, whose task could not be sent",
               next_round_, c->name, c->peer, failed.client->name);
    moveAssignment(failed.client->id, c->id, failed.config);
    ++round_->selected;
    return Selected{c, failed.config, failed.is_maxnet, failed.weight};
  }
  log_->warn("round {}: no available client left to take the slot of {}", next_round_,
             failed.client->name);
  return std::nullopt;
}

void Coordinator::moveAssignment(std::uint64_t from, std::uint64_t to, const SubNetConfig& config) {
  const bool is_max = config.isMaxNet(supernet_.space());
  const bool is_min = config.isMinNet(supernet_.space());
  if (!is_max && !is_min) return;
  auto counters = assigner_.allCounters();  // a copy, on this rare path only
  SubNetAssigner::Counters& a = counters[from];
  SubNetAssigner::Counters& b = counters[to];
  if (is_max && a.maxnet > 0) --a.maxnet;
  if (is_min && a.minnet > 0) --a.minnet;
  b.maxnet += is_max ? 1 : 0;
  b.minnet += is_min ? 1 : 0;
  assigner_.setCounters(std::move(counters));
}

// kTraining, second half: stream updates into the accumulator until K are accepted, no task
// is awaited any more, or the deadline passes.
void Coordinator::collectUpdates(double deadline) {
  double next_log = wallNow() + kProgressLogS;
  while (true) {
    runPollHook();  // may end sessions, and with them tasks
    if (round_->accepted >= options_.clients_per_round || awaitedTasks() == 0) break;
    if (stopRequested()) {
      log_->warn("round {}: stop requested; closing the round with {} of {} updates", next_round_,
                 round_->accepted, options_.clients_per_round);
      break;
    }
    const double left = deadline - clock_.now();
    if (left <= 0) break;
    if (wallNow() >= next_log) {  // a long round must not look like a hung server
      log_->info(
          "round {}: training: {} of {} updates in, {} tasks pending, {:.0f} s to the "
          "deadline",
          next_round_, round_->accepted, options_.clients_per_round, awaitedTasks(), left);
      next_log = wallNow() + kProgressLogS;
    }
    auto r = transport_.recv(toTimeout(std::min(left, kPollSliceS)));
    if (!r) continue;  // re-check the deadline
    handle(*r);
  }
  // Tasks still pending got no valid update in time (those ended earlier were counted
  // then). (Not selected - accepted - rejected: `rejected` also counts malformed messages
  // that never named a task.)
  round_->dropped += static_cast<int>(pending_.size());
  pending_.clear();  // anything arriving from now on is late
}

// kAggregating: the averages replace the SuperNet's elements at quorum; else nothing changes.
void Coordinator::aggregate() {
  setState(RoundState::kAggregating);
  // Only the accepted updates enter the average; the accumulator renormalises over them.
  std::vector<double> accepted_weights;
  for (const TaskRecord& task : round_->tasks)
    if (task.status == TaskStatus::kAccepted) accepted_weights.push_back(task.weight);
  round_->effective_clients = effectiveClients(accepted_weights);
  if (round_->accepted >= options_.effectiveQuorum()) {
    if (probe_.enabled()) backup_.save(supernet_.tensors());
    if (trimmed_) {
      trimmed_->finishInto(supernet_.tensors());
    } else {
      accumulator_.finishInto(supernet_.tensors());
    }
    round_->outcome = RoundOutcome::kCompleted;
    if (probe_.enabled()) guardHealth();
  } else {
    round_->outcome = RoundOutcome::kAbandoned;
    log_->warn("round {}: abandoned, {} of quorum {} updates; SuperNet kept", next_round_,
               round_->accepted, options_.effectiveQuorum());
  }
  // A rolled-back round's updates must not teach the bound their sizes.
  bound_.endRound(round_->outcome != RoundOutcome::kRolledBack);
  accumulator_.reset();
  if (trimmed_) trimmed_->reset();  // frees the held updates
  backup_.reset();
}

std::optional<ProbeLosses> Coordinator::lastHealthyProbe() const {
  for (auto it = history_.rbegin(); it != history_.rend(); ++it)
    if (it->outcome == RoundOutcome::kCompleted && it->probe_loss_max > 0)
      return ProbeLosses{it->probe_loss_max, it->probe_loss_min};
  return std::nullopt;
}

void Coordinator::guardHealth() {
  const RobustOptions& r = options_.robust;
  const ProbeLosses losses = probe_.run(supernet_);
  round_->probe_loss_max = losses.max;
  round_->probe_loss_min = losses.min;
  const auto problem = probeProblem(losses, lastHealthyProbe(), r.probe_loss_multiple,
                                    r.probe_loss_cap, supernet_.space().num_classes);
  if (!problem) return;
  backup_.restoreInto(supernet_.tensors());
  round_->outcome = RoundOutcome::kRolledBack;
  std::string names;
  for (const TaskRecord& task : round_->tasks)
    if (task.status == TaskStatus::kAccepted) names += (names.empty() ? "" : ", ") + task.client;
  log_->error(
      "round {}: rolled back: {}; SuperNet restored to its state before the round; clients "
      "quarantined for {} rounds: {}",
      next_round_, *problem, r.quarantine_rounds, names);
}

// kEvaluating, every eval.every rounds.
void Coordinator::evaluateIfDue() {
  if (!evaluator_ || options_.eval_every <= 0 || (next_round_ + 1) % options_.eval_every != 0)
    return;
  // A process asked to stop skips the evaluation (or cuts it short) so that it can write
  // its final checkpoint within seconds; the round keeps its aggregate.
  if (stopRequested()) return;
  setState(RoundState::kEvaluating);
  try {
    round_->evals = evaluateNow();
  } catch (const Interrupted&) {
    log_->warn("round {}: evaluation cut short by the stop request", next_round_);
    round_->evals.clear();
  }
}

bool Coordinator::stopRequested() const {
  return stop_ != nullptr && stop_->load(std::memory_order_relaxed);
}

void Coordinator::logRound() const {
  const RoundMetrics& m = *round_;
  log_->info("round {}: {} accepted {}/{} (dropped {}, rejected {}, late {}) loss {:.4f}{}",
             m.round, toString(m.outcome), m.accepted, m.selected, m.dropped, m.rejected, m.late,
             m.train_loss,
             m.evals.empty() ? std::string()
                             : fmt::format(" acc max {:.4f} min {:.4f}", m.evals.front().accuracy,
                                           m.evals.size() > 1 ? m.evals[1].accuracy : 0.0));
}

std::string Coordinator::checkpoint(const std::function<std::string(const Coordinator&)>& write) {
  SFN_ENFORCE(state_ == RoundState::kIdle, Error, "checkpoint in state ", toString(state_));
  setState(RoundState::kCheckpointing);
  // Back to kIdle on every path: a failed write must not leave the state machine stuck.
  struct BackToIdle {
    Coordinator& c;
    ~BackToIdle() { c.setState(RoundState::kIdle); }
  } back{*this};
  return write(*this);
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
  // The bound's history is the accepted changes of the rounds not rolled back, as it was
  // built; quarantine, back-off and the last healthy probe are read from history_ directly.
  std::vector<double> changes;
  for (const RoundMetrics& m : history_) {
    if (m.outcome == RoundOutcome::kRolledBack) continue;
    for (const TaskRecord& t : m.tasks)
      if (t.status == TaskStatus::kAccepted && t.change_rms > 0) changes.push_back(t.change_rms);
  }
  bound_.restore(changes);
}

void Coordinator::sayGoodbye(ByeCode code, const std::string& reason) {
  for (const ClientInfo* c : registry_.available(clock_.now(), options_.liveness_s))
    send(c->peer, ByeMsg{reason, code});
}

}  // namespace sfn
