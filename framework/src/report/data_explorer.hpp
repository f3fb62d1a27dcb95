// The data explorer page (`recrun data stats DIR --html`): one self-contained HTML page of a data
// set's statistics — sequence lengths, item popularity (long tail, Gini, Lorenz curve),
// interactions over time, metadata coverage (what each feature misses), categorical value
// distributions and a histogram of each numeric feature (release year), cold users and items, and what leave-one-out drops. The numbers come from data/stats (the text report's).
#pragma once

#include <string>
#include <string_view>

#include "data/stats.hpp"
#include "recrun/dataset.hpp"

namespace recrun::report {

/// The page. `source` names the data source plugin that read the data.
std::string render_data_explorer(const Dataset& dataset, const data::DataStats& stats,
                                 const data::ExplorerStats& explorer, std::string_view source,
                                 std::string_view generated_at);

}  // namespace recrun::report
