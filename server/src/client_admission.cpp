#include "sfn/server/client_admission.h"

#include <string>

namespace sfn {
namespace {

std::string shapeText(std::uint32_t c, std::uint32_t h, std::uint32_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

RejectMsg dataMismatch(std::string why) {
  return RejectMsg{RejectCode::kDataMismatch, std::move(why)};
}

}  // namespace

ClientAdmission::ClientAdmission(const DesignSpace& space, std::string server_name,
                                 std::string run_id, std::uint64_t max_samples)
    : space_(space),
      space_toml_(space.toToml()),
      server_name_(std::move(server_name)),
      run_id_(std::move(run_id)),
      max_samples_(max_samples) {}

WelcomeMsg ClientAdmission::welcome() const {
  WelcomeMsg w;
  w.server_name = server_name_;
  w.protocol_version = kProtocolVersion;
  w.run_id = run_id_;
  w.design_space = space_toml_;
  return w;
}

std::variant<Admitted, RejectMsg> ClientAdmission::admit(const RegisterMsg& msg) const {
  if (msg.shard && msg.shard->count > 0) return admitShard(*msg.shard);
  return admitOwnData(msg);
}

std::variant<Admitted, RejectMsg> ClientAdmission::admitOwnData(const RegisterMsg& msg) const {
  if (!msg.data)
    return dataMismatch("the Register does not describe the client's data (input shape, labels)");
  const DataInfo& d = *msg.data;
  const auto side = static_cast<std::uint32_t>(space_.image_size);
  const auto channels = static_cast<std::uint32_t>(space_.in_channels);
  if (d.channels != channels || d.height != side || d.width != side)
    return dataMismatch("images are " + shapeText(d.channels, d.height, d.width) +
                        " but the run's SuperNet '" + space_.name + "' takes " +
                        shapeText(channels, side, side));
  if (d.max_label < 0 || d.max_label >= space_.num_classes)
    return dataMismatch("label " + std::to_string(d.max_label) + " is outside the run's " +
                        std::to_string(space_.num_classes) + " classes [0, " +
                        std::to_string(space_.num_classes) + ")");
  if (msg.samples == 0 || msg.samples > max_samples_)
    return RejectMsg{RejectCode::kSampleCountOutOfRange,
                     "sample count " + std::to_string(msg.samples) + " is outside [1, " +
                         std::to_string(max_samples_) + "]"};
  return Admitted{msg.samples, welcome()};
}

std::variant<Admitted, RejectMsg> ClientAdmission::admitShard(const ShardRequest& shard) const {
  const std::string which =
      "shard " + std::to_string(shard.index) + " of " + std::to_string(shard.count);
  if (!shards_)
    return dataMismatch(which +
                        " requested, but this server does not serve shards of its "
                        "dataset: train on your own data (--data)");
  const std::optional<std::uint64_t> samples = shards_->size(shard.index, shard.count);
  if (!samples || *samples == 0)
    return dataMismatch(which + " does not exist in this run's " +
                        std::string(toString(shards_->settings.dataset)) + " partition");
  Admitted a{*samples, welcome()};
  a.welcome.shard = shards_->settings;
  a.welcome.shard->samples = *samples;
  return a;
}

}  // namespace sfn
