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

# `import zshard` from any directory: put the built package on this user's
# site path (a .pth file; nothing is copied).
site=$(/usr/bin/python3 -c 'import site; print(site.getusersitepackages())')
mkdir -p "$site"
echo "$(pwd)/build/python" >"$site/zshard.pth"

if [ "$mode" = test ]; then
  exec ctest --test-dir build --output-on-failure -j"$(nproc)"
fi

# The main job: a small GPT trained with ZeRO-2 (bf16) by zlaunch's local
# workers — one per GPU, or 2 CPU workers on a machine without GPUs.
build/zlaunch --version
nproc=()
build/zlaunch --version | grep -q "GPUs visible: [1-9]" || nproc=(--nproc-per-node 2)
build/zlaunch check-config --world-size 2 configs/zero2.json
build/zlaunch "${nproc[@]}" --config configs/zero2.json examples/train_gpt.py
