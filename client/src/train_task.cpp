#include "sfn/client/train_task.h"

#include "sfn/core/error.h"
#include "sfn/model/subnet_shapes.h"

#include <optional>
#include <utility>

namespace sfn {

TrainOptions trainOptionsFrom(const HyperParams& hyper, const std::string& device) {
  TrainOptions opts;
  opts.epochs = hyper.epochs;
  opts.batch_size = hyper.batch_size;
  opts.lr = hyper.lr;
  opts.momentum = hyper.momentum;
  opts.weight_decay = hyper.weight_decay;
  opts.clip_grad_norm = hyper.clip_grad_norm;
  opts.seed = hyper.seed;
  opts.device = device;
  opts.validate();
  return opts;
}

TrainTask TrainTask::accept(TrainTaskMsg msg, const DesignSpace& space, const std::string& device) {
  TrainTask task;
  task.round = msg.round;
  task.task_id = msg.task_id;
  task.deadline_ms = msg.deadline_ms;
  try {
    task.config = SubNetConfig::parse(msg.subnet, space);
    task.options = trainOptionsFrom(msg.hyper, device);
  } catch (const ConfigError& e) {
    SFN_THROW(ConfigError, "round ", msg.round, " task ", msg.task_id, ": ", e.what());
  }
  // Checked here, before any LibTorch op, so that a task that does not fit its SubNet is
  // refused with a reason instead of failing (or training on NaNs) inside trainLocal.
  if (const std::optional<WireError> bad =
          validateTensors(msg.tensors, sliceSpec(space, task.config)))
    SFN_THROW(ConfigError, "round ", msg.round, " task ", msg.task_id,
              ": tensors do not fit SubNet ", msg.subnet, ": ", bad->reason);
  task.init = std::move(msg.tensors);
  return task;
}

UpdateMsg runTrainTask(const TrainTask& task, const ClientContext& context) {
  const double start = context.clock != nullptr ? context.clock->now() : 0.0;
  TrainResult r = trainLocal(context.space, task.config, task.init, context.data, context.indices,
                             task.options);
  UpdateMsg update;
  update.round = task.round;
  update.task_id = task.task_id;
  update.samples = static_cast<std::uint64_t>(r.samples);
  update.tensors = std::move(r.slice);
  update.mean_loss = r.mean_loss;
  update.compute_seconds =
      context.clock != nullptr ? context.clock->now() - start : r.compute_seconds;
  return update;
}

UpdateMsg runTrainTask(TrainTaskMsg msg, const ClientContext& context) {
  return runTrainTask(TrainTask::accept(std::move(msg), context.space, context.device), context);
}

}  // namespace sfn
