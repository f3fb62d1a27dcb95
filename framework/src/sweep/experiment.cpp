#include "sweep/experiment.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "core/evaluator.hpp"
#include "core/hash.hpp"
#include "sdk/safe_file.hpp"
#include "recrun/text.hpp"
#include "sweep/search_space.hpp"

namespace recrun::sweep {

namespace fs = std::filesystem;

std::string Origin::describe() const {
  if (!override_text.empty()) return override_text;
  if (line > 0) return fmt::format("{}:{}:{}", file.string(), line, column);
  return file.string();
}

ExperimentError::ExperimentError(const Origin& origin, const std::string& what)
    : Error(fmt::format("{}: {}", origin.describe(), what)), origin_(origin) {}

// --- limits ----------------------------------------------------------------------------------

namespace {

// toml++ 3.3 bounds its own recursion over nested arrays and inline tables (256 levels,
// TOML_MAX_NESTED_VALUES) but not dotted keys or table headers: each part of `a.b.c` is one
// more table, and the tree's destructor recurses once per level, so some 35,000 parts overflow
// an 8 MiB stack; 255 inline tables with 64-part keys (a 33 KB file within toml++'s limit)
// overflow 1 MiB (tests/framework/test_toml_nesting.cpp, docs/architecture.md). The tree is as
// deep as the containers plus the key parts along a path, so this scan counts both and refuses
// a file past kMaxTomlNesting before the parser sees it; no experiment needs more than a handful
// of levels. It follows TOML's strings (basic, literal, multi-line, with escapes) and comments,
// so brackets and dots inside them do not count.
void check_toml_nesting(std::string_view text, const Origin& where) {
  std::int64_t line = 1, column = 0;
  int depth = 0;           // nesting of the current list or table
  std::vector<int> open;   // depth outside each open [ or {
  int dots = 0;            // dots of the key (or table header) being read
  int key_dots = 0;        // dots of the key whose value is being read
  const auto refuse = [&](std::string_view what) {
    Origin o = where;
    if (o.override_text.empty()) {
      o.line = line;
      o.column = column;
    }
    throw ExperimentError(
        o, fmt::format("{} nest more than {} levels deep here; an experiment file needs a few "
                       "(this limit keeps the TOML parser, which recurses, from overflowing the "
                       "stack)",
                       what, kMaxTomlNesting));
  };
  const std::size_t n = text.size();
  std::size_t i = 0;
  const auto starts = [&](std::size_t at, std::string_view s) {
    return text.substr(at, s.size()) == s;
  };
  const auto advance = [&](std::size_t to) {  // moves to `to`, counting lines
    for (; i < to && i < n; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 0;
      } else {
        ++column;
      }
    }
  };
  while (i < n) {
    const char c = text[i];
    if (c == '#') {  // comment: to the end of the line
      const auto eol = text.find('\n', i);
      advance(eol == std::string_view::npos ? n : eol);
      continue;
    }
    if (c == '"' || c == '\'') {
      const bool basic = c == '"';
      const std::string_view triple = basic ? "\"\"\"" : "'''";
      if (starts(i, triple)) {
        advance(i + 3);
        while (i < n && !starts(i, triple)) advance(i + (basic && text[i] == '\\' ? 2 : 1));
        advance(i + 3);
        while (i < n && text[i] == c) advance(i + 1);  // """a"""" ends with quotes in the string
      } else {
        advance(i + 1);
        while (i < n && text[i] != c && text[i] != '\n')
          advance(i + (basic && text[i] == '\\' ? 2 : 1));
        advance(i + 1);
      }
      continue;
    }
    if (c == '[' || c == '{') {
      // A value nests as deep as its container plus the dotted parts of its key.
      ++column;
      open.push_back(depth);
      depth += key_dots + 1;
      if (depth > kMaxTomlNesting) refuse("lists, tables and dotted keys");
      dots = key_dots = 0;
      ++i;
      continue;
    }
    if (c == ']' || c == '}') {
      if (!open.empty()) {
        depth = open.back();
        open.pop_back();
      }
      dots = key_dots = 0;
    } else if (c == '.') {
      // Each dot of a key (a.b.c = 1, [a.b.c]) opens a table; a number has one.
      ++column;
      if (depth + ++dots > kMaxTomlNesting) refuse("lists, tables and dotted keys");
      ++i;
      continue;
    } else if (c == '=') {
      key_dots = dots;
      dots = 0;
    } else if (c == ',' || c == '\n') {
      dots = key_dots = 0;
    }
    advance(i + 1);
  }
}

}  // namespace

// --- overrides -------------------------------------------------------------------------------

Override parse_override(const std::string& text) {
  Origin where;
  where.override_text = fmt::format("--set {}", text);
  const auto eq = text.find('=');
  const auto dot = text.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 ||
      dot + 1 == eq) {
    throw ExperimentError(where,
                          "expected GROUP.KEY=VALUE (or SECTION.KEY=VALUE for experiment, data, "
                          "protocol, execution; '*.KEY=VALUE' sets KEY in every group that has it)");
  }
  return Override{text.substr(0, dot), text.substr(dot + 1, eq - dot - 1), text.substr(eq + 1),
                  text};
}

namespace {

const std::set<std::string> kSections = {"experiment", "data", "protocol", "execution"};

Origin origin_at(const toml::source_region& region, const fs::path& file) {
  Origin o;
  o.file = file;
  o.line = region.begin.line;
  o.column = region.begin.column;
  return o;
}

std::string_view toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "a list";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}

std::string unknown_key_message(std::string_view where, const std::string& key,
                                const std::vector<std::string>& known) {
  std::string hint;
  if (auto m = did_you_mean(key, known)) hint = fmt::format(" (did you mean '{}'?)", *m);
  return fmt::format("unknown key '{}' in {}{}; known keys: {}", key, where, hint,
                     fmt::join(known, ", "));
}

void check_name(const std::string& name, const Origin& o, std::string_view what) {
  const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
  if (!ok || name == "." || name == "..")
    throw ExperimentError(
        o, fmt::format("{} '{}' must be non-empty and use only letters, digits, '_', '-' and '.' "
                       "(it names directories under results/)",
                       what, text::printable(name, 80)));
  // It becomes a directory and part of file names (reports/<name>.html, <name>-stats.html):
  // refused here, in the dry run too, rather than by the file system once rows are registered.
  if (name.size() > kMaxNameLength)
    throw ExperimentError(
        o, fmt::format("{} '{}' is {} characters long; at most {} are allowed (it names "
                       "directories and files under results/): shorten it",
                       what, text::printable(name, 40), name.size(), kMaxNameLength));
}

// Reads one value of the framework's own keys, with the type the key needs.
class ValueReader {
 public:
  ValueReader(const toml::node& node, Origin origin, std::string key)
      : node_(node), origin_(std::move(origin)), key_(std::move(key)) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw ExperimentError(origin_, fmt::format("'{}' {}", key_, why));
  }
  std::string string() const {
    if (const auto* s = node_.as_string()) return s->get();
    fail(fmt::format("must be a string, got {}", toml_type_name(node_)));
  }
  std::int64_t integer() const {
    if (const auto* i = node_.as_integer()) return i->get();
    fail(fmt::format("must be an integer, got {}", toml_type_name(node_)));
  }
  bool boolean() const {
    if (const auto* b = node_.as_boolean()) return b->get();
    fail(fmt::format("must be true or false, got {}", toml_type_name(node_)));
  }
  double number() const {
    if (const auto* i = node_.as_integer()) return static_cast<double>(i->get());
    if (const auto* f = node_.as_floating_point()) return f->get();
    fail(fmt::format("must be a number, got {}", toml_type_name(node_)));
  }
  std::vector<std::string> strings() const {
    std::vector<std::string> out;
    const auto* a = node_.as_array();
    if (!a) fail(fmt::format("must be a list of strings, got {}", toml_type_name(node_)));
    for (const auto& e : *a) {
      if (const auto* s = e.as_string()) {
        out.push_back(s->get());
      } else {
        ValueReader(e, origin_for(e), key_).fail(
            fmt::format("must be a list of strings; one element is {}", toml_type_name(e)));
      }
    }
    return out;
  }
  std::vector<std::int64_t> integers() const {
    std::vector<std::int64_t> out;
    const auto* a = node_.as_array();
    if (!a) fail(fmt::format("must be a list of integers, got {}", toml_type_name(node_)));
    for (const auto& e : *a) {
      if (const auto* i = e.as_integer()) {
        out.push_back(i->get());
      } else {
        ValueReader(e, origin_for(e), key_).fail(
            fmt::format("must be a list of integers; one element is {}", toml_type_name(e)));
      }
    }
    return out;
  }
  const Origin& origin() const { return origin_; }

 private:
  // Elements of an override's value have no position of their own; file values do.
  Origin origin_for(const toml::node& e) const {
    if (!origin_.override_text.empty()) return origin_;
    return origin_at(e.source(), origin_.file);
  }
  const toml::node& node_;
  Origin origin_;
  std::string key_;
};

// Converts a parameter value written in TOML into a ParamValue. Lists are lists of strings or
// of numbers (the list types schemas have); anything else is reported at its position.
ParamValue to_param_value(const toml::node& n, const Origin& o, const std::string& key) {
  switch (n.type()) {
    case toml::node_type::integer: return n.as_integer()->get();
    case toml::node_type::floating_point: return n.as_floating_point()->get();
    case toml::node_type::boolean: return n.as_boolean()->get();
    case toml::node_type::string: return n.as_string()->get();
    case toml::node_type::array: {
      const auto& array = *n.as_array();
      const auto at = [&](const toml::node& e) {
        return o.override_text.empty() ? origin_at(e.source(), o.file) : o;
      };
      // The first element decides: a list of numbers or a list of strings.
      const bool numbers = !array.empty() && (array[0].is_integer() || array[0].is_floating_point());
      std::vector<std::string> strings;
      std::vector<double> reals;
      for (const auto& e : array) {
        if (numbers && e.is_integer()) {
          reals.push_back(static_cast<double>(e.as_integer()->get()));
        } else if (numbers && e.is_floating_point()) {
          reals.push_back(e.as_floating_point()->get());
        } else if (!numbers && e.is_string()) {
          strings.push_back(e.as_string()->get());
        } else {
          throw ExperimentError(
              at(e), fmt::format("parameter '{}': list elements must all be {}, got {}", key,
                                 numbers ? "numbers" : "strings", toml_type_name(e)));
        }
      }
      if (numbers) return reals;
      return strings;
    }
    default:
      throw ExperimentError(o, fmt::format("parameter '{}' cannot be {}", key, toml_type_name(n)));
  }
}

// Parses the value of a --set override as TOML ("500", "[1, 2]", "\"x\""); bare words that are
// not TOML become strings, so --set protocol.monitor=Hit@20 works without quotes.
toml::table parse_override_value(const Override& ov) {
  Origin o;
  o.override_text = fmt::format("--set {}", ov.original);
  check_toml_nesting(ov.text, o);
  try {
    return toml::parse("v = " + ov.text);
  } catch (const toml::parse_error& e) {
    // A value that starts like TOML ([list], {table}, "string", 'string') was meant as TOML:
    // say what is wrong with it rather than taking it for a bare word.
    const auto first = ov.text.find_first_not_of(" \t");
    if (first != std::string::npos && std::string_view("[{\"'").find(ov.text[first]) !=
                                           std::string_view::npos)
      throw ExperimentError(o, fmt::format("the value '{}' is not valid TOML: {} (write lists as "
                                           "[5, 10] and strings as \"text\"; quote the whole "
                                           "argument for the shell)",
                                           ov.text, e.description()));
    toml::table t;
    t.insert("v", ov.text);
    return t;
  }
}

class Parser {
 public:
  Parser(Experiment& x, fs::path file) : x_(x), file_(std::move(file)) {}

  void parse(const toml::table& root) {
    const std::vector<std::string> top = {"experiment", "data",  "protocol", "execution",
                                          "seeds",      "group", "groups"};
    for (const auto& [k, node] : root) {
      const std::string key(k.str());
      const Origin o = origin_at(k.source(), file_);
      if (key == "experiment") {
        section(node, o, key, [&](const std::string& name, const toml::node& v, const Origin& vo) {
          set_experiment(name, v, vo);
        });
      } else if (key == "data") {
        section(node, o, key, [&](const std::string& name, const toml::node& v, const Origin& vo) {
          set_data(name, v, vo);
        });
      } else if (key == "protocol") {
        x_.protocol_origins[""] = o;
        section(node, o, key, [&](const std::string& name, const toml::node& v, const Origin& vo) {
          set_protocol(name, v, vo);
        });
      } else if (key == "execution") {
        section(node, o, key, [&](const std::string& name, const toml::node& v, const Origin& vo) {
          set_execution(name, v, vo);
        });
      } else if (key == "seeds") {
        set_seeds(x_.seeds, ValueReader(node, o, "seeds"));
      } else if (key == "group") {
        const auto* groups = node.as_array();
        if (!groups)
          throw ExperimentError(o, "'group' must be an array of tables: write [[group]]");
        for (const auto& g : *groups) {
          const auto* t = g.as_table();
          if (!t) throw ExperimentError(origin_at(g.source(), file_), "[[group]] must be a table");
          parse_group(*t, origin_at(g.source(), file_), std::nullopt);
        }
      } else if (key == "groups") {
        const auto* t = node.as_table();
        if (!t) throw ExperimentError(o, "'groups' must be a table: write [groups.<name>]");
        for (const auto& [gk, g] : *t) {
          const auto* gt = g.as_table();
          const Origin go = origin_at(gk.source(), file_);
          if (!gt) throw ExperimentError(go, fmt::format("[groups.{}] must be a table", gk.str()));
          parse_group(*gt, go, std::string(gk.str()));
        }
      } else {
        throw ExperimentError(o, unknown_key_message("the experiment file", key, top));
      }
    }
    if (!seen_data_path_)
      throw ExperimentError(file_origin(), "missing [data] path: name the data directory");
    if (x_.groups.empty())
      throw ExperimentError(file_origin(),
                            "no run groups: add at least one [[group]] with a model");
  }

  void apply(const Override& ov) {
    Origin o;
    o.file = file_;
    o.override_text = fmt::format("--set {}", ov.original);
    if (kSections.count(ov.target)) {
      const toml::table t = parse_override_value(ov);
      const toml::node& v = *t.get("v");
      if (ov.target == "experiment") set_experiment(ov.key, v, o);
      if (ov.target == "data") set_data(ov.key, v, o);
      if (ov.target == "protocol") set_protocol(ov.key, v, o);
      if (ov.target == "execution") set_execution(ov.key, v, o);
      return;
    }
    if (ov.target == "*") {
      bool any = false;
      for (auto& g : x_.groups) any |= apply_to_group(g, ov, o, /*wildcard=*/true);
      (void)any;  // whether any model accepts the key is checked against the schemas later
      return;
    }
    for (auto& g : x_.groups) {
      if (g.name == ov.target) {
        apply_to_group(g, ov, o, false);
        return;
      }
    }
    std::vector<std::string> names;
    for (const auto& g : x_.groups) names.push_back(g.name);
    for (const auto& s : kSections) names.push_back(s);
    std::string hint;
    if (auto m = did_you_mean(ov.target, names)) hint = fmt::format(" (did you mean '{}'?)", *m);
    throw ExperimentError(o, fmt::format("no group or section named '{}'{}; known: {}", ov.target,
                                         hint, fmt::join(names, ", ")));
  }

  void finish() {
    if (x_.name.empty()) x_.name = file_.stem().string();
    check_name(x_.name, x_.protocol_origins.count("name") ? x_.protocol_origins["name"]
                                                          : file_origin(),
               "experiment name");
    validate_protocol();
    for (const auto& g : x_.groups) check_search(g);
  }

 private:
  Origin file_origin() const {
    Origin o;
    o.file = file_;
    return o;
  }

  template <class F>
  void section(const toml::node& node, const Origin& o, const std::string& name, F&& set) {
    const auto* t = node.as_table();
    if (!t) throw ExperimentError(o, fmt::format("'{}' must be a table: write [{}]", name, name));
    for (const auto& [k, v] : *t) set(std::string(k.str()), v, origin_at(k.source(), file_));
  }

  void set_experiment(const std::string& key, const toml::node& v, const Origin& o) {
    ValueReader r(v, o, "experiment." + key);
    if (key == "name") {
      x_.name = r.string();
      x_.protocol_origins["name"] = o;  // for the name check in finish()
    } else if (key == "description") {
      x_.description = r.string();
    } else if (key == "seeds") {
      set_seeds(x_.seeds, r);
    } else if (key == "depends") {
      x_.depends = r.strings();
      x_.depends_origin = o;
      for (const auto& d : x_.depends)
        if (d.empty()) throw ExperimentError(o, "experiment.depends: an empty experiment name");
    } else {
      throw ExperimentError(o, unknown_key_message("[experiment]", key,
                                                   {"name", "description", "seeds", "depends"}));
    }
  }

  void set_data(const std::string& key, const toml::node& v, const Origin& o) {
    ValueReader r(v, o, "data." + key);
    if (key == "path") {
      fs::path p = r.string();
      if (p.empty()) r.fail("must name a directory");
      // Relative to the experiment file, so that a sweep works from any working directory.
      if (p.is_relative()) p = fs::absolute(file_).parent_path() / p;
      x_.data_path = p.lexically_normal();
      x_.data_origin = o;
      seen_data_path_ = true;
    } else if (key == "source") {
      x_.data_source = r.string();
      x_.source_origin = o;
    } else {
      throw ExperimentError(o, unknown_key_message("[data]", key, {"path", "source"}));
    }
  }

  void set_protocol(const std::string& key, const toml::node& v, const Origin& o) {
    ValueReader r(v, o, "protocol." + key);
    trial::Protocol& p = x_.protocol;
    if (key == "split") {
      const std::string name = r.string();
      const auto mode = core::parse_split_mode(name);
      if (!mode)
        throw ExperimentError(o, fmt::format("protocol.split must be 'leave_one_out' or 'full', "
                                             "got '{}'",
                                             name));
      p.split = *mode;
    } else if (key == "min_interactions") {
      p.min_interactions = r.integer();
    } else if (key == "metrics") {
      p.metrics = r.strings();
    } else if (key == "ks") {
      p.ks = r.integers();
    } else if (key == "monitor") {
      p.monitor = r.string();
    } else if (key == "eval_batch_size") {
      p.eval_batch_size = r.integer();
    } else {
      throw ExperimentError(
          o, unknown_key_message("[protocol]", key,
                                 {"split", "min_interactions", "metrics", "ks", "monitor",
                                  "eval_batch_size"}));
    }
    x_.protocol_origins[key] = o;
  }

  void set_execution(const std::string& key, const toml::node& v, const Origin& o) {
    ValueReader r(v, o, "execution." + key);
    // NaN passes every comparison but `!(v >= 0)`; infinity is no limit written as one.
    const auto seconds_or_mib = [&](std::string_view zero_means) {
      const double v = r.number();
      if (!(v >= 0) || !(v <= 1e9))
        r.fail(fmt::format("must be a number from 0 to 1e9, got {} (0 = {})", v, zero_means));
      return v;
    };
    if (key == "jobs") {
      const auto j = r.integer();
      if (j < 1 || j > 1024) r.fail(fmt::format("must be between 1 and 1024, got {}", j));
      x_.execution.jobs = static_cast<int>(j);
      x_.execution.jobs_origin = o;
    } else if (key == "trial_timeout") {
      x_.execution.trial_timeout_s = seconds_or_mib("no limit");
    } else if (key == "memory_limit_mb") {
      x_.execution.memory_limit_mb = seconds_or_mib("no limit");
    } else if (key == "checkpoint_every") {
      x_.execution.checkpoint_every_s = seconds_or_mib("after every epoch");
    } else if (key == "checkpoints") {
      x_.execution.checkpoints = r.string();
      if (x_.execution.checkpoints != "best" && x_.execution.checkpoints != "last" &&
          x_.execution.checkpoints != "none")
        r.fail(fmt::format("'{}': must be \"best\" (keep best.ckpt), \"last\" (best.ckpt and "
                           "last.ckpt) or \"none\" (keep no checkpoint)",
                           x_.execution.checkpoints));
    } else if (key == "zygote") {
      x_.execution.zygote = r.boolean();
    } else {
      throw ExperimentError(o, unknown_key_message("[execution]", key,
                                                   {"jobs", "trial_timeout", "memory_limit_mb",
                                                    "checkpoint_every", "checkpoints", "zygote"}));
    }
  }

  void set_seeds(std::vector<std::int64_t>& seeds, const ValueReader& r) {
    std::vector<std::int64_t> s = r.integers();
    if (s.empty()) r.fail("must list at least one seed");
    std::set<std::int64_t> seen;
    for (const auto v : s) {
      if (v < 0) r.fail(fmt::format("seeds must be >= 0, got {}", v));
      if (!seen.insert(v).second) r.fail(fmt::format("lists seed {} twice", v));
    }
    seeds = std::move(s);
  }

  void parse_group(const toml::table& t, const Origin& o, std::optional<std::string> name) {
    Group g;
    g.origin = o;
    const bool array_form = !name.has_value();
    std::vector<std::string> known = {"model", "seeds", "params", "grid", "sets", "search"};
    if (array_form) known.insert(known.begin(), "name");
    for (const auto& [k, v] : t) {
      const std::string key(k.str());
      const Origin ko = origin_at(k.source(), file_);
      const std::string where = array_form ? "[[group]]" : fmt::format("[groups.{}]", *name);
      if (key == "name" && array_form) {
        name = ValueReader(v, ko, "name").string();
      } else if (key == "model") {
        g.model = ValueReader(v, ko, "model").string();
        g.model_origin = ko;
      } else if (key == "seeds") {
        std::vector<std::int64_t> s;
        set_seeds(s, ValueReader(v, ko, "seeds"));
        g.seeds = std::move(s);
      } else if (key == "params") {
        const auto* pt = v.as_table();
        if (!pt) throw ExperimentError(ko, "'params' must be a table of fixed parameters");
        for (const auto& [pk, pv] : *pt) {
          const Origin po = origin_at(pk.source(), file_);
          const std::string pname(pk.str());
          g.fixed[pname] = RawValue{to_param_value(pv, po, pname), std::nullopt, po};
        }
      } else if (key == "grid") {
        const auto* gt = v.as_table();
        if (!gt) throw ExperimentError(ko, "'grid' must be a table of lists: write [group.grid]");
        for (const auto& [gk, gv] : *gt) {
          GridAxis axis;
          axis.key = gk.str();
          axis.origin = origin_at(gk.source(), file_);
          if (const auto* dist = gv.as_table()) {  // lr = { log_uniform = [1e-4, 1e-2] }
            g.space.push_back(parse_distribution(axis.key, *dist, axis.origin));
            continue;
          }
          const auto* values = gv.as_array();
          if (!values || values->empty())
            throw ExperimentError(axis.origin,
                                  fmt::format("grid '{}' must be a non-empty list of values "
                                              "(each value is one point of the grid)",
                                              axis.key));
          for (const auto& e : *values) {
            const Origin eo = origin_at(e.source(), file_);
            axis.values.push_back(RawValue{to_param_value(e, eo, axis.key), std::nullopt, eo});
          }
          g.grid.push_back(std::move(axis));
        }
      } else if (key == "search") {
        const auto* st = v.as_table();
        if (!st) throw ExperimentError(ko, "'search' must be a table: write [group.search]");
        g.search = parse_search(*st, ko);
      } else if (key == "sets") {
        const auto* sa = v.as_array();
        if (!sa)
          throw ExperimentError(ko, "'sets' must be a list of tables: write [[group.sets]]");
        for (const auto& s : *sa) {
          const auto* st = s.as_table();
          const Origin so = origin_at(s.source(), file_);
          if (!st) throw ExperimentError(so, "each entry of 'sets' must be a table of parameters");
          ParamSet set;
          set.origin = so;
          for (const auto& [pk, pv] : *st) {
            const Origin po = origin_at(pk.source(), file_);
            const std::string pname(pk.str());
            set.values[pname] = RawValue{to_param_value(pv, po, pname), std::nullopt, po};
          }
          g.sets.push_back(std::move(set));
        }
      } else {
        throw ExperimentError(
            ko, unknown_key_message(where, key, known) +
                    " (model parameters go in the group's [params], [grid] or [[sets]])");
      }
    }
    if (g.model.empty())
      throw ExperimentError(o, "group has no 'model': name the model plugin it runs");
    g.name = name.value_or(g.model);
    check_name(g.name, o, "group name");
    for (const auto& other : x_.groups)
      if (other.name == g.name)
        throw ExperimentError(
            o, fmt::format("group name '{}' is used twice (first at line {}); give each group a "
                           "distinct 'name'",
                           g.name, other.origin.line));
    // One key in two places is ambiguous: say which to keep.
    for (const auto& axis : g.grid) {
      if (g.fixed.count(axis.key))
        throw ExperimentError(axis.origin,
                              fmt::format("'{}' is both a fixed parameter (line {}) and a grid "
                                          "axis; keep one",
                                          axis.key, g.fixed[axis.key].origin.line));
      for (const auto& s : g.sets)
        if (s.values.count(axis.key))
          throw ExperimentError(s.values.at(axis.key).origin,
                                fmt::format("'{}' is both in a parameter set and a grid axis "
                                            "(line {}); keep one",
                                            axis.key, axis.origin.line));
    }
    x_.groups.push_back(std::move(g));
  }

  // Returns whether the group took the override.
  bool apply_to_group(Group& g, const Override& ov, const Origin& o, bool wildcard) {
    if (ov.key == "seeds") {
      const toml::table t = parse_override_value(ov);
      std::vector<std::int64_t> s;
      set_seeds(s, ValueReader(*t.get("v"), o, "seeds"));
      g.seeds = std::move(s);
      return true;
    }
    if (ov.key.starts_with("search.")) {  // --set GROUP.search.trials=8
      const toml::table t = parse_override_value(ov);
      if (!g.search) g.search = SearchSpec{};
      set_search_key(*g.search, ov.key.substr(7), *t.get("v"), o);
      return true;
    }
    if (ov.key == "model" || ov.key == "name")
      throw ExperimentError(o, fmt::format("'{}' of a group cannot be overridden", ov.key));
    // The override wins over the grid axis and the sets: the group collapses to that value.
    std::erase_if(g.grid, [&](const GridAxis& a) { return a.key == ov.key; });
    std::erase_if(g.space, [&](const Distribution& d) { return d.key == ov.key; });
    for (auto& s : g.sets) s.values.erase(ov.key);
    RawValue v;
    v.text = ov.text;
    v.origin = o;
    g.fixed[ov.key] = std::move(v);
    if (wildcard) wildcard_keys_[g.name].insert(ov.key);
    return true;
  }

  void validate_protocol() {
    const auto at = [&](const std::string& key) {
      const auto it = x_.protocol_origins.find(key);
      if (it != x_.protocol_origins.end()) return it->second;
      const auto t = x_.protocol_origins.find("");
      return t != x_.protocol_origins.end() ? t->second : file_origin();
    };
    try {
      x_.protocol.validate(core::ProtocolUse::sweep);
    } catch (const core::ProtocolError& e) {
      throw ExperimentError(at(e.field()), e.what());
    }
  }

 public:
  // Keys that came from '*.key=value' and may be dropped where a model lacks them.
  std::map<std::string, std::set<std::string>> wildcard_keys_;

 private:
  Experiment& x_;
  fs::path file_;
  bool seen_data_path_ = false;
};

}  // namespace

Experiment parse_experiment(std::string_view text, const fs::path& file,
                            const std::vector<std::string>& overrides) {
  Experiment x;
  x.file = file;
  x.execution.jobs_origin.file = file;
  Origin whole;
  whole.file = file;
  if (text.size() > kMaxExperimentFileBytes)
    throw ExperimentError(whole, fmt::format("the experiment file has {} bytes; the limit is {} "
                                             "(an experiment file names data and grids; it "
                                             "never needs megabytes)",
                                             text.size(), kMaxExperimentFileBytes));
  check_toml_nesting(text, whole);
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    throw ExperimentError(origin_at(e.source(), file),
                          fmt::format("not valid TOML: {}", e.description()));
  }
  Parser parser(x, file);
  parser.parse(root);
  std::vector<Override> parsed;
  for (const auto& s : overrides) parsed.push_back(parse_override(s));
  for (const auto& ov : parsed) parser.apply(ov);
  parser.finish();
  x.wildcard_keys = parser.wildcard_keys_;

  x.text = std::string(text);
  if (!overrides.empty()) {
    x.text += "\n# command-line overrides:\n";
    for (const auto& s : overrides) x.text += fmt::format("# --set {}\n", s);
  }
  x.hash = core::hash64_hex(x.text);
  return x;
}

Experiment load_experiment(const fs::path& file, const std::vector<std::string>& overrides) {
  std::string text;
  try {
    // A directory, a FIFO or /dev/zero is refused here, by name, instead of read (for ever).
    text = util::read_regular_file(file, kMaxExperimentFileBytes, "experiment file");
  } catch (const Error& e) {
    Origin o;
    o.file = file;
    throw ExperimentError(o, e.what());
  }
  return parse_experiment(text, file, overrides);
}

}  // namespace recrun::sweep
