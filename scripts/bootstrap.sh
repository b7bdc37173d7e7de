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

# The main job, until examples/train_gpt.py lands with the Python module: what
# the build has, the ZeRO-2 sample validated for 2 workers, and 2 local
# workers started by zlaunch that meet through the job store and allreduce
# over Gloo (the runtime's own rendezvous path).
build/zlaunch --version
build/zlaunch check-config --world-size 2 configs/zero2.json
build/zlaunch --nproc-per-node 2 --config configs/zero2.json build/tests/worker_probe
(cd / && /usr/bin/python3 -c "import zshard; print('import zshard:', zshard.__version__)")
