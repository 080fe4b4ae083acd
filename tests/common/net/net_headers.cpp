// Every public header of the torch-free layers (core, io, net); compiled with -MM only by
// check_no_torch.cmake, which fails if any of them pulls in a torch, ATen or c10 header.
#include "sfn/core/bytes.h"
#include "sfn/core/clock.h"
#include "sfn/core/error.h"
#include "sfn/core/hex.h"
#include "sfn/core/rng.h"
#include "sfn/core/unique_fd.h"
#include "sfn/io/atomic_file_writer.h"
#include "sfn/io/crypto.h"
#include "sfn/io/toml_util.h"
#include "sfn/net/inproc_transport.h"
#include "sfn/net/transport.h"
#include "sfn/net/zmq_transport.h"
