#!/usr/bin/env bash
# Installs everything zshard needs to build and test, from the distribution's
# packages only (Debian 12 or Ubuntu 24.04). Idempotent: packages already
# present are skipped, so a second run does no network work.
#
# CUDA and NCCL are not installed here: they come with the CUDA toolkit
# (/usr/local/cuda); without them the build switches the GPU parts off.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config ccache git clang
  # libraries the runtime links
  libprotobuf-dev protobuf-compiler libpmix-dev libgloo-dev libssl-dev libxxhash-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # python module and PyTorch integration
  python3 python3-dev pybind11-dev python3-numpy python3-torch python3-pytest
  # watching a run: the report's plots, the tests' TensorBoard reader and
  # their screenshot of the report
  python3-matplotlib python3-protobuf chromium
  # multi-node launcher tests: a real Slurm with PMIx, and mpirun
  slurmctld slurmd slurm-client munge openmpi-bin
)

missing_from() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

install() {
  local missing
  mapfile -t missing < <(missing_from "$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "install_deps: need root or sudo to install: ${missing[*]}" >&2
      exit 1
    }
    sudo="sudo"
  fi
  echo "install_deps: installing ${missing[*]}"
  if [ -z "${APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

install "${PACKAGES[@]}"
# libFuzzer's runtime ships per clang version (Debian 12: 14, Ubuntu 24.04: 18).
clang_major=$(clang++ -dumpversion | cut -d. -f1)
install "libclang-rt-${clang_major}-dev"
echo "install_deps: all packages present"
