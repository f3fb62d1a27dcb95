#!/usr/bin/env bash
# The set-up command: installs the Debian packages recrun needs, builds it, and runs the
# quickstart experiment (EASE and popularity on the bundled MovieLens data), ending with a table
# of the best trial per group. Safe to run again: finished trials are not re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Only the executable and the plugins (108 of the 210 sources); scripts/test.sh builds the
# tests and benchmarks.
scripts/build.sh --target recrun_app
build_dir=${RECRUN_BUILD_DIR:-build}
"$build_dir/bin/recrun" sweep experiments/quickstart.toml "$@"
