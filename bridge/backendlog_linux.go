package bridge

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include "ggml.h"

extern void hpLogGo(int level, char * text, void * user);
static void hp_backend_log_cb(enum ggml_log_level level, const char * text, void * user) {
	hpLogGo((int) level, (char *) text, user);
}

// hp_route_backend_logs points the logger of a libggml-base.so.0 at ours.
// Backend libraries (libggml-cuda.so, ...) link that copy of ggml's core, not
// the one compiled into this binary, and its default logger prints every
// line, start-up chatter included, to stderr. path loads the file first (it
// stays loaded: the backends the registry loads next share it, by soname);
// NULL looks for a copy already loaded. Returns 1 when a logger was set.
static int hp_route_backend_logs(const char * path) {
	void * h = path ? dlopen(path, RTLD_LAZY | RTLD_LOCAL) : dlopen("libggml-base.so.0", RTLD_LAZY | RTLD_NOLOAD);
	if (!h) return 0;
	void (*set)(ggml_log_callback, void *) = (void (*)(ggml_log_callback, void *)) dlsym(h, "ggml_log_set");
	if (set) set(hp_backend_log_cb, NULL);
	if (!path) dlclose(h);
	return set != NULL;
}
*/
import "C"

import (
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

// backendDirs are the folders ollama's ggml.OnceLoad (called by Init) loads
// backend libraries from: OLLAMA_LIBRARY_PATH, else ../lib/ollama beside
// the executable, keeping only the executable's folder and folders whose
// path contains lib/ollama (ml/backend/ggml/ggml/src/ggml.go).
func backendDirs() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = "."
	}
	paths, ok := os.LookupEnv("OLLAMA_LIBRARY_PATH")
	if !ok {
		paths = filepath.Join(filepath.Dir(exe), "..", "lib", "ollama")
	}
	var dirs []string
	for _, p := range filepath.SplitList(paths) {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if abs == filepath.Dir(exe) || strings.Contains(abs, filepath.FromSlash("lib/ollama")) {
			dirs = append(dirs, abs)
		}
	}
	return dirs
}

// routeBackendLogs runs before the registry loads backend libraries: it
// loads the libggml-base.so.0 they will link, from the first folder that
// has one, and routes its log through ours.
func routeBackendLogs() {
	for _, d := range backendDirs() {
		p := filepath.Join(d, "libggml-base.so.0")
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		cp := C.CString(p)
		ok := C.hp_route_backend_logs(cp) == 1
		C.free(unsafe.Pointer(cp))
		if ok {
			return
		}
	}
}

// routeLoadedBackendLogs catches a copy the registry loaded from elsewhere
// (GGML_BACKEND_PATH's library, with its own run path).
func routeLoadedBackendLogs() { C.hp_route_backend_logs(nil) }
