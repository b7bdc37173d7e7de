#!/usr/bin/env bash
# make_bundle.sh [BUILD_DIR=build]: builds the GPU tests and benchmark and
# gathers them with the shared libraries the GPU machine lacks (Gloo and its
# dependencies, the CUDA runtime, ...) into BUILD_DIR/gpu-bundle, which
# run_on_gpu.sh uses there. NCCL is taken from the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
targets=(gpu_kernels_test gpu_nccl_engine_test gpu_checkpoint_test bench_optim_gpu bench_ckpt zlaunch zshard zshard_proto)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
bundle=$build/gpu-bundle
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
cp "$build/tests/gpu_kernels_test" "$build/tests/gpu_nccl_engine_test" "$build/tests/gpu_checkpoint_test" \
  "$build/bench/bench_optim_gpu" "$build/bench/bench_ckpt" "$build/zlaunch" "$bundle/bin/"
# Every resolved library except glibc's, the C++ runtime, the driver and NCCL.
for bin in "$bundle"/bin/*; do
  ldd "$bin" | awk '/=> \//{print $3}'
done | sort -u | grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libcuda|libnccl)\.so' |
  while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
# The runtime's static libraries: build_python_ext.sh links the Python
# module there against them, for the GPU machine's own Python.
mkdir -p "$bundle/static"
cp "$build/runtime/libzshard.a" "$build/kernels/libzshard_kernels.a" "$build/runtime/libzshard_core.a" \
  "$build/proto/libzshard_proto.a" "$bundle/static/"
strip --strip-debug "$bundle"/bin/* 2>/dev/null || true
du -sh "$bundle"
