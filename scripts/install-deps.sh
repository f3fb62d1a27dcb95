#!/usr/bin/env bash
# Installs recrun's build and run dependencies from Debian 12 packages. Idempotent: when every
# package is already there it returns at once without touching apt.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libfmt-dev libtomlplusplus-dev libsqlite3-dev libgtest-dev sqlite3
  nlohmann-json3-dev libxxhash-dev libicu-dev
  # TensorBoard's event messages: protoc generates their C++ at build time from
  # framework/src/tensorboard/proto/, and libprotobuf encodes and decodes them.
  libprotobuf-dev protobuf-compiler
  # Headers of Gloo, which Debian's libtorch is built with: data-parallel training
  # (recrun run --nproc N) uses c10d's ProcessGroupGloo.
  libgloo-dev
  # CPU feature detection (AVX-512 BF16, AMX) for the sequential models' precision = auto.
  libcpu-features-dev
  # LAPACK to link the EASE plugin against (potrf/potri in place on the Gram matrix), called
  # through LAPACKE's C interface.
  liblapack-dev liblapacke-dev
  # LibTorch falls back to the slow reference BLAS without an optimized one; the OpenMP build
  # matches LibTorch's own OpenMP thread pool.
  libopenblas0-openmp
  # Headless browser for the tests that render the HTML reports (tests/e2e/test_report_e2e.cpp).
  # (fonts so that its screenshots show text).
  chromium fonts-dejavu-core
  # A real single-node Slurm for the Slurm executor's end-to-end test (tests/e2e/test_slurm_e2e.cpp
  # starts its own daemons with tests/support/slurm_cluster.sh; no service is enabled).
  slurm-wlm munge
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The pthread OpenBLAS (pulled in by some -dev packages) would oversubscribe cores next to
# LibTorch's OpenMP pool: prefer the OpenMP flavour when both are installed.
if [[ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ]]; then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" update-alternatives --set libblas.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 >/dev/null 2>&1 || true
  "${sudo_cmd[@]}" update-alternatives --set liblapack.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3 >/dev/null 2>&1 || true
fi
