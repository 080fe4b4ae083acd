#include "sfn/client/train_task.h"

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

}  // namespace sfn
