#!/usr/bin/env bash
# The two set-up commands of the README, on a fresh Debian 12 / Ubuntu 24.04:
#   scripts/bootstrap.sh run    install, build, run the main job
#   scripts/bootstrap.sh test   install, build, run every test (what CI runs)
# Idempotent: a second run reuses the packages and the build folder.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/bootstrap.sh run|test" >&2
  exit 2
}

[ $# -eq 1 ] || usage
mode=$1
case "$mode" in run | test) ;; *) usage ;; esac

scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"

if [ "$mode" = test ]; then
  exec ctest --test-dir build --output-on-failure -j"$(nproc)"
fi

# The main job. Until the launcher can start workers, it shows what the build
# has and validates the ZeRO-2 sample for a 4-GPU node.
build/zlaunch --version
build/zlaunch check-config --world-size 4 configs/zero2.json
