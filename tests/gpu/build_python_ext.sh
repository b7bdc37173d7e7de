#!/usr/bin/env bash
# build_python_ext.sh [BUNDLE=build/gpu-bundle] [OUT=/tmp/zshard-python]:
# builds zshard's Python module (zshard/_C) for the python3 here — a GPU
# machine's, whose Python differs from the build machine's — from the
# runtime's static libraries that make_bundle.sh put in BUNDLE/static and
# the shared ones in BUNDLE/lib. Needs a C++ compiler, pybind11's headers
# (the pybind11 package or /usr/include) and the Python headers. OUT then
# is an importable root: PYTHONPATH=OUT python3 -c "import zshard".
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=${1:-build/gpu-bundle}
out=${2:-/tmp/zshard-python}
py=${PYTHON:-python3}
cxx=${CXX:-c++}
cuda=${CUDA_HOME:-/usr/local/cuda}
for a in libzshard.a libzshard_kernels.a libzshard_core.a libzshard_proto.a; do
  [ -f "$bundle/static/$a" ] || { echo "build_python_ext: $bundle/static/$a missing (run make_bundle.sh)" >&2; exit 2; }
done
suffix=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
# pybind11's package, else its system headers (already on the search path).
pybind=()
inc=$("$py" -c 'import pybind11; print(pybind11.get_include())' 2>/dev/null || true)
[ -n "$inc" ] && [ "$inc" != /usr/include ] && pybind=(-isystem "$inc")
nccl=$("$py" -c "import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) + '/lib')" 2>/dev/null || true)
dirs=("$bundle/lib" $nccl "$cuda/lib64" "$cuda/lib" /usr/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/pmix2/lib /usr/lib)

# The first library named NAME (or NAME.<version>) in the search folders.
find_lib() {
  local d f
  for d in "${dirs[@]}"; do
    for f in "$d/$1" "$d/$1".*; do
      [ -f "$f" ] && { echo "$f"; return; }
    done
  done
  echo "build_python_ext: $1 not found in ${dirs[*]}" >&2
  exit 2
}
libs=()
for name in libprotobuf.so libpmix.so libgloo.so libcrypto.so libcudart.so libnccl.so; do
  libs+=("$(find_lib "$name")")
done
rpath=$(printf '%s:' "${dirs[@]}")
mkdir -p "$out/zshard"
cp python/zshard/*.py "$out/zshard/"
"$cxx" -O2 -std=c++17 -fPIC -fvisibility=hidden -fopenmp -shared -I. -isystem "$pyinc" "${pybind[@]}" \
  -isystem "$cuda/include" python/csrc/bindings.cc python/csrc/observe_bindings.cc \
  "$bundle/static/libzshard.a" "$bundle/static/libzshard_kernels.a" "$bundle/static/libzshard_core.a" \
  "$bundle/static/libzshard_proto.a" "${libs[@]}" -lpthread -ldl -lrt -Wl,-rpath,"${rpath%:}" \
  -o "$out/zshard/_C$suffix"
PYTHONPATH="$out" "$py" -c "import sys, zshard; print('build_python_ext: zshard', zshard.__version__, 'for Python', sys.version.split()[0])"
