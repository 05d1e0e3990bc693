# hiprune-go. Every target that compiles uses the same CGO flags, so the
# two-minute cgo build of llama.cpp happens once and is cached after.
SHELL := /bin/bash
GO ?= go

ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
# -march=native also enables AMX on recent Xeons, whose kernels ollama's cgo
# build does not compile (link error on ggml_backend_amx_buffer_type).
CPU_FLAGS ?= -O3 -march=native -mno-amx-int8 -mno-amx-tile -mno-amx-bf16
else
CPU_FLAGS ?= -O3 -mcpu=native
endif
# Outside the checkout on purpose: it is part of CGO_CPPFLAGS, and a path
# that changed with every clone would rebuild llama.cpp from cold.
THIRD_PARTY_INCLUDE ?= $(HOME)/.cache/hiprune-go/include

export CGO_ENABLED := 1
export CGO_CFLAGS := $(CPU_FLAGS)
export CGO_CXXFLAGS := $(CPU_FLAGS)
export CGO_CPPFLAGS := -I$(THIRD_PARTY_INCLUDE)

# Generated models live outside the repository.
MODELS_DIR ?= $(HOME)/.cache/hiprune-go/models
export HIPRUNE_MODELS_DIR := $(MODELS_DIR)

TEST_FLAGS ?= -count=1
TEST_TIMEOUT ?= 25m

.PHONY: all deps build test bench vet demo fuzz env clean

# The demo model: a ~1B-parameter Llama (Q4_0) with LLaVA-1.5's real CLIP
# ViT-L/14-336 encoder (f16), random weights: answers are gibberish, timings
# are real.
DEMO_MODEL ?= 1b
DEMO_PROMPT ?= What is in this picture?

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

test: deps
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) -timeout $(TEST_TIMEOUT) ./...

demo: build
	@set -euo pipefail; \
	paths=$$($(GO) run ./tests/testmodel/cmd/genmodels -preset $(DEMO_MODEL) -out "$(MODELS_DIR)" -image "$(MODELS_DIR)/demo.png"); \
	lm=$$(echo "$$paths" | sed -n 1p); mm=$$(echo "$$paths" | sed -n 2p); \
	common=(-m "$$lm" --mmproj "$$mm" --image "$(MODELS_DIR)/demo.png" -p "$(DEMO_PROMPT)" -n 16 --temp 0 --timings); \
	echo "== llama.cpp's behaviour: all 576 image tokens (--prune none)"; \
	bin/chat "$${common[@]}" --prune none 2>&1 | tee /tmp/hiprune-demo-none.log; \
	echo "== HiPrune: keep 64 of 576 (--keep 64)"; \
	bin/chat "$${common[@]}" --keep 64 --save-mask demo-mask.png 2>&1 | tee /tmp/hiprune-demo-keep.log; \
	echo; echo "== side by side"; \
	printf '%-9s %s\n' "none" "$$(grep '^timings:' /tmp/hiprune-demo-none.log)"; \
	printf '%-9s %s\n' "keep 64" "$$(grep '^timings:' /tmp/hiprune-demo-keep.log)"; \
	echo "mask of the kept patches: demo-mask.png"

# Time to first token, prefill, decode speed and image KV memory at real
# model shapes (generated into MODELS_DIR on first use), llama.cpp's mtmd vs
# our pipeline unpruned and with HiPrune; writes bench/results/$(MODEL).json.
# MODEL=1b (default, under 10 minutes on 2 cores) or 7b; RUNS=0 picks the
# model's default (5 for 1b, 3 for 7b).
MODEL ?= 1b
RUNS ?= 0

bench: deps
	$(GO) run ./bench -model $(MODEL) -runs $(RUNS) -out bench/results

fuzz: deps
	$(GO) test ./hiprune/ -run='^$$' -fuzz=FuzzSelect -fuzztime=60s

clean:
	rm -rf bin .deps-stamp third_party/include
