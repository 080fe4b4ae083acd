#include "sfn/train/local_trainer.h"

#include "sfn/core/error.h"
#include "sfn/core/rng.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>

namespace sfn {

void TrainOptions::validate() const {
  if (epochs < 1) SFN_THROW(ConfigError, "train.epochs must be >= 1 (got ", epochs, ")");
  if (batch_size < 1)
    SFN_THROW(ConfigError, "train.batch_size must be >= 1 (got ", batch_size, ")");
  if (!(lr > 0) || !std::isfinite(lr))
    SFN_THROW(ConfigError, "train.lr must be > 0 (got ", lr, ")");
  if (!(momentum >= 0 && momentum < 1))
    SFN_THROW(ConfigError, "train.momentum must be in [0, 1) (got ", momentum, ")");
  if (!(weight_decay >= 0))
    SFN_THROW(ConfigError, "train.weight_decay must be >= 0 (got ", weight_decay, ")");
  try {
    (void)torch::Device(device);
  } catch (const std::exception&) {
    SFN_THROW(ConfigError, "train.device '", device, "' is not a torch device");
  }
}

void checkTorchDevice(const std::string& device, std::string_view what) {
  std::optional<torch::Device> d;
  try {
    d.emplace(device);
  } catch (const std::exception&) {
    SFN_THROW(ConfigError, what, " \"", device,
              "\" is not a torch device (\"cpu\", \"cuda\" or \"cuda:N\")");
  }
  if (d->is_cpu()) return;
  if (!d->is_cuda())
    SFN_THROW(ConfigError, what, " \"", device, "\": sfn runs on \"cpu\" or a CUDA device");
  if (!torch::cuda::is_available())
    SFN_THROW(ConfigError, what, " \"", device,
              "\": this LibTorch build has no CUDA or sees no CUDA device; use \"cpu\"");
  const auto count = torch::cuda::device_count();
  if (d->has_index() && static_cast<std::size_t>(d->index()) >= count)
    SFN_THROW(ConfigError, what, " \"", device, "\": only ", count, " CUDA device(s)");
}

void setTorchThreads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

namespace {

torch::Tensor indexTensor(const IndexList& all, std::size_t begin, std::size_t end) {
  return torch::from_blob(const_cast<std::int64_t*>(all.data() + begin),
                          {static_cast<std::int64_t>(end - begin)}, torch::kInt64);
}

}  // namespace

TrainResult trainLocal(const DesignSpace& space, const SubNetConfig& config,
                       const NamedTensors& init, const Dataset& data, const IndexList& indices,
                       const TrainOptions& opts) {
  opts.validate();
  SFN_ENFORCE(!indices.empty(), ConfigError, "trainLocal: no samples for SubNet ",
              config.toString(space));
  const auto start = std::chrono::steady_clock::now();
  const torch::Device device(opts.device);
  SubNetModule model(space, config);
  model->loadState(init);
  model->to(device);
  model->train();

  torch::optim::SGD optimizer(
      model->parameters(),
      torch::optim::SGDOptions(opts.lr).momentum(opts.momentum).weight_decay(opts.weight_decay));
  IndexList order = indices;
  Rng rng(opts.seed);
  double loss_sum = 0.0;
  std::int64_t seen = 0;
  for (int epoch = 0; epoch < opts.epochs; ++epoch) {
    // Fisher-Yates with our own stream: the order depends on the seed only.
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    for (std::size_t b = 0; b < order.size(); b += static_cast<std::size_t>(opts.batch_size)) {
      const std::size_t e = std::min(order.size(), b + static_cast<std::size_t>(opts.batch_size));
      auto idx = indexTensor(order, b, e);
      auto x = data.images.index_select(0, idx).to(device);
      auto y = data.labels.index_select(0, idx).to(device);
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      if (opts.clip_grad_norm > 0)
        torch::nn::utils::clip_grad_norm_(model->parameters(), opts.clip_grad_norm);
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(e - b);
      seen += static_cast<std::int64_t>(e - b);
    }
  }
  TrainResult result;
  NamedTensors state = model->state();
  for (const auto& t : state) result.slice.add(t.name, t.tensor.detach().to(torch::kCPU).clone());
  result.samples = static_cast<std::int64_t>(indices.size());
  result.mean_loss = seen ? loss_sum / static_cast<double>(seen) : 0.0;
  result.compute_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

EvalResult evaluate(SubNetModule& module, const Dataset& data, const IndexList& indices,
                    int batch_size, const std::string& device_name, const std::atomic<bool>* stop) {
  const torch::Device device(device_name);
  torch::NoGradGuard no_grad;
  const bool was_training = module->is_training();
  module->eval();
  module->to(device);
  IndexList all = indices;
  if (all.empty()) {
    all.resize(static_cast<std::size_t>(data.size()));
    std::iota(all.begin(), all.end(), 0);
  }
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  for (std::size_t b = 0; b < all.size(); b += static_cast<std::size_t>(batch_size)) {
    if (stop != nullptr && stop->load(std::memory_order_relaxed)) {
      module->train(was_training);
      SFN_THROW(Interrupted, "evaluation stopped");
    }
    const std::size_t e = std::min(all.size(), b + static_cast<std::size_t>(batch_size));
    auto idx = indexTensor(all, b, e);
    auto x = data.images.index_select(0, idx).to(device);
    auto y = data.labels.index_select(0, idx).to(device);
    auto logits = module->forward(x);
    loss_sum +=
        torch::nn::functional::cross_entropy(
            logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<std::int64_t>();
  }
  module->train(was_training);
  EvalResult r;
  r.samples = static_cast<std::int64_t>(all.size());
  if (r.samples > 0) {
    r.accuracy = static_cast<double>(correct) / static_cast<double>(r.samples);
    r.mean_loss = loss_sum / static_cast<double>(r.samples);
  }
  return r;
}

std::vector<at::Tensor> sampleBatches(const Dataset& data, const IndexList& indices, int batch_size,
                                      int max_batches) {
  std::vector<at::Tensor> out;
  const std::size_t n = indices.empty() ? static_cast<std::size_t>(data.size()) : indices.size();
  for (std::size_t b = 0; b < n && static_cast<int>(out.size()) < max_batches;
       b += static_cast<std::size_t>(batch_size)) {
    const std::size_t e = std::min(n, b + static_cast<std::size_t>(batch_size));
    if (indices.empty())
      out.push_back(
          data.images.slice(0, static_cast<std::int64_t>(b), static_cast<std::int64_t>(e)));
    else
      out.push_back(data.images.index_select(0, indexTensor(indices, b, e)));
  }
  return out;
}

}  // namespace sfn
