#include "sfn/searcher/pareto_front.h"

#include "sfn/core/bytes.h"
#include "sfn/core/error.h"
#include "sfn/io/atomic_file_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace sfn {

namespace {

std::string fmtDouble(double v, int precision = 6) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

void writeText(const std::string& path, const std::string& text) {
  writeFileAtomically(path, asBytes(text));
}

// gnuplot single-quoted string: a quote is written twice.
std::string gpQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string readSmallFile(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.size() > max_bytes) text.resize(max_bytes);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// Runs `argv` with stdout and stderr sent to `log_path`, waiting at most `timeout` (then the
// child is killed). Returns "" on exit status 0, else a description of what went wrong.
std::string runBounded(const std::vector<std::string>& argv, const std::string& log_path,
                       std::chrono::milliseconds timeout) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return rc == ENOENT ? argv[0] + " is not installed (not found on PATH)"
                        : "cannot start " + argv[0] + ": " + std::strerror(rc);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return "waitpid failed: " + std::string(std::strerror(errno));
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return argv[0] + " did not finish within " + std::to_string(timeout.count()) + " ms";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  const std::string log = readSmallFile(log_path, 2000);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
    return argv[0] + " is not installed (exit 127)";
  return argv[0] + " failed (" +
         (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                            : "signal " + std::to_string(WTERMSIG(status))) +
         ")" + (log.empty() ? "" : ": " + log);
}

}  // namespace

ParetoFront::ParetoFront(std::vector<ParetoPoint> points) : points_(std::move(points)) {
  std::set<std::string> devices;
  for (const auto& p : points_)
    for (const auto& [d, v] : p.latency_ms) devices.insert(d);
  devices_.assign(devices.begin(), devices.end());

  std::vector<const ParetoPoint*> sorted;
  for (const auto& p : points_) sorted.push_back(&p);
  std::sort(sorted.begin(), sorted.end(), [](const ParetoPoint* a, const ParetoPoint* b) {
    if (a->macs != b->macs) return a->macs < b->macs;
    if (a->accuracy != b->accuracy) return a->accuracy > b->accuracy;
    return a->subnet < b->subnet;
  });
  // Sweeping by MACs, a point is on the front iff it beats every cheaper (or equally cheap,
  // earlier sorted) point's accuracy.
  bool any = false;
  double best = 0.0;
  for (const ParetoPoint* p : sorted) {
    if (!any || p->accuracy > best) {
      front_.push_back(*p);
      best = p->accuracy;
      any = true;
    }
  }
}

void ParetoFront::writeCsv(const std::string& path, const std::vector<ParetoPoint>& pts) const {
  std::ostringstream os;
  os << "subnet,macs,params,val_accuracy";
  for (const auto& d : devices_) {
    // Device names come from latency tables; keep the header one CSV field per device.
    std::string col = d;
    for (char& c : col)
      if (c == ',' || c == '"' || c == '\n' || c == '\r') c = '_';
    os << ",latency_ms_" << col;
  }
  os << '\n';
  for (const auto& p : pts) {
    os << p.subnet << ',' << p.macs << ',' << p.params << ',' << fmtDouble(p.accuracy, 8);
    for (const auto& d : devices_) {
      os << ',';
      auto it = p.latency_ms.find(d);
      if (it != p.latency_ms.end()) os << fmtDouble(it->second, 6);
    }
    os << '\n';
  }
  writeText(path, os.str());
}

void ParetoFront::writePointsCsv(const std::string& path) const { writeCsv(path, points_); }
void ParetoFront::writeFrontCsv(const std::string& path) const { writeCsv(path, front_); }

namespace {

// Files of one plot: the PNG, and the helpers next to it that are removed afterwards.
struct PlotFiles {
  explicit PlotFiles(const std::string& png_path)
      : png(png_path),
        points(png + ".points.dat"),
        front(png + ".front.dat"),
        winners(png + ".winners.dat"),
        script(png + ".gp"),
        log(png + ".log") {}
  ~PlotFiles() {
    std::error_code ec;
    for (const auto& f : {points, front, winners, script, log}) std::filesystem::remove(f, ec);
  }
  PlotFiles(const PlotFiles&) = delete;
  PlotFiles& operator=(const PlotFiles&) = delete;

  std::string png, points, front, winners, script, log;
};

std::string gnuplotScript(const PlotFiles& f, const std::string& title, std::size_t num_points,
                          bool with_front, bool with_winners) {
  std::string safe_title;
  for (char c : title) safe_title += (c == '"' || c == '\\') ? '\'' : c;
  std::ostringstream gp;
  // pngcairo draws nicer anti-aliased output; libgd's png is the fallback every
  // gnuplot build has.
  gp << "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
     << "  set terminal pngcairo size 1100,750 noenhanced\n"
     << "} else {\n"
     << "  set terminal png size 1100,750 noenhanced\n"
     << "}\n"
     << "set output " << gpQuote(f.png) << "\n"
     << "set title \"" << safe_title << "\"\n"
     << "set xlabel 'MACs per image (millions)'\n"
     << "set ylabel 'validation accuracy (%)'\n"
     << "set grid\n"
     << "set key bottom right\n"
     << "plot " << gpQuote(f.points)
     << " using ($1/1e6):($2*100) with points pt 7 ps 0.6 lc rgb '#a0a0a0' title 'evaluated ("
     << num_points << ")'";
  if (with_front)
    gp << ", \\\n  " << gpQuote(f.front)
       << " using ($1/1e6):($2*100) with linespoints pt 7 ps 0.9 lw 2 lc rgb '#1f77b4' "
          "title 'Pareto front'";
  if (with_winners)
    gp << ", \\\n  " << gpQuote(f.winners)
       << " using ($1/1e6):($2*100) with points pt 9 ps 2.5 lc rgb '#d62728' title "
          "'winners', \\\n  "
       << gpQuote(f.winners)
       << " using ($1/1e6):($2*100):3 with labels offset 0,1.4 tc rgb '#d62728' notitle";
  gp << "\n";
  return gp.str();
}

}  // namespace

PlotResult ParetoFront::writePlot(const std::string& png, const std::vector<ParetoWinner>& winners,
                                  const std::string& title,
                                  std::chrono::milliseconds timeout) const {
  PlotResult result;
  const PlotFiles files(png);
  try {
    std::ostringstream pts, front, win;
    for (const auto& p : points_) pts << p.macs << ' ' << fmtDouble(p.accuracy, 8) << '\n';
    for (const auto& p : front_) front << p.macs << ' ' << fmtDouble(p.accuracy, 8) << '\n';
    for (const auto& w : winners)
      win << w.macs << ' ' << fmtDouble(w.accuracy, 8) << ' ' << w.target << '\n';
    writeText(files.points, pts.str());
    writeText(files.front, front.str());
    writeText(files.winners, win.str());
    writeText(files.script,
              gnuplotScript(files, title, points_.size(), !front_.empty(), !winners.empty()));

    std::error_code ec;
    std::filesystem::remove(png, ec);
    const std::string err = runBounded({"gnuplot", files.script}, files.log, timeout);
    if (!err.empty()) {
      result.message = err;
    } else if (!std::filesystem::exists(png)) {
      result.message = "gnuplot wrote no " + png;
    } else {
      result.written = true;
    }
  } catch (const std::exception& e) {
    result.message = std::string("cannot prepare the plot: ") + e.what();
  }
  // gnuplot may leave an empty or half-written image behind when it fails: no image at all
  // is the honest result.
  if (!result.written) {
    std::error_code ec;
    std::filesystem::remove(png, ec);
  }
  return result;
}

}  // namespace sfn
