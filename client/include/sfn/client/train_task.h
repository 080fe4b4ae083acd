// The client's handling of one TrainTask, written once and run by sfn-client (ClientRunner)
// and by the simulator's virtual clients (VirtualFleet) alike:
//
//   TrainTask::accept   TrainTaskMsg -> TrainTask: the SubNet parsed against the client's
//                       design space, the hyper-parameters turned into TrainOptions, the
//                       initial tensors checked against the SubNet's slice spec;
//   runTrainTask        TrainTask -> UpdateMsg: local training (trainLocal) on the client's
//                       samples, the result packed as the Update the server expects.
//
// The two steps are separate because callers do them on different threads: a client checks
// a task as it arrives (and refuses a bad one at once) and trains it on a worker.
#pragma once

#include "sfn/core/clock.h"
#include "sfn/data/dataset.h"
#include "sfn/model/design_space.h"
#include "sfn/model/named_tensors.h"
#include "sfn/model/subnet_config.h"
#include "sfn/train/local_trainer.h"
#include "sfn/wire/wire.h"

#include <cstdint>
#include <string>

namespace sfn {

// The server's hyper-parameters with this client's torch device. Throws ConfigError if
// they are out of range.
TrainOptions trainOptionsFrom(const HyperParams& hyper, const std::string& device);

// A TrainTask the client has checked and will train.
struct TrainTask {
  std::uint64_t round = 0;
  std::uint64_t task_id = 0;
  std::uint64_t deadline_ms = 0;  // the server's deadline, relative to receipt
  SubNetConfig config;
  TrainOptions options;
  // The SubNet's initial weights. Decoded tensors are views into the received message and
  // keep it alive until the task is dropped (training copies them into its module).
  NamedTensors init;

  // Checks `msg` against `space` and takes it over. Throws ConfigError naming the round and
  // task when its SubNet is not one of `space`, its hyper-parameters are out of range, or
  // its tensors are not the SubNet's slice (names, dtypes, shapes, finite values).
  static TrainTask accept(TrainTaskMsg msg, const DesignSpace& space, const std::string& device);
};

// What one client trains on. Everything referenced must outlive the runTrainTask call.
struct ClientContext {
  const DesignSpace& space;
  const Dataset& data;
  const IndexList& indices;    // the client's samples in `data`
  std::string device = "cpu";  // torch device of local training
  // Measures UpdateMsg::compute_seconds. Null (production): the trainer's own wall time of
  // the training loop. A clock that only its owner advances (VirtualClock) makes the Update
  // independent of host speed, so two runs of the same task give the same bytes (tests).
  const Clock* clock = nullptr;
};

// Trains `task` on the context's samples and returns the Update for the server. Numerics
// are trainLocal's: deterministic for the task's seed when torch runs single-threaded.
// Throws what trainLocal throws (ShapeError, c10::Error) for a failure during training.
UpdateMsg runTrainTask(const TrainTask& task, const ClientContext& context);

// Both steps at once: TrainTask::accept(msg, context.space, context.device), then train.
UpdateMsg runTrainTask(TrainTaskMsg msg, const ClientContext& context);

}  // namespace sfn
