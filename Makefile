# hiprune-go. Every target that compiles uses the same CGO flags, so the
# two-minute cgo build of llama.cpp happens once and is cached after.
SHELL := /bin/bash
GO ?= go

ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
# On a CPU with AMX (Xeon Sapphire Rapids and later) -march=native targets it,
# and bridge/amx compiles the AMX kernels ollama's cgo build leaves out, so
# llama.cpp uses them for quantized weights. Elsewhere the AMX switches stay
# off as before: the flags are part of the cgo cache key, and unchanged flags
# keep the compiled llama.cpp.
ifeq ($(shell grep -qw amx_int8 /proc/cpuinfo 2>/dev/null && echo amx),amx)
CPU_FLAGS ?= -O3 -march=native
else
CPU_FLAGS ?= -O3 -march=native -mno-amx-int8 -mno-amx-tile -mno-amx-bf16
endif
else
CPU_FLAGS ?= -O3 -mcpu=native
endif
# Outside the checkout on purpose: it is part of CGO_CPPFLAGS, and a path
# that changed with every clone would rebuild llama.cpp from cold.
THIRD_PARTY_INCLUDE ?= $(HOME)/.cache/hiprune-go/include

export CGO_ENABLED := 1
export CGO_CFLAGS := $(CPU_FLAGS)
export CGO_CXXFLAGS := $(CPU_FLAGS)
# ggml's repacked weight layouts (Q4_0, Q4_K, IQ4_NL interleaved for the
# CPU's int8 dot products: AVX2, arm64 dotprod/i8mm), which llama.cpp's own
# CMake build turns on by default (GGML_CPU_REPACK) and ollama's cgo build
# leaves out. GGML_CPU_REPACK=0 builds without them.
GGML_CPU_REPACK ?= 1
export CGO_CPPFLAGS := -I$(THIRD_PARTY_INCLUDE)$(if $(filter 1,$(GGML_CPU_REPACK)), -DGGML_USE_CPU_REPACK)

# Generated models live outside the repository.
MODELS_DIR ?= $(HOME)/.cache/hiprune-go/models
export HIPRUNE_MODELS_DIR := $(MODELS_DIR)

TEST_FLAGS ?= -count=1
TEST_TIMEOUT ?= 25m

.PHONY: all deps node-deps build test bench vet demo fuzz fuzz-inputs env clean testbed eval

all: build

deps: .deps-stamp

.deps-stamp: go.mod go.sum third_party/setup.sh
	@bash third_party/setup.sh "$(THIRD_PARTY_INCLUDE)"
	@touch $@

# Prints the environment to build by hand: eval "$$(make -s env)".
env:
	@echo "export CGO_ENABLED=1 CGO_CFLAGS='$(CGO_CFLAGS)' CGO_CXXFLAGS='$(CGO_CXXFLAGS)' CGO_CPPFLAGS='$(CGO_CPPFLAGS)' HIPRUNE_MODELS_DIR='$(MODELS_DIR)'"

build: deps
	$(GO) build -o bin/chat ./cmd/chat

vet: deps
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# chat serve's tests drive the server with the openai npm package, which the
# test installs from the npm registry; Node.js and npm come from Debian.
node-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q nodejs npm; } || \
		echo "make: no Node.js or npm; the openai npm client test will be skipped"

# The llava package's concurrency contract runs under the race detector
# too (its first build compiles llama.cpp once more, cached after).
test: vet node-deps
	$(GO) test $(TEST_FLAGS) -timeout $(TEST_TIMEOUT) ./...
	$(GO) test $(TEST_FLAGS) -race -timeout $(TEST_TIMEOUT) -run 'TestConcurrentSessions|TestClosed' ./llava/

# The demo asks the shipped testbed model (tests/testbed/model, a miniature
# LLaVA-1.5 trained on shape scenes) about a held-out scene, unpruned and
# keeping 1/9 of its 256 image tokens (LLaVA-1.5's 64 of 576).
DEMO_SCENE ?= 11
DEMO_KEEP ?= 28

demo: build bin/testbed
	@set -euo pipefail; \
	img="$(MODELS_DIR)/demo-scene.png"; mkdir -p "$(MODELS_DIR)"; \
	qa=$$(bin/testbed scene -index $(DEMO_SCENE) -out "$$img" | head -1); \
	q=$$(echo "$$qa" | cut -f2); want=$$(echo "$$qa" | cut -f3); \
	common=(-m $(TESTBED_DIR)/lm.gguf --mmproj $(TESTBED_DIR)/mmproj.gguf --image "$$img" -p "$$q" -n 4 --temp 0 --timings); \
	echo "image:    $$img (held-out scene $(DEMO_SCENE))"; \
	echo "question: $$q   (right answer: $$want)"; \
	echo "== all 256 image tokens (--prune none, llama.cpp's behaviour)"; \
	bin/chat "$${common[@]}" --prune none 2>&1 | tee /tmp/hiprune-demo-none.log; \
	echo "== HiPrune: keep $(DEMO_KEEP) of 256 (--keep $(DEMO_KEEP))"; \
	bin/chat "$${common[@]}" --keep $(DEMO_KEEP) --object-layer 3 --save-mask demo-mask.png 2>&1 | tee /tmp/hiprune-demo-keep.log; \
	echo; echo "== side by side"; \
	printf '%-9s %s\n' "none" "$$(grep '^timings:' /tmp/hiprune-demo-none.log)"; \
	printf '%-9s %s\n' "keep $(DEMO_KEEP)" "$$(grep '^timings:' /tmp/hiprune-demo-keep.log)"; \
	echo "mask of the kept patches: demo-mask.png"

# Time to first token, prefill, decode speed and image KV memory at real
# model shapes (generated into MODELS_DIR on first use), llama.cpp's mtmd vs
# our pipeline unpruned and with HiPrune; writes bench/results/$(MODEL).json.
# MODEL=1b (default, under 10 minutes on 2 cores), 7b, 1b-next (LLaVA-NeXT:
# a 672 x 672 image as a base view and 2 x 2 tiles, budgets 640/320/160 of
# 2,880 as fractions) or qwen3b (Qwen2.5-VL-3B shapes: a 1024 x 1024 image,
# 1,369 merged tokens, retention ratios 0.334/0.223/0.112); RUNS=0 picks the
# model's default (5 for 1b, 3 else).
MODEL ?= 1b
RUNS ?= 0

bench: deps
	$(GO) run ./bench -model $(MODEL) -runs $(RUNS) -out bench/results

# The accuracy testbed (tests/testbed): a miniature LLaVA-1.5 trained on
# generated shape scenes, shipped in tests/testbed/model. `make testbed`
# retrains it (Debian's torch, about 40 minutes on 2 cores; a development
# tool, never needed to run or test the product); `make eval` measures
# accuracy under pruning through the llava pipeline (about 14 minutes).
TESTBED_DIR ?= tests/testbed/model
TESTBED_WORK ?= $(HOME)/.cache/hiprune-go/testbed
TESTBED_SEED ?= 1

bin/testbed: deps FORCE
	$(GO) build -o bin/testbed ./tests/testbed/cmd/testbed

testbed: bin/testbed
	@dpkg -s python3-torch libopenblas0-pthread >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread; }
	@mkdir -p "$(TESTBED_WORK)"
	bin/testbed tokens -out "$(TESTBED_WORK)/tokens.json"
	/usr/bin/python3 tests/testbed/train/train.py --seed $(TESTBED_SEED) \
		--stream "$(CURDIR)/bin/testbed stream -seed 1" --heldout "$(CURDIR)/bin/testbed stream -seed 3" \
		--tokens "$(TESTBED_WORK)/tokens.json" --out "$(TESTBED_WORK)" 2>&1 | tee "$(TESTBED_WORK)/train.log"
	bin/testbed export -weights "$(TESTBED_WORK)/weights.bin" -out "$(TESTBED_DIR)"
	cp "$(TESTBED_WORK)/loss.csv" "$(TESTBED_WORK)/config.json" "$(TESTBED_DIR)/"

eval: bin/testbed
	bin/testbed eval -out eval/results/testbed.json -masks eval/results/masks

FORCE:

# Go fuzzing of the selection, the GGUF header reader and the image decoder,
# FUZZTIME each, one worker (FUZZ_PARALLEL) to leave the other core free.
FUZZTIME ?= 60s
FUZZ_PARALLEL ?= 1
FUZZ_FLAGS = -run='^$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10s -parallel=$(FUZZ_PARALLEL)

fuzz: deps
	$(GO) test ./hiprune/ $(FUZZ_FLAGS) -fuzz=FuzzSelect
	$(GO) test ./internal/gguf/ $(FUZZ_FLAGS) -fuzz=FuzzOpen
	$(GO) test ./llava/imageprep/ $(FUZZ_FLAGS) -fuzz=FuzzDecode

# The whole hostile-input corpus (tests/hostile: every GGUF header field of
# both files, truncations, malformed and unsupported images; about 2,900
# cases, under 2 minutes on 2 cores) through the chat binary; make test runs
# a sample of about 370.
fuzz-inputs: deps
	HIPRUNE_HOSTILE=full $(GO) test -count=1 -timeout 60m -run TestHostileInputs ./tests/hostile/

# ---- GPU (CUDA): ggml backend libraries, loaded at run time ------------------
# make cuda: ggml's CUDA backend (libggml-cuda.so and the libggml-base.so.0 it
# links), built with CMake from the pinned module's ggml tree into lib/ollama,
# where bin/chat's ggml looks (../lib/ollama beside the executable). Needs
# nvcc and CMake >= 3.21. CUDA_ARCH: CMake's CUDA architectures, native (the
# GPUs of this machine; CMake >= 3.24) by default, 90 for H100/H200, "86;89"
# for RTX 30/40.
# Then bin/chat -ngl 99 --encoder-gpu runs the LM and the encoder on the GPU.
# make backend-check: the same recipe and loading path without a GPU (a CPU
# backend module and a fake GPU test device, then the GPU tests on it).
# make device-bundle: .device/bundle.tgz for a machine with a GPU and no Go
# (binaries, test binaries and ggml's sources); the run there is
# third_party/cuda/device-run.sh. All three: third_party/README.md.
CUDA_ARCH ?= native

.PHONY: cuda backend-check device-bundle amx-check

# make amx-check: on any x86-64 machine, compiles and links bin/chat as for a
# Xeon with AMX (-march=sapphirerapids), so the AMX path (bridge/amx) is known
# to build where it cannot run (the binary needs AVX-512 and AMX). The first
# run compiles llama.cpp once more for those flags, cached after.
AMX_CHECK_FLAGS ?= -O3 -march=sapphirerapids
amx-check: deps
	@mkdir -p .cache/amx-check
	CGO_CFLAGS='$(AMX_CHECK_FLAGS)' CGO_CXXFLAGS='$(AMX_CHECK_FLAGS)' $(GO) build -o .cache/amx-check/chat ./cmd/chat
	@nm -C .cache/amx-check/chat | grep -q ' T ggml_backend_amx_buffer_type()$$' || { echo "amx-check: ggml's AMX buffer type is not in the binary" >&2; exit 1; }
	@echo "amx-check: bin/chat built for $(AMX_CHECK_FLAGS) with ggml's AMX kernels (.cache/amx-check/chat)"

cuda: build
	CUDA_ARCH='$(CUDA_ARCH)' bash third_party/cuda/build.sh cuda lib/ollama

backend-check: build
	bash third_party/cuda/backend-check.sh

device-bundle: deps
	bash third_party/cuda/stage.sh .device

clean:
	rm -rf bin .deps-stamp third_party/include

# ---------------------------------------------------------------------------
# arm64 (edge devices: Raspberry Pi 5, Jetson-class boards) from this x86-64
# machine: Debian's cross toolchain and generic armv8.2-a flags (dot product
# and fp16, which the Cortex-A76 of a Pi 5 and the Cortex-A78AE of a Jetson
# Orin have; no -mcpu=native). The native flags above are left alone: these
# targets pass their own CC, CXX, GOARCH and CGO flags, so the cgo build
# cache keeps one llama.cpp per architecture (the first arm64 compile takes
# about 20 minutes on 2 loaded cores, cached after).
ARM64_CPU_FLAGS ?= -O3 -march=armv8.2-a+dotprod+fp16
ARM64_SYSROOT ?= /usr/aarch64-linux-gnu
# uname -m says aarch64 on arm64 Linux, arm64 on macOS: both run arm64 natively.
ARM64_HOST := $(filter aarch64 arm64,$(ARCH))
ifneq ($(ARM64_HOST),)
ARM64_CC ?= gcc
ARM64_CXX ?= g++
ARM64_EMULATOR ?=
ARM64_OS :=
else
ARM64_CC ?= aarch64-linux-gnu-gcc
ARM64_CXX ?= aarch64-linux-gnu-g++
# No binfmt_misc is assumed: go test -exec runs each test binary under qemu,
# and the tests run every arm64 binary they start through HIPRUNE_EMULATOR.
# The emulated CPU is a Pi 5's Cortex-A76, so an instruction beyond what the
# flags promise would fault here too (qemu's default "max" CPU has them all).
ARM64_EMULATOR ?= qemu-aarch64 -cpu cortex-a76 -L $(ARM64_SYSROOT)
ARM64_OS := GOOS=linux
endif
ARM64_ENV = CGO_ENABLED=1 $(ARM64_OS) GOARCH=arm64 CC=$(ARM64_CC) CXX=$(ARM64_CXX) \
	CGO_CFLAGS='$(ARM64_CPU_FLAGS)' CGO_CXXFLAGS='$(ARM64_CPU_FLAGS)'
CROSS_TEST_TIMEOUT ?= 180m

# `make build GOARCH=arm64` cross-compiles bin/chat with the flags above.
ifeq ($(GOARCH),arm64)
ifeq ($(ARM64_HOST),)
CGO_CFLAGS := $(ARM64_CPU_FLAGS)
CGO_CXXFLAGS := $(ARM64_CPU_FLAGS)
export CC := $(ARM64_CC)
export CXX := $(ARM64_CXX)
export GOOS := linux
endif
endif

.PHONY: cross-deps cross-test

# Debian's cross toolchain, qemu-user and the arm64 C library qemu loads.
cross-deps:
	@if [ -z "$(ARM64_HOST)" ] && ! { command -v $(ARM64_CXX) && command -v qemu-aarch64 && \
		[ -e $(ARM64_SYSROOT)/lib/ld-linux-aarch64.so.1 ]; } >/dev/null; then \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		if [ -z "$$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$$' -e '^partial$$' -e '^auxfiles$$')" ]; then \
			$$sudo apt-get update -q; fi; \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q crossbuild-essential-arm64 qemu-user || \
		{ $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q crossbuild-essential-arm64 qemu-user; }; \
	fi

# vet, then every unit, parity and CLI test built for linux/arm64 and run
# under qemu-user, on the tiny generated models; tests at real shapes or too
# slow under emulation skip, saying why. The whole run took 1 h 38 min on
# two cores, a package at a time (llava 43 min, bridge 29, cmd/chat 20):
# CROSS_PKGS runs part of it, e.g. make cross-test CROSS_PKGS=./bridge/.
CROSS_PKGS ?= ./...
cross-test: deps cross-deps
	$(ARM64_ENV) $(GO) vet ./...
	$(ARM64_ENV) HIPRUNE_EMULATOR='$(ARM64_EMULATOR)' $(GO) test $(TEST_FLAGS) -timeout $(CROSS_TEST_TIMEOUT) \
		$(if $(ARM64_EMULATOR),-exec '$(ARM64_EMULATOR)') $(CROSS_PKGS)
