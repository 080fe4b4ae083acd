// A device app's use of libsfn-client, built against an installed sfn with nothing but its
// public header (tests/package/install_consumer.sh, deb_packages.sh).
//
//   sfn_consumer check
//       the header's and the library's versions agree, and failures reach the app as
//       sfn::ClientError of the documented kind (thrown inside the library, caught here)
//   sfn_consumer run ENDPOINT SERVER_PUB CLIENT_KEY SAMPLES
//       trains on SAMPLES generated samples (1x28x28, labels 0..9) until the server's run is
//       over; exit 0 if it finished after sending at least one update
//   sfn_consumer stop ENDPOINT SERVER_PUB CLIENT_KEY SAMPLES
//       run() on a thread; once registered, stop() from this one: exit 0 if run() returns
//       kStopped within 30 s
#include <sfn/sfn_client.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <thread>

namespace {

// Deterministic images: what matters here is the path through the library, not accuracy.
class GeneratedSamples final : public sfn::SampleSource {
 public:
  GeneratedSamples(std::int64_t count, float peak) : count_(count), peak_(peak) {}
  std::int64_t size() const override { return count_; }
  sfn::SampleShape shape() const override { return {1, 28, 28}; }
  std::int64_t read(std::int64_t index, std::span<float> pixels) const override {
    for (std::size_t p = 0; p < pixels.size(); ++p)
      pixels[p] = peak_ * static_cast<float>((index * 31 + static_cast<std::int64_t>(p)) % 97) / 96;
    return index % 10;
  }

 private:
  std::int64_t count_;
  float peak_;  // > 1 makes samples the library must refuse
};

int fail(const std::string& what) {
  std::cerr << "FAIL: " << what << "\n";
  return 1;
}

// Runs `make` and returns the kind of the ClientError it throws, or 0.
template <typename F>
int errorKindOf(F make) {
  try {
    make();
  } catch (const sfn::ClientError& e) {
    std::cout << "ClientError (kind " << static_cast<int>(e.kind()) << "): " << e.what() << "\n";
    return static_cast<int>(e.kind());
  }
  return 0;
}

int check() {
  const std::string library = sfn::clientLibraryVersion();
  std::cout << "header " << SFN_CLIENT_VERSION << ", library " << library << "\n";
  if (library != SFN_CLIENT_VERSION) return fail("header and library versions differ");
  sfn::ClientSettings bad_endpoint;
  bad_endpoint.server = "localhost:5555";  // no scheme
  bad_endpoint.insecure = true;
  if (errorKindOf([&] { sfn::SfnClient(bad_endpoint, GeneratedSamples(20, 1.0F)).connect(); }) !=
      static_cast<int>(sfn::ClientErrorKind::kConfig))
    return fail("an endpoint without tcp:// is not a configuration error");
  sfn::ClientSettings fine = bad_endpoint;
  fine.server = "tcp://127.0.0.1:5555";
  if (errorKindOf([&] { sfn::SfnClient(fine, GeneratedSamples(20, 2.0F)); }) !=
      static_cast<int>(sfn::ClientErrorKind::kData))
    return fail("pixels outside [0, 1] are not a data error");
  std::cout << "ok\n";
  return 0;
}

sfn::ClientSettings settingsFrom(char** argv) {
  sfn::ClientSettings settings;
  settings.server = argv[2];
  settings.server_key_file = argv[3];
  settings.key_file = argv[4];
  settings.name = "consumer";
  settings.log = [](std::string_view level, std::string_view line) {
    std::cout << "[" << level << "] " << line << std::endl;
  };
  return settings;
}

int stopWhenRegistered(char** argv) {
  sfn::SfnClient client(settingsFrom(argv), GeneratedSamples(std::atoll(argv[5]), 1.0F));
  client.connect();
  sfn::ClientOutcome outcome = sfn::ClientOutcome::kFinished;
  std::thread runner([&] { outcome = client.run(); });
  const bool registered = client.waitRegistered(std::chrono::seconds(60));
  const auto stop_at = std::chrono::steady_clock::now();
  client.stop();
  runner.join();
  const auto took = std::chrono::steady_clock::now() - stop_at;
  std::cout << "registered " << registered << ", outcome " << sfn::toString(outcome) << " after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  if (!registered) return fail("not registered within 60 s");
  if (outcome != sfn::ClientOutcome::kStopped) return fail("run() did not end as stopped");
  if (took > std::chrono::seconds(30)) return fail("run() took more than 30 s to stop");
  if (client.registered()) return fail("still registered after stopping");
  return 0;
}

int run(char** argv) {
  sfn::SfnClient client(settingsFrom(argv), GeneratedSamples(std::atoll(argv[5]), 1.0F));
  client.connect();
  const sfn::ClientOutcome outcome = client.run();
  std::cout << "outcome " << sfn::toString(outcome) << ", updates sent " << client.updatesSent()
            << "\n";
  if (outcome != sfn::ClientOutcome::kFinished) return fail("the run did not finish");
  if (client.updatesSent() < 1) return fail("no update was sent");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "check" && argc == 2) return check();
    if (mode == "run" && argc == 6) return run(argv);
    if (mode == "stop" && argc == 6) return stopWhenRegistered(argv);
  } catch (const sfn::ClientError& e) {
    return fail(std::string("ClientError: ") + e.what());
  }
  std::cerr << "usage: sfn_consumer check | run|stop ENDPOINT SERVER_PUB CLIENT_KEY SAMPLES\n";
  return 2;
}
