// Writes the seed corpora of the fuzz harnesses (fuzz/corpus/<harness>/): real encodings
// of every wire message kind, a small valid checkpoint, key files and an allowlist. The
// config corpus is the project's own TOML files (scripts/fuzz.sh copies them). Seeds are
// small on purpose: libFuzzer mutates them, and a 2 MB SubNet slice would only slow it.
//
// Usage: sfn_fuzz_make_seeds OUT_DIR   (writes OUT_DIR/wire, OUT_DIR/checkpoint, OUT_DIR/key_files)
#include "sfn/model/checkpoint.h"
#include "sfn/net/curve_keys.h"
#include "sfn/wire/wire.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

void writeBytes(const fs::path& path, const sfn::BytesPtr& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes->data()),
            static_cast<std::streamsize>(bytes->size()));
}

sfn::NamedTensors smallTensors() {
  sfn::NamedTensors t;
  t.add("stem.conv.weight", torch::arange(0, 24, torch::kFloat32).reshape({2, 3, 2, 2}));
  t.add("stem.bn.num_batches_tracked", torch::tensor({int64_t{3}}, torch::kInt64));
  return t;
}

std::vector<sfn::Message> messages() {
  sfn::RegisterMsg own;
  own.client_name = "phone-7";
  own.device_class = "phone";
  own.cores = 4;
  own.memory_bytes = 1 << 30;
  own.samples = 540;
  own.latency = {sfn::LatencyEntry{"stem", 0.04f}};
  own.data = sfn::DataInfo{1, 28, 28, 9};
  sfn::RegisterMsg shard = own;
  shard.samples = 0;
  shard.latency.clear();
  shard.data.reset();
  shard.shard = sfn::ShardRequest{3, 100};
  sfn::WelcomeMsg welcome;
  welcome.client_id = 7;
  welcome.server_name = "server";
  welcome.run_id = "run-1";
  welcome.design_space = "preset = \"tiny\"\n";
  welcome.shard = sfn::ShardSettings{};
  sfn::TrainTaskMsg task;
  task.round = 2;
  task.task_id = 11;
  task.subnet = "d=0-0-0-0;e=0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1-0.1";
  task.tensors = smallTensors();
  task.deadline_ms = 15000;
  sfn::UpdateMsg update;
  update.round = 2;
  update.task_id = 11;
  update.samples = 540;
  update.tensors = smallTensors();
  update.mean_loss = 0.7;
  sfn::EvalTaskMsg eval;
  eval.subnet = task.subnet;
  eval.tensors = smallTensors();
  return {own,
          shard,
          welcome,
          sfn::RejectMsg{sfn::RejectCode::kDataMismatch, "images differ"},
          task,
          update,
          eval,
          sfn::EvalResultMsg{2, 12, 0.8, 0.5, 100},
          sfn::HeartbeatMsg{5},
          sfn::ByeMsg{"done", sfn::ByeCode::kFinished}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out(argv[1]);
  for (const char* d : {"wire", "checkpoint", "key_files"}) fs::create_directories(out / d);
  int i = 0;
  for (const sfn::Message& m : messages())
    writeBytes(out / "wire" / ("message-" + std::to_string(i++)), sfn::encode(m));
  // The checkpoint harness appends the digest itself: the seed is the body without it.
  const fs::path ckpt = out / "checkpoint" / "small-checkpoint";
  sfn::writeCheckpoint(ckpt, smallTensors(), {{"round", 3}, {"run", "fuzz"}});
  fs::resize_file(ckpt, fs::file_size(ckpt) - 32);
  const sfn::CurveKeyPair pair = sfn::generateCurveKeyPair();
  sfn::writeKeyPairFile(out / "key_files" / "client.key", pair);
  sfn::writePublicKeyFile(out / "key_files" / "client.pub", pair.public_key);
  std::ofstream(out / "key_files" / "allowlist")
      << "# clients\npublic-key = \"" << pair.public_key << "\"\n"
      << sfn::generateCurveKeyPair().public_key << "\n";
  return 0;
}
