#!/usr/bin/env bash
# The GPU run (issue 14), on a machine with an NVIDIA GPU, nvcc, CMake and
# ninja but no Go and no network, from the root of a checkout in which
# `make device-bundle` made .device/bundle.tgz. With the device tool:
#
#   run(command="bash third_party/cuda/device-run.sh", carry=[".device"], timeout_s=600)
#
# Steps, each under its own ceiling (seconds; together more than the 600 a
# command may run, since the build's time is a guess: about 5 minutes for
# one architecture on 16 cores, not yet timed; the rest should take about
# 2). With the machine's start-up that fits the 15 minutes of device time a
# task has, once; a rerun soon after, on the still-warm machine, reuses the
# build.
#   0  GPU, tools, unpack; check the binaries built elsewhere run here   ~10
#   1  build.sh cuda (CUDA_ARCH, default 90: H100/H200): libggml-cuda.so  420
#      into .device/run/lib/ollama, the ../lib/ollama beside the binaries;
#      meanwhile bench -prepare generates the 1B pair on the CPU
#   2  the library loads (dlopen, as ggml's registry does), the registry
#      lists the CUDA device and the encoder picks it (bridge tests)       60
#   3  tests/gpu on the tiny and mid pairs: our encoder vs llama.cpp's
#      clip on the GPU and vs the CPU; the pipeline (-ngl 99, encoder on
#      the GPU) vs mtmd on the GPU and vs the CPU                           120
#   4  tests/gpu's encoder parity on the 1B pair (CLIP-L/14-336's depth)   60
#   5  chat -ngl 99 --encoder-gpu on the 1B pair, HiPrune 64 of 576          45
#   6  bench -model 1b -keep 64 -ngl 99 -encoder-gpu: rows mtmd, none,
#      hiprune-64 (medians of BENCH_RUNS runs, default 5; BENCH_FLAGS adds
#      bench flags)                                                          120
# Beside steps 1-4, the testbed model (issue 8) trains on the GPU for
# TRAIN_S seconds (default 270; 0 skips it) with PyTorch, from scenes of
# bin/testbed; steps 5 and 6 wait for it, so their timings have the GPU to
# themselves. It leaves model.pt and train.tgz (train.log, loss.csv,
# config.json) in $OUT; `train.py --resave` turns model.pt into weights.bin
# for `testbed export`.
# A step that fails is reported and the run goes on where it can. Output:
# $OUT (the device tool's folder; /tmp/hiprune-device elsewhere) gets
# device-run.log (the console), tests.log (the tests' whole output),
# chat.log, bench.log (its progress), 1b.json (its figures), summary.txt
# (what goes into the closing note), model.pt and train.tgz: eight files, the
# most the device tool brings back. The CMake build is in
# .cache/ggml-build-cuda, the models in .cache/models.
#
# --rehearse runs the same steps on a machine without a GPU, with the fake
# GPU test backend (build.sh cpu-check) in place of CUDA and every limit
# times LIMIT_SCALE (default 8), to check the script itself before device
# time is spent on it.
set -uo pipefail

kind=cuda backend_lib=libggml-cuda.so scale=1
if [ "${1:-}" = --rehearse ]; then
	kind=cpu-check backend_lib=libggml-fakegpu.so scale=${LIMIT_SCALE:-8}
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
OUT=${OUT:-/tmp/hiprune-device}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device-run.log") 2>&1
summary=$OUT/summary.txt
: >"$summary"
t_start=$(date +%s)
CUDA_ARCH=${CUDA_ARCH:-90}
BENCH_RUNS=${BENCH_RUNS:-5}
run=$root/.device/run
lib=$run/lib/ollama
export HIPRUNE_MODELS_DIR=$root/.cache/models
mkdir -p "$HIPRUNE_MODELS_DIR"
# The device tool brings back at most 8 files from $OUT: scratch goes here.
work=$(mktemp -d)

elapsed() { echo $(($(date +%s) - t_start)); }
note() { echo "$*" | tee -a "$summary"; }
# step NAME LIMIT_S CMD...: runs CMD under a time limit and records the
# result; STEP_OUT and STEP_ERR, if set, take CMD's stdout and stderr.
step() {
	local name=$1 limit=$2 t0 rc
	shift 2
	echo
	echo "== [$(elapsed) s] $name (limit ${limit} s)"
	t0=$(date +%s)
	timeout --kill-after=10 $((limit * scale)) "$@" >"${STEP_OUT:-/dev/stdout}" 2>"${STEP_ERR:-/dev/stderr}"
	rc=$?
	local verdict=ok
	[ $rc = 0 ] || verdict="FAILED (exit $rc$([ $rc = 124 ] && echo ', time limit'))"
	note "step: $name: $verdict, $(($(date +%s) - t0)) s"
	return $rc
}

# ---- 0: machine, tools, bundle -------------------------------------------------
note "device run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
gpu_name=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
note "GPU: ${gpu_name:-none found by nvidia-smi}"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
note "tools: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'no nvcc'); $(cmake --version 2>/dev/null | head -1 || echo 'no cmake'); ninja $(ninja --version 2>/dev/null || echo none); go: $(command -v go || echo none)"
note "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
[ -f .device/bundle.tgz ] || { note "no .device/bundle.tgz: run make device-bundle where Go is, and carry .device"; exit 1; }
rm -rf "$run/bin" "$run/ggml" && mkdir -p "$run" && tar xzf .device/bundle.tgz -C "$run" || { note "cannot unpack the bundle"; exit 1; }
sed 's/^/bundle: /' "$run/MANIFEST" | tee -a "$summary"
if ldd "$run/bin/chat" | grep -q 'not found' || ! "$run/bin/chat" --help >/dev/null 2>&1; then
	ldd "$run/bin/chat"
	note "bin/chat does not run here (system libraries older than where it was built?): stopping"
	exit 1
fi

# ---- 1: the CUDA library; the 1B pair and the testbed model meanwhile ----------------
(cd "$run" && bin/bench -model 1b -prepare >"$work/prepare.log" 2>&1) &
prepare_pid=$!
TRAIN_S=${TRAIN_S:-270}
train_pid=
if [ "$TRAIN_S" != 0 ]; then
	tb=$work/tb
	mkdir -p "$tb"
	note "testbed training: ${TRAIN_S} s budget on ${TRAIN_DEVICE:-cuda}, started at $(elapsed) s"
	(
		t0=$(date +%s)
		# shellcheck disable=SC2086 # TRAIN_ARGS is a list of arguments
		timeout --kill-after=10 $((TRAIN_S * scale + 150)) "${PYTHON:-python3}" tests/testbed/train/train.py \
			--device "${TRAIN_DEVICE:-cuda}" --streams "${TRAIN_STREAMS:-6}" --threads 4 \
			--time-budget $((TRAIN_S * scale)) --vit-batch 64 --batch 64 --eval-every 400 \
			--stream "$run/bin/testbed stream -seed 1" --heldout "$run/bin/testbed stream -seed 3" \
			--tokens "$run/tokens.json" --out "$tb" ${TRAIN_ARGS:-} >"$tb/train.log" 2>&1
		echo "train.py: exit $?, $(($(date +%s) - t0)) s" >>"$tb/train.log"
		[ -f "$tb/model.pt" ] && cp "$tb/model.pt" "$OUT/"
		# shellcheck disable=SC2046 # the files that exist
		(cd "$tb" && tar czf "$OUT/train.tgz" $(ls train.log loss.csv config.json 2>/dev/null))
	) &
	train_pid=$!
fi
if ! step "build $backend_lib (CUDA_ARCH=$CUDA_ARCH)" 420 env CUDA_ARCH="$CUDA_ARCH" GGML_SRC="$run/ggml" \
	JOBS="$(nproc)" bash "$here/build.sh" "$kind" "$lib"; then
	note "no $backend_lib: nothing else can run on the GPU"
	exit 1
fi
ls -la "$lib"
# The fake loads by ggml's out-of-tree variable; CUDA by its file name.
[ $kind = cuda ] || export GGML_BACKEND_PATH=$lib/$backend_lib
# libcuda.so.1 is the driver's; where the loader does not know its folder,
# look in the usual places.
if ldd "$lib/$backend_lib" | grep -q 'not found'; then
	for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/local/cuda/lib64 /usr/local/cuda/compat; do
		[ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	done
fi
ldd "$lib/$backend_lib" | grep -E 'not found|cuda|cublas|ggml'

# ---- 2: loading and the registry --------------------------------------------------
# ggml's registry drops a library it cannot load without a word (NDEBUG
# build), so load it once the same way (dlopen, RTLD_NOW) to see the reason.
step "dlopen $backend_lib" 30 python3 -c "import ctypes; ctypes.CDLL('$lib/$backend_lib', mode=ctypes.RTLD_LOCAL); print('loads')"
(cd bridge && step "registry lists CUDA, encoder picks it (bridge tests)" 60 env HIPRUNE_REQUIRE_GPU=1 \
	"$run/bin/bridge.test" -test.v -test.count=1 -test.run 'TestPickDevice$|TestEncoderRunsOnPickedDevice') |
	tee -a "$OUT/tests.log" | grep -E '^(---|ok|FAIL|PASS|== )|device [0-9]|encoder backend' | tee -a "$summary"

# ---- 3, 4: parity on the GPU ---------------------------------------------------------
(cd tests/gpu && step "GPU parity tests, tiny and mid pairs" 120 env HIPRUNE_REQUIRE_GPU=1 \
	"$run/bin/gpu.test" -test.v -test.count=1 -test.timeout $((110 * scale))s) |
	tee -a "$OUT/tests.log" | grep -E '^(---|ok|FAIL|PASS|ggml device|== )|gpu_test.go|Error' | tee -a "$summary"
wait $prepare_pid
note "1B pair: $(tail -1 "$work/prepare.log")"
(cd tests/gpu && step "GPU encoder parity, 1B pair (CLIP-L/14-336)" 60 env HIPRUNE_REQUIRE_GPU=1 HIPRUNE_GPU_PRESETS=1b \
	"$run/bin/gpu.test" -test.v -test.count=1 -test.run TestEncoderOnGPU -test.timeout $((55 * scale))s) |
	tee -a "$OUT/tests.log" | grep -E '^(---|ok|FAIL|PASS|== )|gpu_test.go|Error' | tee -a "$summary"

if [ -n "$train_pid" ]; then
	echo "== [$(elapsed) s] waiting for the testbed training"
	wait $train_pid
	note "testbed training: done at $(elapsed) s; $(grep -E '^time budget|^step [0-9]+: ViT frozen' "$tb/train.log" | tr '\n' ' ')"
	grep -E '^  heldout|overrun|^train.py: exit|Error|error' "$tb/train.log" | tail -4 | sed 's/^ */testbed training: /' | tee -a "$summary"
fi

# ---- 5: chat on the GPU --------------------------------------------------------------------
m=$HIPRUNE_MODELS_DIR
chat=(-m "$m/1b-lm.gguf" --mmproj "$m/1b-mmproj.gguf" --image "$root/eval/results/masks/scene01-hiprune-28.png"
	-p "What is in this picture?" -n 16 --temp 0 --keep 64 --timings)
STEP_OUT=$work/chat.out STEP_ERR=$work/chat.err step "chat -ngl 99 --encoder-gpu (1B pair, keep 64)" 45 \
	"$run/bin/chat" "${chat[@]}" -ngl 99 --encoder-gpu
cat "$work/chat.err"
cat "$work/chat.err" "$work/chat.out" >"$OUT/chat.log"
note "chat stdout: $(head -c 200 "$work/chat.out")"
note "chat: $(grep -o 'backend=[^ ]*' "$work/chat.err" | head -1); $(grep '^timings:' "$work/chat.err")"
if grep -q -E 'ggml_cuda_init|load_backend|CUDA devices' "$work/chat.err"; then
	note "chat: the CUDA library's start-up log reached stderr (not routed)"
fi

# ---- 6: the bench rows on the GPU ------------------------------------------------------------------
(cd "$run" && STEP_OUT=$work/bench.out STEP_ERR=$OUT/bench.log step "bench 1b: mtmd, none, hiprune-64 on the GPU" 120 \
	bin/bench -model 1b -keep 64 -runs "$BENCH_RUNS" -ngl 99 -encoder-gpu -out "$OUT" ${BENCH_FLAGS:-})
tail -20 "$OUT/bench.log"
tee -a "$summary" <"$work/bench.out"

echo
echo "== summary ($(elapsed) s in all)"
cat "$summary"
