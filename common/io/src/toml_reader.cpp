#include "sfn/io/toml_reader.h"

#include "sfn/core/error.h"
#include "sfn/io/text_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <sstream>
#include <utility>

namespace sfn {

struct TomlReader::Document {
  toml::table root;
  std::string origin;
  std::string base_dir;
  // Dotted keys set by applyOverride: their paths name files relative to the working
  // directory, not to the file's folder.
  std::set<std::string, std::less<>> overridden;
};

namespace {

const toml::table& asTable(const void* p) { return *static_cast<const toml::table*>(p); }

// "a string", "an integer", ... for "must be X, not Y" messages.
std::string typeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

std::string notA(std::string_view expected, const toml::node& n) {
  return "must be " + std::string(expected) + ", not " + typeName(n);
}

// "is out of range (<value>): must be in [<min>, <max>]", the range being T's: a value that
// does not fit is refused, never wrapped.
template <typename T>
std::string outOfRange(const std::string& value) {
  return "is out of range (" + value + "): must be in [" +
         std::to_string(std::numeric_limits<T>::min()) + ", " +
         std::to_string(std::numeric_limits<T>::max()) + "]";
}

// Whole doubles written for integers (20e6) are accepted when they fit T exactly.
template <typename T>
std::string convertInteger(const toml::node& n, T& out) {
  if (const auto* i = n.as_integer()) {
    const std::int64_t v = i->get();
    if (!std::in_range<T>(v)) return outOfRange<T>(std::to_string(v));
    out = static_cast<T>(v);
    return {};
  }
  if (const auto* f = n.as_floating_point()) {
    const double d = f->get();
    const double limit = std::ldexp(1.0, std::numeric_limits<T>::digits);
    const double low = std::is_signed_v<T> ? -limit : 0.0;
    if (!std::isfinite(d) || d != std::floor(d)) return "must be a whole number";
    if (!(d >= low && d < limit)) {
      std::ostringstream text;
      text << d;
      return outOfRange<T>(text.str());
    }
    out = static_cast<T>(d);
    return {};
  }
  return notA("an integer", n);
}

// Whether `text` is written as a decimal integer ("-12", "4_294_967_298"): an override
// value that TOML refused although it looks like one is an integer beyond 64 bits, not a
// bare-word string.
bool looksLikeInteger(std::string_view text) {
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  return !text.empty() && std::isdigit(static_cast<unsigned char>(text.front())) &&
         std::all_of(text.begin(), text.end(), [](char c) {
           return std::isdigit(static_cast<unsigned char>(c)) || c == '_';
         });
}

// Why `n` cannot be read as T ("" if it can); stores the value on success.
template <typename T>
std::string convert(const toml::node& n, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    const auto* b = n.as_boolean();
    if (b == nullptr) return notA("true or false", n);
    out = b->get();
    return {};
  } else if constexpr (std::is_integral_v<T>) {
    return convertInteger(n, out);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (const auto* i = n.as_integer()) {
      out = static_cast<T>(i->get());
      return {};
    }
    const auto* f = n.as_floating_point();
    if (f == nullptr) return notA("a number", n);
    out = f->get();
    return {};
  } else {
    static_assert(std::is_same_v<T, std::string>);
    const auto* s = n.as_string();
    if (s == nullptr) return notA("a string", n);
    out = s->get();
    return {};
  }
}

template <typename T>
struct IsVector : std::false_type {};
template <typename E>
struct IsVector<std::vector<E>> : std::true_type {};

// Levenshtein distance, for "did you mean" hints on short key names.
std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The known key closest to `key`, if it is close enough to be a typo.
std::string suggestion(std::string_view key, const std::set<std::string, std::less<>>& known) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, key.size() / 3) + 1;
  for (const auto& k : known) {
    const std::size_t d = editDistance(key, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best;
}

}  // namespace

TomlReader::TomlReader(std::shared_ptr<Document> doc, const void* table, std::string prefix)
    : doc_(std::move(doc)), table_(table), prefix_(std::move(prefix)) {}

TomlReader TomlReader::parse(std::string_view text, const std::string& origin,
                             const std::string& base_dir) {
  auto doc = std::make_shared<Document>();
  try {
    doc->root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    SFN_THROW(ConfigError, origin, ":", e.source().begin.line, ": ", e.description());
  }
  doc->origin = origin;
  doc->base_dir = base_dir.empty() ? "." : base_dir;
  const void* root = &doc->root;
  return TomlReader(std::move(doc), root, "");
}

TomlReader TomlReader::load(const std::string& path, std::string_view what) {
  const std::string base = std::filesystem::path(path).parent_path().string();
  return parse(readTextFile(path, std::string(what)), path, base.empty() ? "." : base);
}

void TomlReader::applyOverride(const std::string& assignment) {
  SFN_ENFORCE(prefix_.empty(), ConfigError, "overrides apply to the root table");
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    SFN_THROW(ConfigError, "override '", assignment, "': expected table.key=value");
  const std::string path = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    if (looksLikeInteger(value))
      SFN_THROW(ConfigError, "override '", assignment, "': '", path, "' ",
                outOfRange<std::int64_t>(value));
    parsed = toml::table{{"v", value}};  // bare words are strings: round.policy=random
  }
  toml::table* t = &doc_->root;
  std::string::size_type start = 0;
  for (;;) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (dot == std::string::npos) {
      t->insert_or_assign(part, *parsed.get("v"));
      doc_->overridden.insert(path);
      return;
    }
    if (!t->contains(part)) t->insert(part, toml::table{});
    t = (*t)[part].as_table();
    if (t == nullptr)
      SFN_THROW(ConfigError, "override '", assignment, "': ", part, " is not a table");
    start = dot + 1;
  }
}

const void* TomlReader::node(std::string_view key) {
  used_.emplace(key);
  if (table_ == nullptr) return nullptr;
  return asTable(table_).get(key);
}

bool TomlReader::has(std::string_view key) { return node(key) != nullptr; }

template <typename T>
bool TomlReader::get(std::string_view key, T& out) {
  const auto* n = static_cast<const toml::node*>(node(key));
  if (n == nullptr) return false;
  if constexpr (IsVector<T>::value) {
    const toml::array* a = n->as_array();
    if (a == nullptr) fail(key, notA("an array", *n));
    T values(a->size());
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string why = convert(*a->get(i), values[i]);
      if (!why.empty())
        SFN_THROW(ConfigError, where(std::string(key) + "[" + std::to_string(i) + "]"), " ", why);
    }
    out = std::move(values);
  } else {
    T value{};
    const std::string why = convert(*n, value);
    if (!why.empty()) fail(key, why);
    out = std::move(value);
  }
  return true;
}

template bool TomlReader::get(std::string_view, bool&);
template bool TomlReader::get(std::string_view, int&);
template bool TomlReader::get(std::string_view, std::int64_t&);
template bool TomlReader::get(std::string_view, std::uint64_t&);
template bool TomlReader::get(std::string_view, double&);
template bool TomlReader::get(std::string_view, std::string&);
template bool TomlReader::get(std::string_view, std::vector<int>&);
template bool TomlReader::get(std::string_view, std::vector<std::int64_t>&);
template bool TomlReader::get(std::string_view, std::vector<double>&);
template bool TomlReader::get(std::string_view, std::vector<std::string>&);

bool TomlReader::getPath(std::string_view key, std::string& out) {
  std::string text;
  if (!get(key, text)) return false;
  const std::filesystem::path p(text);
  if (text.empty() || p.is_absolute() || doc_->overridden.count(dotted(key)) != 0)
    out = text;
  else
    out = (std::filesystem::path(doc_->base_dir) / p).lexically_normal().string();
  return true;
}

TomlReader TomlReader::table(std::string_view key) {
  const auto* n = static_cast<const toml::node*>(node(key));
  if (n == nullptr) return TomlReader(doc_, nullptr, dotted(key));
  const toml::table* t = n->as_table();
  if (t == nullptr) fail(key, notA("a table", *n));
  return TomlReader(doc_, t, dotted(key));
}

std::vector<TomlReader> TomlReader::tables(std::string_view key) {
  const auto* n = static_cast<const toml::node*>(node(key));
  if (n == nullptr) return {};
  const toml::array* a = n->as_array();
  if (a != nullptr && a->empty()) return {};
  if (a == nullptr || !a->is_array_of_tables())
    fail(key, notA("an array of tables ([[" + std::string(key) + "]])", *n));
  std::vector<TomlReader> out;
  for (std::size_t i = 0; i < a->size(); ++i)
    out.push_back(
        TomlReader(doc_, a->get(i)->as_table(), dotted(key) + "[" + std::to_string(i) + "]"));
  return out;
}

std::vector<std::string> TomlReader::keys() {
  std::vector<std::string> out;
  if (table_ == nullptr) return out;
  for (const auto& [k, v] : asTable(table_)) out.emplace_back(k.str());
  used_.insert(out.begin(), out.end());
  return out;
}

void TomlReader::rejectUnknown() const {
  if (table_ == nullptr) return;
  for (const auto& [k, v] : asTable(table_)) {
    if (used_.count(k.str()) != 0) continue;
    const std::string hint = suggestion(k.str(), used_);
    SFN_THROW(ConfigError, doc_->origin, ": unknown key '", dotted(k.str()), "'",
              hint.empty() ? std::string() : " (did you mean '" + dotted(hint) + "'?)");
  }
}

std::string TomlReader::dotted(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

std::string TomlReader::where(std::string_view key) const {
  return doc_->origin + ": '" + dotted(key) + "'";
}

void TomlReader::fail(std::string_view key, std::string_view why) const {
  SFN_THROW(ConfigError, where(key), " ", why);
}

const std::string& TomlReader::origin() const { return doc_->origin; }
const std::string& TomlReader::baseDir() const { return doc_->base_dir; }

}  // namespace sfn
