#!/usr/bin/env bash
# Prepares what the GPU device run needs on a machine that has nvcc, CMake and
# ninja but no Go and no network (make device-bundle): DEST/bundle.tgz with
#   bin/chat, bin/bench                   the product and the benchmark
#   bin/gpu.test, bin/bridge.test         test binaries (go test -c)
#   bin/testbed, tokens.json              the testbed's scene generator and
#                                         prompt token ids, for training the
#                                         testbed model on the GPU meanwhile
#                                         (tests/testbed/train/train.py)
#   ggml/{include,cmake,src}              ggml's sources from the pinned module
#                                         (Metal and Vulkan left out), which
#                                         build.sh cuda compiles there
#   MANIFEST                              commit, Go version, flags, when
# Binaries are built for x86-64-v3 (BUNDLE_CPU_FLAGS), stripped (-s -w) and everything is gzipped, to stay well under
# the 64 MiB a device call carries. DEST holds only the archive, so DEST is
# the one path to carry. Run with the environment of `make env`.
set -euo pipefail

dest=${1:?usage: stage.sh DEST_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
GO=${GO:-go}
limit_mib=48
# The device machine's processor is not this one: -march=native could put
# instructions in llama.cpp's CPU code that it lacks (SIGILL). x86-64-v3
# (AVX2, FMA) runs on every GPU server of the last years. A different flag
# set from the native build's, so the first bundle compiles llama.cpp once
# more (cached after).
BUNDLE_CPU_FLAGS=${BUNDLE_CPU_FLAGS:--O3 -march=x86-64-v3}
[ "$($GO env GOARCH)" = amd64 ] || { echo "stage.sh: the device machine is x86-64; stage on an amd64 machine" >&2; exit 1; }
export CGO_ENABLED=1 CGO_CFLAGS="$BUNDLE_CPU_FLAGS" CGO_CXXFLAGS="$BUNDLE_CPU_FLAGS"

ggml="$($GO list -m -f '{{.Dir}}' github.com/ollama/ollama)/ml/backend/ggml/ggml"
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/ggml/src"

ld='-s -w'
$GO build -ldflags="$ld" -o "$tmp/bin/chat" ./cmd/chat
$GO build -ldflags="$ld" -o "$tmp/bin/bench" ./bench
$GO test -c -ldflags="$ld" -o "$tmp/bin/gpu.test" ./tests/gpu
$GO test -c -ldflags="$ld" -o "$tmp/bin/bridge.test" ./bridge
$GO build -ldflags="$ld" -o "$tmp/bin/testbed" ./tests/testbed/cmd/testbed
"$tmp/bin/testbed" tokens -out "$tmp/tokens.json"

cp -r "$ggml/include" "$ggml/cmake" "$tmp/ggml/"
(cd "$ggml/src" && tar cf - --exclude=./ggml-metal --exclude=./ggml-vulkan --exclude='*.go' .) | (cd "$tmp/ggml/src" && tar xf -)
{
	echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.device' || echo ' (with uncommitted changes)')"
	echo "go $($GO env GOVERSION), $($GO env GOOS)/$($GO env GOARCH), CGO_CFLAGS=$CGO_CFLAGS"
	echo "ggml from $ggml"
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
	objdump -T "$tmp/bin/chat" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 | sed 's/^/needs /'
} >"$tmp/MANIFEST"

mkdir -p "$dest"
rm -f "$dest"/bundle.tgz
tar czf "$dest/bundle.tgz" -C "$tmp" MANIFEST tokens.json bin ggml
size=$(($(stat -c %s "$dest/bundle.tgz") / 1048576))
cat "$tmp/MANIFEST"
echo "stage.sh: $dest/bundle.tgz, $size MiB (carry limit 64 MiB with the tracked tree)"
[ "$size" -le "$limit_mib" ] || { echo "stage.sh: bundle over $limit_mib MiB" >&2; exit 1; }
