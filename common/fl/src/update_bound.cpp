#include "sfn/fl/update_bound.h"

#include "sfn/core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sfn {

void UpdateBoundOptions::validate() const {
  if (!(multiple >= 0) || !std::isfinite(multiple))
    SFN_THROW(ConfigError, "robust.bound_multiple must be >= 0 (got ", multiple, ")");
  if (multiple > 0 && multiple < 1)
    SFN_THROW(ConfigError, "robust.bound_multiple must be 0 (off) or >= 1 (got ", multiple,
              "): below 1 it rejects half the honest updates");
  if (!(cap >= 0) || !std::isfinite(cap))
    SFN_THROW(ConfigError, "robust.bound_cap must be >= 0 (got ", cap, ")");
  if (min_history < 1)
    SFN_THROW(ConfigError, "robust.bound_min_history must be >= 1 (got ", min_history, ")");
  if (window < min_history)
    SFN_THROW(ConfigError, "robust.bound_window must be >= robust.bound_min_history (got ", window,
              " < ", min_history, ")");
}

std::string BoundCheck::describe() const {
  const std::string what = tensor.empty() ? "change" : "tensor '" + tensor + "' change";
  switch (verdict) {
    case BoundVerdict::kWithin:
      return "within";
    case BoundVerdict::kOverCap:
      return fmt::format("{} rms {:.4g} over the cap {:.4g}", what, rms, limit);
    case BoundVerdict::kOverMedian:
      return fmt::format("{} rms {:.4g} over the bound {:.4g} (a multiple of the median)", what,
                         rms, limit);
  }
  return "unknown";
}

UpdateBound::UpdateBound(UpdateBoundOptions options) : options_(options) { options_.validate(); }

void UpdateBound::History::add(double v) {
  if (!(v > 0.0) || !std::isfinite(v)) return;  // see the header: free riders are not recorded
  values.push_back(v);
  ++in_round;
}

void UpdateBound::History::endRound(bool keep, std::size_t window) {
  if (!keep) values.erase(values.end() - static_cast<std::ptrdiff_t>(in_round), values.end());
  in_round = 0;
  while (values.size() > window) values.pop_front();
}

// The lower median (no averaging of the two middle values: one less rounding, same robustness).
std::optional<double> UpdateBound::History::median(std::size_t min_history) const {
  if (values.size() < min_history) return std::nullopt;
  std::vector<double> v(values.begin(), values.end());
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>((v.size() - 1) / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

BoundCheck UpdateBound::judge(double rms, const History& h, const std::string& tensor) const {
  BoundCheck c;
  c.rms = rms;
  c.tensor = tensor;
  if (options_.cap > 0 && !(rms <= options_.cap)) {
    c.verdict = BoundVerdict::kOverCap;
    c.limit = options_.cap;
    return c;
  }
  if (options_.multiple > 0) {
    if (const auto med = h.median(static_cast<std::size_t>(options_.min_history))) {
      const double limit = options_.multiple * *med;
      if (!(rms <= limit)) {
        c.verdict = BoundVerdict::kOverMedian;
        c.limit = limit;
      }
    }
  }
  return c;
}

BoundCheck UpdateBound::check(const ChangeNorm& change) const {
  BoundCheck whole = judge(change.rms(), update_, "");
  if (!whole.ok() || !options_.per_tensor) return whole;
  static const History kEmpty;
  for (const TensorChange& t : change.tensors) {
    const auto it = tensors_.find(t.index);
    BoundCheck c = judge(t.rms(), it == tensors_.end() ? kEmpty : it->second, t.name);
    if (!c.ok()) return c;
  }
  return whole;
}

void UpdateBound::accept(const ChangeNorm& change) {
  update_.add(change.rms());
  if (!options_.per_tensor) return;
  for (const TensorChange& t : change.tensors) tensors_[t.index].add(t.rms());
}

void UpdateBound::endRound(bool keep) {
  const auto window = static_cast<std::size_t>(options_.window);
  update_.endRound(keep, window);
  for (auto& [index, h] : tensors_) h.endRound(keep, window);
}

void UpdateBound::restore(const std::vector<double>& rms) {
  update_ = History{};
  tensors_.clear();
  for (double v : rms) update_.add(v);
  update_.endRound(true, static_cast<std::size_t>(options_.window));
}

std::optional<double> UpdateBound::median() const {
  return update_.median(static_cast<std::size_t>(options_.min_history));
}

}  // namespace sfn
