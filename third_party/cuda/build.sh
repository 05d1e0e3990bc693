#!/usr/bin/env bash
# Builds ggml backend libraries with CMake from the pinned ollama module's ggml
# tree and installs them where ggml's backend registry finds them at run time.
#
# Usage: third_party/cuda/build.sh cuda|cpu-check DEST_DIR
#   cuda       libggml-base.so.0 + libggml-cuda.so (needs nvcc and CMake >= 3.21)
#   cpu-check  libggml-base.so.0 + libggml-cpu.so + libggml-fakegpu.so: the
#              same recipe without a GPU toolchain, for the CPU-side check
#   DEST_DIR   where the libraries go: lib/ollama beside bin/ for bin/chat
#              (ollama's loader looks in ../lib/ollama next to the executable),
#              or any folder whose path contains lib/ollama, named by
#              OLLAMA_LIBRARY_PATH
# Environment:
#   GGML_SRC   ggml's tree (default: ml/backend/ggml/ggml in the ollama module,
#              from `go list`; the device run passes a staged copy)
#   CUDA_ARCH  CUDA architectures, CMake syntax (default: native, the GPUs of
#              this machine; 90 for H100/H200, "86;89" for RTX 30xx/40xx)
#   BUILD_DIR  CMake build folder (default: .cache/ggml-build-KIND, reused)
#   JOBS       parallel compile jobs (default: all CPUs)
#   CMAKE_ARGS extra CMake arguments
set -euo pipefail

kind=${1:?usage: build.sh cuda|cpu-check DEST_DIR}
dest=${2:?usage: build.sh cuda|cpu-check DEST_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

die() { echo "build.sh: $*" >&2; exit 1; }

case $kind in
cuda)
	opts=(-DHIPRUNE_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-native}")
	targets=(ggml-base ggml-cuda)
	libs=(libggml-cuda.so)
	if ! command -v nvcc >/dev/null; then
		for d in /usr/local/cuda/bin /opt/cuda/bin; do
			[ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break
		done
	fi
	command -v nvcc >/dev/null || die "nvcc not found (install the CUDA toolkit, or put its bin/ on PATH)"
	export CUDACXX=${CUDACXX:-$(command -v nvcc)}
	;;
cpu-check)
	opts=(-DHIPRUNE_CPU_CHECK=ON)
	targets=(ggml-base ggml-cpu ggml-fakegpu)
	libs=(libggml-cpu.so libggml-fakegpu.so)
	;;
*) die "unknown kind '$kind' (cuda or cpu-check)" ;;
esac

command -v cmake >/dev/null || die "cmake not found (Debian: apt-get install cmake)"
if [ -z "${GGML_SRC:-}" ]; then
	command -v go >/dev/null || die "no GGML_SRC and no go to find the ollama module"
	GGML_SRC="$(cd "$root" && go list -m -f '{{.Dir}}' github.com/ollama/ollama)/ml/backend/ggml/ggml"
fi
[ -f "$GGML_SRC/src/CMakeLists.txt" ] || die "GGML_SRC=$GGML_SRC is not ggml's tree"
build=${BUILD_DIR:-$root/.cache/ggml-build-$kind}
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# A build folder configured by another generator cannot be reused.
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${gen[1]:-Unix Makefiles}" "$build/CMakeCache.txt"; then
	rm -rf "$build"
fi

t0=$(date +%s)
mkdir -p "$build"
# shellcheck disable=SC2086 # CMAKE_ARGS is a list of arguments
cmake -S "$here" -B "$build" "${gen[@]}" -DGGML_SRC="$GGML_SRC" "${opts[@]}" ${CMAKE_ARGS:-} >"$build/configure.log" 2>&1 ||
	{ tail -40 "$build/configure.log" >&2; die "cmake configure failed (log: $build/configure.log)"; }
cmake --build "$build" --target "${targets[@]}" -j "${JOBS:-$(nproc)}" ||
	die "cmake build failed"
out=$build/lib/ollama

# A backend library is dlopen()ed with RTLD_NOW: every ggml symbol it needs
# must come from libggml-base.so.0, since our binary exports none of its own.
command -v nm >/dev/null || die "nm not found (binutils)"
nm -D --defined-only "$out/libggml-base.so.0" | awk '{print $NF}' | sort -u >"$build/base.syms"
for l in "${libs[@]}"; do
	[ -f "$out/$l" ] || die "$out/$l was not built"
	missing=$(nm -D --undefined-only "$out/$l" | awk '{print $NF}' | grep -E '^(ggml|gguf)_' | sort -u | comm -23 - "$build/base.syms" || true)
	[ -z "$missing" ] || die "$l needs ggml symbols libggml-base.so.0 does not define: $missing"
	readelf -d "$out/$l" | grep -q 'R.*PATH.*\$ORIGIN' || die "$l has no \$ORIGIN run path"
done

mkdir -p "$dest"
cp -L "$out/libggml-base.so.0" "$dest/libggml-base.so.0"
for l in "${libs[@]}"; do cp "$out/$l" "$dest/$l"; done
echo "build.sh: $kind: ${libs[*]} and libggml-base.so.0 in $dest ($(($(date +%s) - t0)) s)"
