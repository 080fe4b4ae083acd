// The client's handling of one TrainTask, shared by sfn-client and the simulator's
// virtual clients.
#pragma once

#include "sfn/train/local_trainer.h"
#include "sfn/wire/wire.h"

#include <string>

namespace sfn {

// The server's hyper-parameters with this client's torch device. Throws ConfigError if
// they are out of range.
TrainOptions trainOptionsFrom(const HyperParams& hyper, const std::string& device);

}  // namespace sfn
