#!/usr/bin/env bash
# Puts in place what the pinned llama.cpp (inside github.com/ollama/ollama)
# needs to compile but the Go module zip lacks, and links the header trees our
# own cgo (bridge/) compiles against. Idempotent; safe to run on every build.
#
# Usage: third_party/setup.sh INCLUDE_DIR
#   INCLUDE_DIR  stable directory outside the checkout that receives
#                miniaudio/miniaudio.h (it goes into CGO_CPPFLAGS, so it must
#                not depend on where the repository is cloned, or every clone
#                would rebuild llama.cpp from cold).
set -euo pipefail

inc=${1:?usage: setup.sh INCLUDE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

# Without apt-get (macOS), copies of the headers in INCLUDE_DIR do as well.
need_apt=()
[ -f /usr/include/nlohmann/json.hpp ] || [ -f "$inc/nlohmann/json.hpp" ] || need_apt+=(nlohmann-json3-dev)
[ -f /usr/include/stb/stb_image.h ] || [ -f "$inc/stb/stb_image.h" ] || need_apt+=(libstb-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
	if ! command -v apt-get >/dev/null; then
		echo "setup: missing ${need_apt[*]} and no apt-get; install them by hand," \
			"or copy nlohmann/json.hpp, nlohmann/json_fwd.hpp and stb/stb_image.h into $inc" >&2
		exit 1
	fi
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	# A fresh machine has empty package lists: apt-get install would find nothing.
	if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' -e '^auxfiles$')" ]; then
		$sudo apt-get update -q
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need_apt[@]}" ||
		{ $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need_apt[@]}"; }
fi

go mod download
ollama=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
malgo=$(go list -m -f '{{.Dir}}' github.com/gen2brain/malgo)

mkdir -p "$inc/miniaudio"
if ! cmp -s "$malgo/miniaudio.h" "$inc/miniaudio/miniaudio.h"; then
	install -m 0644 "$malgo/miniaudio.h" "$inc/miniaudio/miniaudio.h"
fi

# bridge/ includes ggml.h, gguf.h, llama.h and clip.h through these links
# (git-ignored), so its #cgo lines can stay relative to ${SRCDIR}.
links="$root/third_party/include"
mkdir -p "$links"
ln -sfn "$ollama/ml/backend/ggml/ggml/include" "$links/ggml"
# ggml's internal headers, for the backend interface tables only (bridge/backend_guard.cpp)
ln -sfn "$ollama/ml/backend/ggml/ggml/src" "$links/ggml-src"
ln -sfn "$ollama/llama/llama.cpp/include" "$links/llama"
ln -sfn "$ollama/llama/llama.cpp/tools/mtmd" "$links/mtmd"
