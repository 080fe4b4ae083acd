// The one strict TOML reader behind every sfn configuration file: run configs, SuperNet
// presets, device profiles and search targets (CURVE key files are not TOML; see
// sfn/net/curve_keys.h).
//
// The rules, the same for every file:
// - Typed reads. A value of the wrong type is a ConfigError naming the file, the key
//   ("round.clients_per_round"), the expected and the found type; it never falls back to
//   the default. Integers may be written as whole floats (20e6) and must fit the target
//   type: a value that does not is a ConfigError naming the key and the type's range, never
//   a wrapped number. Floating-point keys accept integers.
// - Unknown keys are errors. rejectUnknown() names the first key of a table that no read
//   asked for, with a "did you mean" for a near miss of a known key.
// - Required keys are read with require(); get() leaves an absent optional key's default.
// - Relative paths (getPath) are resolved against the folder of the file that names them;
//   values set on the command line (applyOverride) name paths relative to the working
//   directory.
//
// A reader is a view of one table of a parsed document; the sub-table readers it hands out
// share that document. Not thread-safe (reads record which keys were used).
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sfn {

class TomlReader {
 public:
  // Parses `text`; `origin` names it in messages (a file path, "design space"). Relative
  // paths resolve against `base_dir`. Throws ConfigError "origin:line: reason" on bad syntax.
  static TomlReader parse(std::string_view text, const std::string& origin,
                          const std::string& base_dir = ".");
  // Reads and parses the file at `path` (its folder is the base of relative paths). Throws
  // IoError "cannot read <what> '<path>'" if it cannot be read, ConfigError as parse().
  static TomlReader load(const std::string& path, std::string_view what);

  // Sets a dotted key ("round.clients_per_round") to a value in TOML syntax; bare words are
  // strings (round.policy=random). Only valid on the document's root reader, before reads.
  // Throws ConfigError for a malformed assignment, an integer beyond 64 bits or a path
  // through a non-table.
  void applyOverride(const std::string& assignment);

  // Whether the key is present (marks it as known).
  bool has(std::string_view key);
  // Optional key: stores the value in `out` and returns true if present, else leaves `out`
  // as it is and returns false. T: bool, int, std::int64_t, std::uint64_t, double,
  // std::string, or std::vector of int, std::int64_t, double or std::string.
  template <typename T>
  bool get(std::string_view key, T& out);
  template <typename T>
  std::optional<T> optional(std::string_view key) {
    T v{};
    if (!get(key, v)) return std::nullopt;
    return v;
  }
  // Required key: ConfigError "... is missing" when absent.
  template <typename T>
  T require(std::string_view key) {
    T v{};
    if (!get(key, v)) fail(key, "is missing");
    return v;
  }
  // A string naming a file or folder, resolved as described above (empty and absolute
  // paths stay as they are).
  bool getPath(std::string_view key, std::string& out);

  // The sub-table [key]. An absent one reads as empty (every get() keeps its default); a
  // key that is not a table is a ConfigError.
  TomlReader table(std::string_view key);
  // The entries of an array of tables [[key]] (empty if absent), named "key[i]" in
  // messages. ConfigError if the key is not an array of tables.
  std::vector<TomlReader> tables(std::string_view key);
  // The keys of this table in file order, all marked as known (for tables keyed by name,
  // such as [devices.<class>]).
  std::vector<std::string> keys();
  // Whether the table exists in the document.
  bool exists() const { return table_ != nullptr; }

  // Throws ConfigError for the first key that no read asked for.
  void rejectUnknown() const;

  // "origin: 'table.key'" for messages about a value this reader read.
  std::string where(std::string_view key) const;
  // Throws ConfigError "<where(key)> <why>".
  [[noreturn]] void fail(std::string_view key, std::string_view why) const;
  const std::string& origin() const;
  const std::string& baseDir() const;

 private:
  struct Document;  // the parsed document, its origin, base folder and overridden keys

  TomlReader(std::shared_ptr<Document> doc, const void* table, std::string prefix);
  std::string dotted(std::string_view key) const;
  const void* node(std::string_view key);  // marks `key` as used; nullptr if absent

  std::shared_ptr<Document> doc_;
  // The toml::table this reader views (opaque so this header does not pull in toml++);
  // nullptr for an absent table.
  const void* table_ = nullptr;
  std::string prefix_;  // dotted path of this table ("" for the root, "device[2]")
  std::set<std::string, std::less<>> used_;
};

}  // namespace sfn
