// Searches of a sweep: plans, random expansion, and the TPE driver that registers each
// suggestion in results.db before it runs.
#include "sweep/search.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "core/hash.hpp"
#include "recrun/error.hpp"
#include "trial/key.hpp"

namespace recrun::sweep {

namespace {

const ParamSpec* find_param(const std::vector<ParamSpec>& schema, std::string_view name) {
  for (const auto& s : schema)
    if (s.name == name) return &s;
  return nullptr;
}

nlohmann::json json_of(const ParamValue& v) {
  return std::visit([](const auto& x) { return nlohmann::json(x); }, v);
}

ParamValue value_of(const nlohmann::json& j) {
  if (j.is_boolean()) return j.get<bool>();
  if (j.is_number_integer()) return j.get<std::int64_t>();
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) return j.get<std::string>();
  return j.get<std::vector<std::string>>();
}

}  // namespace

Group with_search_epochs(const Group& group) {
  Group g = group;
  if (!g.search || g.search->max_epochs <= 0) return g;
  const auto o = g.search->origins.count("max_epochs") ? g.search->origins.at("max_epochs")
                                                       : g.search->origin;
  if (const auto it = g.fixed.find("epochs"); it != g.fixed.end()) {
    const auto* n = std::get_if<std::int64_t>(&it->second.value);
    if (it->second.text || !n || *n != g.search->max_epochs)
      throw ExperimentError(o, fmt::format("group '{}': search.max_epochs = {} and the fixed "
                                           "parameter epochs (line {}) disagree; keep one",
                                           g.name, g.search->max_epochs, it->second.origin.line));
  }
  g.fixed["epochs"] = RawValue{ParamValue{g.search->max_epochs}, std::nullopt, o};
  return g;
}

SearchPlan plan_search(const Group& group, const Experiment& x, const Registry& registry) {
  const Group g = with_search_epochs(group);
  SearchPlan p;
  p.group = g.name;
  p.model = g.model;
  p.spec = g.search.value_or(SearchSpec{});
  p.experiment = &x;
  p.registry = &registry;
  const ModelInfo* info = nullptr;
  try {
    info = &registry.model(g.model);
  } catch (const Error& e) {
    throw ExperimentError(g.model_origin, fmt::format("group '{}': {}", g.name, e.what()));
  }
  p.schema = trial::full_schema(*info);
  p.component = fmt::format("group '{}': model '{}'", g.name, g.model);
  const auto wild = x.wildcard_keys.find(g.name);
  for (const auto& [k, v] : g.fixed)  // a '*.KEY' override this model lacks does not apply
    if (wild == x.wildcard_keys.end() || !wild->second.count(k) || find_param(p.schema, k))
      p.fixed[k] = v;
  for (const auto& d : g.space) p.space.push_back(check_distribution(d, p.schema, p.component));
  if (p.sampled()) {
    for (const auto& axis : g.grid) {  // a list under random or tpe: a choice
      Distribution d;
      d.key = axis.key;
      d.kind = DistKind::choice;
      d.choices = axis.values;
      d.origin = axis.origin;
      p.space.push_back(check_distribution(d, p.schema, p.component));
    }
  }
  p.seeds = g.seeds ? *g.seeds : x.seeds;
  p.startup = p.spec.startup_trials > 0 ? p.spec.startup_trials
                                        : default_startup_trials(p.spec.trials);
  if (p.sampled()) {
    // One configuration expanded in full checks the fixed parameters (and any rule that only
    // the combination shows) before anything runs; its epochs are every trial's.
    const auto first = trials_at(p, random_point(p.space, p.spec.seed, 0), 0);
    if (!first.empty() && first.front().params.contains("epochs"))
      p.epochs = first.front().params.get_int("epochs");
  } else if (const auto it = g.fixed.find("epochs");
             it != g.fixed.end() && std::holds_alternative<std::int64_t>(it->second.value) &&
             !it->second.text) {
    p.epochs = std::get<std::int64_t>(it->second.value);
  } else if (const auto* e = find_param(p.schema, "epochs")) {
    p.epochs = std::get<std::int64_t>(e->default_value);
  }
  if (p.pruned()) {
    const Origin o = p.spec.origins.count("pruner") ? p.spec.origins.at("pruner") : p.spec.origin;
    if (p.epochs <= p.spec.min_epochs)
      throw ExperimentError(o, fmt::format("group '{}': the pruner's first rung is at min_epochs = "
                                           "{}, but trials train {} epoch(s): lower min_epochs or "
                                           "raise epochs (search.max_epochs)",
                                           g.name, p.spec.min_epochs, p.epochs));
  }
  return p;
}

std::vector<SearchPlan> plan_searches(const Experiment& x, const Registry& registry) {
  std::vector<SearchPlan> out;
  for (const auto& g : x.groups)
    if (g.search && (g.search->method != SearchMethod::grid || g.search->pruner != PrunerKind::none))
      out.push_back(plan_search(g, x, registry));
  return out;
}

std::vector<Trial> trials_at(const SearchPlan& plan, const Point& point, std::int64_t index) {
  // The configuration as a one-group experiment without a search: the grid's expansion checks
  // and resolves it exactly as it would a grid point.
  Experiment one;
  one.file = plan.experiment->file;
  one.name = plan.experiment->name;
  one.protocol = plan.experiment->protocol;
  one.seeds = plan.seeds;
  Group g;
  g.name = plan.group;
  g.model = plan.model;
  g.fixed = plan.fixed;
  g.seeds = plan.seeds;
  std::vector<std::string> varying;
  for (const auto& d : plan.space) {
    g.fixed[d.key] = RawValue{point.at(d.key), std::nullopt, d.origin};
    varying.push_back(d.key);
  }
  one.groups.push_back(std::move(g));
  std::vector<Trial> out = expand_trials(one, *plan.registry);
  for (auto& t : out) {
    t.varying = varying;
    t.search_index = index;
  }
  return out;
}

std::vector<Trial> expand_random(const SearchPlan& plan) {
  std::vector<Trial> out;
  for (std::int64_t i = 0; i < plan.spec.trials; ++i)
    for (auto& t : trials_at(plan, random_point(plan.space, plan.spec.seed, i), i))
      out.push_back(std::move(t));
  return out;
}

std::string point_json(const Point& point) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : point) j[k] = json_of(v);
  return j.dump();
}

Point point_from_json(const std::string& json, const std::vector<Dim>& space) {
  const auto j = nlohmann::json::parse(json);
  Point p;
  for (const auto& d : space) {
    if (!j.contains(d.key)) continue;
    ParamValue v = value_of(j.at(d.key));
    if (d.kind == DistKind::choice) {
      const std::string text = recrun::to_string(v);
      for (const auto& c : d.choices)
        if (recrun::to_string(c) == text) v = c;
    } else if (d.integer) {
      if (const auto* r = std::get_if<double>(&v)) v = static_cast<std::int64_t>(std::llround(*r));
    } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
      v = static_cast<double>(*i);
    }
    p[d.key] = std::move(v);
  }
  return p;
}

void finalize_search(SearchPlan& plan, const Experiment& x, const std::string& fingerprint) {
  nlohmann::json spec = {{"method", std::string(to_string(plan.spec.method))},
                         {"trials", plan.spec.trials},
                         {"seed", plan.spec.seed},
                         {"seeds", plan.seeds}};
  if (plan.spec.method == SearchMethod::tpe) spec["startup_trials"] = plan.startup;
  if (plan.pruned()) {
    spec["pruner"] = std::string(to_string(plan.spec.pruner));
    spec["min_epochs"] = plan.spec.min_epochs;
    spec["reduction_factor"] = plan.spec.reduction_factor;
    spec["max_epochs"] = plan.epochs;
  }
  nlohmann::json space = nlohmann::json::array();
  for (const auto& d : plan.space) space.push_back(describe(d));
  spec["space"] = space;
  nlohmann::json fixed = nlohmann::json::object();
  for (const auto& [k, v] : plan.fixed) fixed[k] = v.text ? *v.text : recrun::to_string(v.value);
  spec["fixed"] = fixed;
  plan.spec_json = spec.dump();
  const std::string text =
      fmt::format("recrun-search-v1\n{}\n{}\n{}\n{}\n{}\n{}", x.name, plan.group, plan.model,
                  plan.spec_json, fingerprint, x.protocol.canonical());
  plan.key = core::hash128_hex(text);
}

std::vector<std::string> describe_search(const SearchPlan& plan) {
  std::vector<std::string> out;
  const auto seeds = plan.seeds.size();
  std::string head;
  if (plan.sampled())
    head = fmt::format("group '{}': {} search, {} configuration(s) x {} seed(s) = {} trials, "
                       "sampler seed {}",
                       plan.group, to_string(plan.spec.method), plan.spec.trials, seeds,
                       plan.spec.trials * static_cast<std::int64_t>(seeds), plan.spec.seed);
  else
    head = fmt::format("group '{}': grid", plan.group);
  if (plan.spec.method == SearchMethod::tpe)
    head += fmt::format("; the first {} drawn at random, then each suggested by TPE from the "
                        "finished ones (registered in results.db as they are suggested)",
                        std::min(plan.startup, plan.spec.trials));
  out.push_back(head);
  if (plan.pruned()) {
    results::PrunerSettings p{std::string(to_string(plan.spec.pruner)), plan.spec.min_epochs,
                              plan.spec.reduction_factor, plan.epochs};
    out.push_back(fmt::format("  pruner {}: rungs at {} epoch(s) of {}{}", p.kind,
                              fmt::join(p.rungs(), ", "), plan.epochs,
                              p.kind == "asha" ? fmt::format("; the best 1/{} at a rung go on",
                                                             plan.spec.reduction_factor)
                                               : std::string("; below the median at a rung stop")));
  }
  for (const auto& d : plan.space) out.push_back("  " + describe(d));
  return out;
}

void register_searches(results::ResultsStore& store, const std::vector<SearchPlan>& plans,
                       const std::vector<Trial>& trials, const Experiment& x) {
  results::SearchStore ss(store);
  for (const auto& plan : plans) {
    ss.register_search({plan.key, x.name, plan.group, std::string(to_string(plan.spec.method)),
                        plan.spec_json});
    if (plan.spec.method == SearchMethod::tpe) continue;  // linked as suggested
    std::vector<results::SearchLink> links;
    std::int64_t position = 0;
    for (const auto& t : trials) {
      if (t.group != plan.group || t.key.empty()) continue;
      Point point;
      for (const auto& k : t.varying)
        if (t.params.contains(k)) point[k] = t.params.at(k);
      const std::int64_t index = t.search_index >= 0 ? t.search_index : position;
      links.push_back({index, t.key, point_json(point)});
      ++position;
    }
    ss.link(plan.key, links);
  }
}

std::vector<Observation> observations_of(const std::vector<results::SearchTrialState>& states,
                                         const std::vector<Dim>& space) {
  std::vector<Observation> out;
  std::size_t i = 0;
  while (i < states.size()) {
    std::size_t j = i;
    Observation o;
    o.point = point_from_json(states[i].point_json, space);
    double sum = 0;
    std::size_t n = 0;
    bool pending = false;
    for (; j < states.size() && states[j].index == states[i].index; ++j) {
      const auto& t = states[j];
      switch (t.status) {
        case results::RunStatus::pending:
        case results::RunStatus::running:
        case results::RunStatus::interrupted:
        case results::RunStatus::waiting:
          pending = true;
          break;
        case results::RunStatus::finished:
        case results::RunStatus::pruned:
          if (t.value) {
            sum += std::isnan(*t.value) ? -1e300 : *t.value;
            ++n;
            if (t.status == results::RunStatus::pruned)
              o.level = std::min(o.level, t.epochs_run.value_or(0));
          }
          break;
        case results::RunStatus::failed:
          break;
      }
    }
    i = j;
    if (pending) {
      o.pending = true;
      out.push_back(std::move(o));
    } else if (n > 0) {
      o.value = sum / static_cast<double>(n);
      out.push_back(std::move(o));
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ the driver

SearchDriver::SearchDriver(results::ResultsStore& store, const Experiment& experiment,
                           std::vector<SearchPlan> plans, std::string data_fingerprint,
                           std::string data_source, std::optional<std::int64_t> experiment_id)
    : store_(store), experiment_(experiment), fingerprint_(std::move(data_fingerprint)),
      source_(std::move(data_source)), experiment_id_(experiment_id) {
  for (auto& p : plans)
    if (p.spec.method == SearchMethod::tpe) plans_.push_back(std::move(p));
  exhausted_.assign(plans_.size(), false);
}

std::size_t SearchDriver::planned() const {
  std::size_t n = 0;
  for (const auto& p : plans_) n += static_cast<std::size_t>(p.spec.trials) * p.seeds.size();
  return n;
}

results::SearchProposal SearchDriver::propose(const SearchPlan& plan,
                                              const std::vector<results::SearchTrialState>& states,
                                              std::int64_t index) {
  TpeOptions options;
  options.startup = plan.startup;
  const Point point =
      suggest_tpe(plan.space, observations_of(states, plan.space), plan.spec.seed, index, options);
  results::SearchProposal proposal;
  proposal.point_json = point_json(point);
  for (auto& t : trials_at(plan, point, index)) {
    t.key = trial::make_key(t.model, t.params, fingerprint_, experiment_.protocol, t.seed);
    proposal.trials.push_back(
        trial_spec(t, experiment_, fingerprint_, source_, plan.schema, experiment_id_));
    const bool known = std::any_of(trials_.begin(), trials_.end(),
                                   [&](const Trial& u) { return u.key == t.key; });
    if (!known) trials_.push_back(std::move(t));
  }
  return proposal;
}

const Trial* SearchDriver::trial_for(const SearchPlan& plan, const std::string& key,
                                     const std::vector<results::SearchTrialState>& states) {
  for (const auto& t : trials_)
    if (t.key == key) return &t;
  for (const auto& s : states) {
    if (s.trial_key != key) continue;
    for (auto& t : trials_at(plan, point_from_json(s.point_json, plan.space), s.index)) {
      t.key = trial::make_key(t.model, t.params, fingerprint_, experiment_.protocol, t.seed);
      if (t.key == key) {
        trials_.push_back(std::move(t));
        return &trials_.back();
      }
    }
  }
  throw Error(fmt::format("group '{}': search trial {} in results.db does not match its "
                          "configuration any more (did the data or a plugin's schema change?)",
                          plan.group, key));
}

std::vector<Trial> SearchDriver::registered() {
  std::vector<Trial> out;
  results::SearchStore ss(store_);
  for (const auto& plan : plans_) {
    const auto states = ss.trials(plan.key);
    for (const auto& st : states) {
      try {
        out.push_back(*trial_for(plan, st.trial_key, states));
      } catch (const Error&) {
        // A trial registered under other data or schema: not this sweep's to summarise.
      }
    }
  }
  return out;
}

const Trial* SearchDriver::next() {
  results::SearchStore ss(store_);
  for (std::size_t round = 0; round < plans_.size(); ++round) {
    const std::size_t i = (next_plan_ + round) % plans_.size();
    if (exhausted_[i]) continue;
    const SearchPlan& plan = plans_[i];
    const auto keys = ss.next_trials(
        plan.key, plan.spec.trials,
        [&](const std::vector<results::SearchTrialState>& states, std::int64_t index) {
          return propose(plan, states, index);
        });
    if (keys.empty()) {
      exhausted_[i] = true;
      continue;
    }
    next_plan_ = i + 1;
    // Only the first: its siblings (other seeds) wait in the store and come on the next call.
    return trial_for(plan, keys.front(), ss.trials(plan.key));
  }
  return nullptr;
}

}  // namespace recrun::sweep
