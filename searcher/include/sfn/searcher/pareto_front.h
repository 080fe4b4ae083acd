// Everything the search evaluated, its accuracy-vs-MACs Pareto front, as CSV and as a PNG
// plot (drawn by gnuplot when it is installed).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sfn {

struct ParetoPoint {
  std::string subnet;  // canonical text (CSV-safe)
  std::int64_t macs = 0;
  std::int64_t params = 0;
  double accuracy = 0.0;                     // validation accuracy
  std::map<std::string, double> latency_ms;  // predicted, by device name
};

// A search winner, highlighted in the plot.
struct ParetoWinner {
  std::string target;
  std::int64_t macs = 0;
  double accuracy = 0.0;
};

struct PlotResult {
  bool written = false;
  std::string message;  // why not, when !written (for a warning)
};

class ParetoFront {
 public:
  explicit ParetoFront(std::vector<ParetoPoint> points);

  const std::vector<ParetoPoint>& points() const { return points_; }
  // The points no other point dominates (another with MACs <= and accuracy >=, one of them
  // strictly), by MACs ascending (accuracy then rises strictly along the front). Of points
  // identical in MACs and accuracy, the first (by text) is kept.
  const std::vector<ParetoPoint>& front() const { return front_; }

  // CSV with header subnet,macs,params,val_accuracy,latency_ms_<device>... (one latency
  // column per device seen; empty where unknown). Written atomically; throws IoError.
  void writePointsCsv(const std::string& path) const;
  void writeFrontCsv(const std::string& path) const;

  // Draws all points, the front and the winners into `png` with gnuplot. Its data files and
  // script go next to the PNG (<png>.gp, <png>.points.dat, <png>.front.dat,
  // <png>.winners.dat) and are removed afterwards. gnuplot gets at most `timeout`; a missing
  // gnuplot, a failure or a timeout give written = false and a message, never an exception.
  PlotResult writePlot(const std::string& png, const std::vector<ParetoWinner>& winners,
                       const std::string& title,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  void writeCsv(const std::string& path, const std::vector<ParetoPoint>& pts) const;
  std::vector<ParetoPoint> points_;
  std::vector<ParetoPoint> front_;
  std::vector<std::string> devices_;
};

}  // namespace sfn
