// Built only by the layering test (tests/CMakeLists.txt), never by `all`: a tensorboard/ source
// that includes a core/ header must not compile, because docs/architecture.md forbids the
// dependency and each host folder sees only the include roots of the folders it links.
#include "core/trainer.hpp"
#include "tensorboard/event_writer.hpp"

int layering_violation() { return 0; }
