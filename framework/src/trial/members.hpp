// Finished runs as models again: what `recrun predict` and an ensemble's members are built from.
// One code path loads any run: its plugin from the registry, its parameters from its results.db
// row (checked against the plugin's schema), its best checkpoint from disk.
#pragma once

#include <memory>
#include <string>

#include "core/split.hpp"
#include "recrun/host.hpp"
#include "recrun/registry.hpp"
#include "results/results_store.hpp"
#include "core/protocol.hpp"

namespace recrun::trial {

/// Builds the finished run `row`'s model on `dataset` and loads its best checkpoint. Throws
/// Error saying why not: the run is not finished, kept no checkpoint (or the file is gone or
/// damaged), its plugin is not loaded, its stored parameters no longer fit the plugin, or
/// `dataset` is not the data it was trained on (fingerprint). `host` is handed to the model
/// (an ensemble needs it to load its own members).
std::unique_ptr<Model> load_finished_model(const Registry& registry, const results::RunRow& row,
                                           const Dataset& dataset, const HostServices* host);

/// Finds the run a member reference names: a trial key, or "best:MODEL[@EXPERIMENT[/GROUP]]"
/// (the finished run with the highest validation `monitor`; ties go to the earliest run).
/// Throws Error naming the reference when nothing matches.
results::RunRow resolve_run_ref(const results::ResultsStore& store, const std::string& ref,
                                const std::string& monitor);

/// The HostServices of one run: members must come from the same data and split as the run.
class RunHost final : public HostServices {
 public:
  /// `split` may be null (predicting: inline members are then restored, never trained).
  /// `store` may be null (no results.db: only inline members are possible).
  RunHost(const Registry& registry, const Dataset& dataset, const core::Split* split,
          Protocol protocol, const results::ResultsStore* store, int threads);

  MemberModel load_run(const std::string& ref) const override;
  MemberModel make_inline(const std::string& spec, std::uint64_t seed) const override;
  double train_inline(const std::string& spec, Model& model, std::uint64_t seed) const override;

 private:
  const Registry& registry_;
  const Dataset& dataset_;
  const core::Split* split_;
  Protocol protocol_;
  const results::ResultsStore* store_;
  int threads_;
  mutable int depth_ = 0;  // members that are ensembles themselves, nested
};

}  // namespace recrun::trial
