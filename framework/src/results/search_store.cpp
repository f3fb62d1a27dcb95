// Searches, their trials and the pruner's decisions in results.db.
#include "results/search_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "results/sqlite_db.hpp"
#include "results/store_state.hpp"

namespace recrun::results {

std::vector<std::int64_t> PrunerSettings::rungs() const {
  std::vector<std::int64_t> out;
  for (std::int64_t r = std::max<std::int64_t>(1, min_epochs); max_epochs <= 0 || r < max_epochs;
       r *= std::max<std::int64_t>(2, reduction_factor)) {
    out.push_back(r);
    if (out.size() > 60) break;
  }
  return out;
}

std::optional<PrunerSettings> pruner_of_spec(std::string_view spec_json) {
  const auto j = nlohmann::json::parse(spec_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pruner") || !j["pruner"].is_string()) return std::nullopt;
  PrunerSettings p;
  p.kind = j["pruner"].get<std::string>();
  if (p.kind != "asha" && p.kind != "median") return std::nullopt;
  p.min_epochs = j.value("min_epochs", std::int64_t{1});
  p.reduction_factor = j.value("reduction_factor", std::int64_t{3});
  p.max_epochs = j.value("max_epochs", std::int64_t{0});
  return p;
}

namespace {

// NaN (a diverged run) ranks below every number.
double rank_value(double v) { return std::isnan(v) ? -std::numeric_limits<double>::infinity() : v; }

}  // namespace

bool asha_keeps(double value, const std::vector<double>& others, std::int64_t eta) {
  const double v = rank_value(value);
  std::size_t better = 0;
  for (const double o : others) better += rank_value(o) > v;
  const std::size_t n = others.size() + 1;
  const std::size_t top = std::max<std::size_t>(1, n / static_cast<std::size_t>(std::max<std::int64_t>(2, eta)));
  return better < top;
}

bool median_keeps(double value, const std::vector<double>& others) {
  if (others.size() < 2) return true;
  std::vector<double> v;
  for (const double o : others) v.push_back(rank_value(o));
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return rank_value(value) >= median;
}

// ---------------------------------------------------------------------------------- the store

void SearchStore::register_search(const SearchRecord& r) {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  s.db.write_transaction([&] {
    s.db.prepare(
          "INSERT INTO searches (search_key, experiment, group_name, method, spec) "
          "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (search_key) DO NOTHING")
        .bind_all(r.search_key, r.experiment, r.group_name, r.method, r.spec_json)
        .execute();
  });
}

namespace {

void insert_links(Database& db, std::string_view search_key, const std::vector<SearchLink>& links) {
  auto insert = db.prepare(
      "INSERT INTO search_trials (search_key, idx, trial_key, point) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT DO NOTHING");
  for (const auto& l : links)
    insert.reset().bind_all(search_key, l.index, l.trial_key, l.point_json).execute();
}

SearchRecord read_search(const Statement& q) {
  return SearchRecord{q.text(0), q.text(1), q.text(2), q.text(3), q.text(4)};
}

}  // namespace

void SearchStore::link(std::string_view search_key, const std::vector<SearchLink>& links) {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  s.db.write_transaction([&] { insert_links(s.db, search_key, links); });
}

std::optional<SearchRecord> SearchStore::search(std::string_view search_key) const {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  auto q = s.db.prepare(
      "SELECT search_key, experiment, group_name, method, spec FROM searches WHERE search_key = ?1");
  q.bind_all(search_key);
  if (!q.step()) return std::nullopt;
  return read_search(q);
}

std::vector<SearchRecord> SearchStore::searches(std::string_view experiment) const {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  auto q = s.db.prepare(
      "SELECT search_key, experiment, group_name, method, spec FROM searches "
      "WHERE experiment = ?1 ORDER BY created_at, search_key");
  q.bind_all(experiment);
  std::vector<SearchRecord> out;
  while (q.step()) out.push_back(read_search(q));
  return out;
}

std::optional<SearchRecord> SearchStore::pruning_search_of(std::string_view trial_key) const {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  auto q = s.db.prepare(
      "SELECT s.search_key, s.experiment, s.group_name, s.method, s.spec FROM searches AS s "
      "JOIN search_trials AS t ON t.search_key = s.search_key WHERE t.trial_key = ?1 "
      "ORDER BY s.created_at, s.search_key");
  q.bind_all(trial_key);
  while (q.step()) {
    SearchRecord r = read_search(q);
    if (pruner_of_spec(r.spec_json)) return r;
  }
  return std::nullopt;
}

std::vector<SearchTrialState> SearchStore::load(ResultsStore::State& s,
                                                std::string_view search_key) {
  auto q = s.db.prepare(
      "SELECT t.idx, t.trial_key, t.point, r.status, r.owner_host, r.owner_pid, "
      "(julianday('now') - julianday(r.heartbeat_at)) * 86400.0, r.epochs_run, "
      "(SELECT m.value FROM run_metrics AS m WHERE m.run_id = r.id AND m.split = 'valid' AND "
      " m.name = COALESCE(CASE WHEN json_valid(r.protocol) THEN json_extract(r.protocol, "
      " '$.monitor') END, 'NDCG@10')) "
      "FROM search_trials AS t JOIN runs AS r ON r.trial_key = t.trial_key "
      "WHERE t.search_key = ?1 ORDER BY t.idx, t.trial_key");
  q.bind_all(search_key);
  std::vector<SearchTrialState> out;
  while (q.step()) {
    SearchTrialState t;
    t.index = q.int64(0);
    t.trial_key = q.text(1);
    t.point_json = q.text(2);
    t.status = parse_run_status(q.text(3));
    t.epochs_run = q.opt_int64(7);
    if (t.status == RunStatus::finished || t.status == RunStatus::pruned) t.value = q.opt_real(8);
    if (t.status == RunStatus::pending || t.status == RunStatus::interrupted) {
      t.available = true;
    } else if (t.status == RunStatus::running) {
      const detail::RowState row{0, RunStatus::running, Owner{q.text(4), q.opt_int64(5).value_or(0)},
                                 q.opt_real(6)};
      t.available = s.owner_gone(row).has_value();
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<SearchTrialState> SearchStore::trials(std::string_view search_key) const {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  return load(s, search_key);
}

std::vector<std::string> SearchStore::next_trials(
    std::string_view search_key, std::int64_t budget,
    const std::function<SearchProposal(const std::vector<SearchTrialState>&, std::int64_t)>&
        suggest) {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&]() -> std::vector<std::string> {
    auto states = load(s, search_key);
    std::vector<std::string> out;
    // The lowest configuration that waits (registered by a sweep that died before running it,
    // or interrupted): one configuration per call.
    std::int64_t first = -1;
    for (const auto& t : states)
      if (t.available && (first < 0 || t.index == first)) {
        first = t.index;
        out.push_back(t.trial_key);
      }
    if (!out.empty()) return out;
    std::set<std::int64_t> indexes;
    for (const auto& t : states) indexes.insert(t.index);
    auto index = static_cast<std::int64_t>(indexes.size());
    // A suggestion whose trials all exist and are done already (the same configuration twice)
    // uses up its index; the next one is asked for, within the budget.
    while (index < budget) {
      const SearchProposal p = suggest(states, index);
      auto insert_run = s.prepare_insert_run();
      auto insert_param = s.prepare_insert_param();
      std::vector<SearchLink> links;
      for (const auto& spec : p.trials) {
        s.validate(spec);
        s.insert_if_missing(spec, insert_run, insert_param);
        links.push_back(SearchLink{index, spec.trial_key, p.point_json});
      }
      insert_links(s.db, search_key, links);
      states = load(s, search_key);
      for (const auto& t : states)
        if (t.index == index && t.available) out.push_back(t.trial_key);
      if (!out.empty()) return out;
      ++index;
    }
    return out;
  });
}

RungDecision SearchStore::decide_rung(std::string_view search_key, std::string_view trial_key,
                                      std::int64_t rung, std::int64_t epochs, double value,
                                      const PrunerSettings& pruner) {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  return s.db.write_transaction([&] {
    RungDecision d;
    {
      auto q = s.db.prepare(
          "SELECT decision, compared FROM promotions WHERE search_key = ?1 AND trial_key = ?2 "
          "AND rung = ?3");
      q.bind_all(search_key, trial_key, rung);
      if (q.step()) {
        d.keep = q.text(0) == "continue";
        d.compared = q.int64(1);
        d.recorded_before = true;
        return d;
      }
    }
    std::vector<double> others;
    {
      auto q = s.db.prepare(
          "SELECT value FROM promotions WHERE search_key = ?1 AND rung = ?2 AND trial_key <> ?3");
      q.bind_all(search_key, rung, trial_key);
      while (q.step())
        others.push_back(q.is_null(0) ? std::numeric_limits<double>::quiet_NaN() : q.real(0));
    }
    d.compared = static_cast<std::int64_t>(others.size());
    d.keep = pruner.kind == "median" ? median_keeps(value, others)
                                     : asha_keeps(value, others, pruner.reduction_factor);
    s.db.prepare(
          "INSERT INTO promotions (search_key, trial_key, rung, epochs, value, decision, "
          "compared) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .bind_all(search_key, trial_key, rung, epochs, value,
                  std::string_view(d.keep ? "continue" : "prune"), d.compared)
        .execute();
    return d;
  });
}

std::vector<PromotionRow> SearchStore::promotions(std::string_view search_key) const {
  auto& s = *store_.state_;
  std::lock_guard lock(s.mutex);
  auto q = s.db.prepare(
      "SELECT trial_key, rung, epochs, value, decision, compared FROM promotions "
      "WHERE search_key = ?1 ORDER BY rung, decided_at, trial_key");
  q.bind_all(search_key);
  std::vector<PromotionRow> out;
  while (q.step()) {
    out.push_back(PromotionRow{q.text(0), q.int64(1), q.int64(2),
                               q.is_null(3) ? std::numeric_limits<double>::quiet_NaN() : q.real(3),
                               q.text(4) == "continue", q.int64(5)});
  }
  return out;
}

}  // namespace recrun::results
