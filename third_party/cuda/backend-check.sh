#!/usr/bin/env bash
# The GPU path checked on a machine without a GPU (make backend-check).
#
# build.sh cpu-check builds, with the recipe make cuda uses, libggml-base.so.0,
# a CPU backend module (libggml-cpu.so) and the fake GPU test backend
# (libggml-fakegpu.so: a GPU-typed device, non-host buffers, CPU kernels).
# Then, with ggml's registry loading them as it would libggml-cuda.so
# (OLLAMA_LIBRARY_PATH naming a lib/ollama folder; the fake through
# GGML_BACKEND_PATH, ggml's way to load a backend of another name):
#   1. the registry lists both modules' devices and the encoder picks the
#      GPU-typed one with UseGPU (bridge tests);
#   2. the GPU tests (tests/gpu) run on it: encoder and pipeline parity
#      against llama.cpp on the same device and against the CPU;
#   3. bin/chat -ngl 99 --encoder-gpu runs on it, answers as on the CPU, and
#      what the libraries log, start-up included, goes through our logger
#      (shown with --verbose), not straight to stderr.
# Run from a `make build` tree with the environment of `make env`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
GO=${GO:-go}
lib=$root/.cache/backend-check/lib/ollama

bash "$here/build.sh" cpu-check "$lib"
export OLLAMA_LIBRARY_PATH=$lib GGML_BACKEND_PATH=$lib/libggml-fakegpu.so HIPRUNE_REQUIRE_GPU=1

echo "== registry and device choice"
$GO test -count=1 -v -run 'TestPickDevice|TestEncoderRunsOnPickedDevice' ./bridge/ | grep -E '^(---|ok|FAIL|PASS)|device [0-9]|encoder backend'
echo "== GPU tests on the fake GPU"
$GO test -count=1 -v -timeout 20m ./tests/gpu/ | grep -E '^(---|ok|FAIL|PASS|ggml device)|gpu_test.go'

echo "== chat -ngl 99 --encoder-gpu"
models=${HIPRUNE_MODELS_DIR:?run with the environment of make env}
img=$root/eval/results/masks/scene01-hiprune-28.png
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(-m "$models/tiny-lm.gguf" --mmproj "$models/tiny-mmproj.gguf" --image "$img" -p "What is in the picture?" -n 8 --temp 0 -t 2)
bin/chat "${args[@]}" -ngl 99 --encoder-gpu >"$tmp/gpu.out" 2>"$tmp/gpu.err"
env -u GGML_BACKEND_PATH -u OLLAMA_LIBRARY_PATH bin/chat "${args[@]}" >"$tmp/cpu.out" 2>"$tmp/cpu.err"
cat "$tmp/gpu.err"
fail=0
grep -q 'backend=FakeGPU0' "$tmp/gpu.err" || { echo "FAIL: the encoder did not run on FakeGPU0"; fail=1; }
grep -q 'backend=CPU' "$tmp/cpu.err" || { echo "FAIL: without the libraries the encoder should run on the CPU"; fail=1; }
if grep -E -i 'fakegpu:|load_backend|ggml_' "$tmp/gpu.err"; then
	echo "FAIL: the backend libraries' log reached stderr"
	fail=1
fi
# The fake announces itself while the registry loads it, as CUDA does: that
# line must come through our logger (with --verbose), not be lost.
bin/chat "${args[@]}" -ngl 99 --encoder-gpu --verbose >/dev/null 2>"$tmp/verbose.err"
grep -q 'llama.cpp: fakegpu: FakeGPU0 registered' "$tmp/verbose.err" ||
	{ echo "FAIL: the fake GPU's start-up line did not come through our logger"; fail=1; }
if cmp -s "$tmp/gpu.out" "$tmp/cpu.out"; then
	echo "same answer on the fake GPU and on the CPU: $(cat "$tmp/gpu.out")"
else
	echo "FAIL: answers differ: GPU '$(cat "$tmp/gpu.out")', CPU '$(cat "$tmp/cpu.out")'"
	fail=1
fi
[ $fail = 0 ] && echo "backend-check: OK"
exit $fail
