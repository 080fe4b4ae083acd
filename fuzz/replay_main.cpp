// A main() for fuzz harnesses in builds without libFuzzer (the default GCC build).
//
//   fuzz_NAME PATH...                          replay: run the harness once on every file
//                                              (the committed corpus and past findings)
//   fuzz_NAME -max_total_time=S [-seed=N] [-artifact_prefix=P] PATH...
//                                              mutate: for S seconds, feed the harness
//                                              random mutations of the files
//
// Mutation mode exists because clang 14 cannot compile LibTorch 1.13's headers in C++20
// (libstdc++ 12's constexpr std::vector over an incomplete c10::IValue), so the torch-using
// harnesses cannot be libFuzzer binaries here. It is blind (no coverage feedback): byte
// flips, random and boundary bytes, inserted, erased and duplicated ranges, truncation and
// splices of two corpus files. A finding aborts the process; the input that caused it is
// written to P + "crash" first (from the signal handler), and the exit is non-zero.
// Prints "stat::number_of_executed_units: N" like libFuzzer, for scripts/fuzz.sh.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using Input = std::vector<std::uint8_t>;

// What the signal handler writes out: the input being run and where to put it. Set before
// each run; read only by the handler of the fatal signal that ends the process.
struct CrashRecord {
  const Input* current = nullptr;
  char path[4096] = {};
};
CrashRecord* g_crash = nullptr;  // NOLINT: a signal handler can reach nothing else

extern "C" void onFatalSignal(int sig) {
  if (g_crash && g_crash->current && g_crash->path[0]) {
    const int fd = ::open(g_crash->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      (void)!::write(fd, g_crash->current->data(), g_crash->current->size());
      ::close(fd);
    }
    static const char msg[] = "fuzz: finding; input written to the artifact path\n";
    (void)!::write(2, msg, sizeof msg - 1);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

bool readFile(const std::filesystem::path& file, Input& out) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), {});
  return true;
}

std::vector<Input> collect(const std::vector<std::string>& paths) {
  std::vector<Input> inputs;
  for (const std::string& p : paths) {
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.emplace_back(p);
    }
    for (const auto& f : files) {
      Input in;
      if (!readFile(f, in)) {
        std::fprintf(stderr, "cannot read %s\n", f.c_str());
        std::exit(1);
      }
      inputs.push_back(std::move(in));
    }
  }
  return inputs;
}

std::uint8_t boundaryByte(std::mt19937_64& rng) {
  static constexpr std::uint8_t kValues[] = {0x00, 0x01, 0x7f, 0x80, 0xfe,
                                             0xff, '"',  '[',  '=',  '\n'};
  return kValues[rng() % sizeof kValues];
}

void mutateOnce(Input& x, const std::vector<Input>& corpus, std::mt19937_64& rng) {
  const auto pos = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  switch (rng() % 7) {
    case 0:
      if (!x.empty()) x[pos(x.size())] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      break;
    case 1:
      if (!x.empty()) x[pos(x.size())] = static_cast<std::uint8_t>(rng());
      break;
    case 2:
      if (!x.empty()) x[pos(x.size())] = boundaryByte(rng);
      break;
    case 3: {  // insert random bytes
      const std::size_t at = pos(x.size() + 1), n = 1 + rng() % 16;
      for (std::size_t i = 0; i < n; ++i)
        x.insert(x.begin() + at, static_cast<std::uint8_t>(rng()));
      break;
    }
    case 4:  // erase a range
      if (!x.empty()) {
        const std::size_t at = pos(x.size()), n = 1 + pos(std::min<std::size_t>(x.size() - at, 64));
        x.erase(x.begin() + at, x.begin() + at + n);
      }
      break;
    case 5:  // truncate
      x.resize(pos(x.size() + 1));
      break;
    default: {  // splice: our head, another input's tail
      const Input& other = corpus[pos(corpus.size())];
      x.resize(pos(x.size() + 1));
      x.insert(x.end(), other.begin() + pos(other.size() + 1), other.end());
    }
  }
}

int replay(const std::vector<Input>& corpus) {
  for (const Input& in : corpus) (void)LLVMFuzzerTestOneInput(in.data(), in.size());
  std::printf("%zu inputs replayed\n", corpus.size());
  return 0;
}

int mutate(const std::vector<Input>& corpus, double seconds, std::uint64_t seed,
           const std::string& artifact_prefix) {
  CrashRecord record;
  std::snprintf(record.path, sizeof record.path, "%scrash", artifact_prefix.c_str());
  g_crash = &record;
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, onFatalSignal);
  std::mt19937_64 rng(seed);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::uint64_t runs = 0;
  Input x;
  while (std::chrono::steady_clock::now() < end) {
    x = corpus[rng() % corpus.size()];
    for (std::uint64_t i = 0, n = 1 + rng() % 8; i < n; ++i) mutateOnce(x, corpus, rng);
    if (x.size() > (1u << 20)) x.resize(1u << 20);
    record.current = &x;
    (void)LLVMFuzzerTestOneInput(x.data(), x.size());
    ++runs;
  }
  record.current = nullptr;
  std::printf("stat::number_of_executed_units: %llu\n", static_cast<unsigned long long>(runs));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0;
  std::uint64_t seed = 1;
  std::string artifact_prefix = "./";
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    if (a.starts_with("-max_total_time=")) {
      seconds = std::stod(std::string(a.substr(16)));
    } else if (a.starts_with("-seed=")) {
      seed = std::stoull(std::string(a.substr(6)));
    } else if (a.starts_with("-artifact_prefix=")) {
      artifact_prefix = std::string(a.substr(17));
    } else if (a.starts_with("-")) {
      continue;  // other libFuzzer flags mean nothing here
    } else {
      paths.emplace_back(a);
    }
  }
  const std::vector<Input> corpus = collect(paths);
  if (corpus.empty()) {
    std::fprintf(stderr, "no inputs found\n");
    return 1;
  }
  return seconds > 0 ? mutate(corpus, seconds, seed, artifact_prefix) : replay(corpus);
}
