// Small, fast, serializable random generator (xoshiro256**, seeded through splitmix64).
//
// 32 bytes of state, so thousands of virtual clients can each own one (std::mt19937_64
// is 5 KB). Satisfies UniformRandomBitGenerator, so <random> distributions work with it.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

namespace sfn {

class Rng {
 public:
  using result_type = std::uint64_t;

  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }
  // A stream derived from (seed, a, b), e.g. (run seed, round, client): independent
  // streams without storing any per-client generator.
  Rng(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) {
    reseed(mix(mix(seed) ^ (a * 0x9E3779B97F4A7C15ULL)) ^ (b * 0xC2B2AE3D27D4EB4FULL));
  }

  void reseed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& s : s_) s = splitmix(x);
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  result_type operator()() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform integer in [0, n) without modulo bias (Lemire's method). n > 0.
  std::uint64_t below(std::uint64_t n) {
    __uint128_t m = static_cast<__uint128_t>((*this)()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>((*this)()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  // Uniform double in [0, 1).
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  const std::array<std::uint64_t, 4>& state() const { return s_; }
  void setState(const std::array<std::uint64_t, 4>& s) { s_ = s; }

  static std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix(std::uint64_t& x) {
    x += 0x9E3779B97F4A7C15ULL;
    return mix(x);
  }
  std::array<std::uint64_t, 4> s_{};
};

}  // namespace sfn
