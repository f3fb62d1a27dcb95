// Built only by the layering test (tests/CMakeLists.txt): results/ includes no other host folder,
// so a results/ source that includes a trial/ header must not compile.
#include "results/results_store.hpp"
#include "trial/key.hpp"

int layering_violation_results() { return 0; }
