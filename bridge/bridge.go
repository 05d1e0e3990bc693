// Package bridge is hiprune-go's only cgo: Go wrappers over llama.cpp's C
// API (models, contexts, batches, sampling, chat templates, mtmd) and over
// our own C++ shim (bridge.h): the HiPrune-instrumented vision encoder and
// thin access to llama.cpp's clip for parity checks.
//
// llama.cpp itself is compiled by the pinned github.com/ollama/ollama module;
// this package only includes its headers (through third_party/include, made
// by third_party/setup.sh) and links against the symbols that module's cgo
// packages put in the same binary.
package bridge

/*
#cgo CPPFLAGS: -I${SRCDIR}/../third_party/include/ggml -I${SRCDIR}/../third_party/include/llama -I${SRCDIR}/../third_party/include/mtmd
#cgo CXXFLAGS: -std=c++17
#include <stdlib.h>
#include "bridge.h"
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"

extern void hpLogGo(int level, char * text, void * user);
static void hp_log_cb(enum ggml_log_level level, const char * text, void * user) {
	hpLogGo((int) level, (char *) text, user);
}
static void hp_install_logging(void) {
	llama_log_set(hp_log_cb, NULL);
	mtmd_log_set(hp_log_cb, NULL);
	mtmd_helper_log_set(hp_log_cb, NULL);
	ggml_log_set(hp_log_cb, NULL);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ollama/ollama/llama"

	// ggml's AMX kernels, which ollama's cgo build leaves out (package doc)
	_ "github.com/hiprune/hiprune-go/bridge/amx"
)

// Error classes of the C ABI, for errors.Is.
var (
	ErrIO      = errors.New("i/o error")
	ErrFormat  = errors.New("bad model file")
	ErrUnsup   = errors.New("unsupported model")
	ErrArg     = errors.New("bad argument")
	ErrBackend = errors.New("backend failure")
)

func codeErr(code C.int, msg string) error {
	var kind error
	switch code {
	case C.HP_ERR_IO:
		kind = ErrIO
	case C.HP_ERR_FORMAT:
		kind = ErrFormat
	case C.HP_ERR_UNSUP:
		kind = ErrUnsup
	case C.HP_ERR_ARG:
		kind = ErrArg
	default:
		kind = ErrBackend
	}
	return &cError{kind: kind, msg: msg}
}

type cError struct {
	kind error
	msg  string
}

func (e *cError) Error() string { return e.msg }
func (e *cError) Unwrap() error { return e.kind }

const errBufLen = 1024

// errBuf is a C buffer for the ABI's error messages; free with free().
func errBuf() *C.char { return (*C.char)(C.calloc(errBufLen, 1)) }

var initOnce sync.Once

// Init loads ggml's backends and routes llama.cpp's logging to slog. It is
// called by every constructor in this package; calling it again is free.
func Init() {
	initOnce.Do(func() {
		// ollama's backend loader reports what it found through slog at info
		// level; that is noise for our users unless they asked for logs.
		prev := slog.Default()
		if !verbose.Load() {
			slog.SetDefault(slog.New(slog.DiscardHandler))
		}
		// Our logger first, also on the backend libraries' copy of ggml's
		// core, so what the registry and the backends say while loading
		// goes through it too (a CUDA library announces every device).
		C.hp_install_logging()
		routeBackendLogs()
		llama.BackendInit()
		slog.SetDefault(prev)
		C.hp_install_logging()
		routeLoadedBackendLogs()
		// Before any backend exists: llama.cpp's contexts free GPU
		// backends before their scheduler (bridge.h).
		C.hp_guard_gpu_backends()
	})
}

// verbose makes llama.cpp's info-level chatter visible (at slog debug).
var verbose atomic.Bool

// SetVerbose turns llama.cpp's informational logs on or off. Warnings and
// errors are always logged.
func SetVerbose(v bool) { verbose.Store(v) }

var logLine struct {
	sync.Mutex
	buf strings.Builder
	lvl int
}

//export hpLogGo
func hpLogGo(level C.int, text *C.char, _ unsafe.Pointer) {
	s := C.GoString(text)
	logLine.Lock()
	defer logLine.Unlock()
	lvl := int(level)
	if lvl == int(C.GGML_LOG_LEVEL_CONT) {
		lvl = logLine.lvl
	}
	logLine.lvl = lvl
	logLine.buf.WriteString(s)
	if !strings.HasSuffix(s, "\n") {
		return
	}
	line := strings.TrimRight(logLine.buf.String(), "\n")
	logLine.buf.Reset()
	ctx := context.Background()
	switch {
	case lvl >= int(C.GGML_LOG_LEVEL_ERROR):
		if !captureLine(line) {
			slog.Error("llama.cpp: " + line)
		}
	case lvl == int(C.GGML_LOG_LEVEL_WARN) && verbose.Load():
		slog.Warn("llama.cpp: " + line)
	default:
		if verbose.Load() {
			slog.Log(ctx, slog.LevelDebug, "llama.cpp: "+line)
		}
	}
}

// SystemInfo reports the CPU features ggml was compiled with.
func SystemInfo() string {
	Init()
	return C.GoString(C.llama_print_system_info())
}

func goErr(code C.int, buf *C.char, what string) error {
	if code == C.HP_OK {
		return nil
	}
	msg := C.GoString(buf)
	if msg == "" {
		msg = fmt.Sprintf("%s failed (code %d)", what, int(code))
	}
	return codeErr(code, msg)
}
