package bridge

import (
	"log/slog"
	"strings"
	"sync"
)

// llama.cpp reports why a model did not load only through its log
// ("llama_model_load: error loading model: missing tensor '...'"), and the
// load returns NULL. While LoadModel runs, the error lines are collected
// here instead of logged, so that its error says what llama.cpp said.
var loadErrs struct {
	run   sync.Mutex // one capturing load at a time
	mu    sync.Mutex // guards on and lines
	on    bool
	lines []string
}

// captureLoadErrors runs load with llama.cpp's error lines collected and
// returns them. The caller puts them in its error on failure, or calls
// logLoadErrors on success so that nothing is lost.
func captureLoadErrors[T any](load func() T) (T, []string) {
	loadErrs.run.Lock()
	defer loadErrs.run.Unlock()
	loadErrs.mu.Lock()
	loadErrs.on, loadErrs.lines = true, nil
	loadErrs.mu.Unlock()
	v := load()
	loadErrs.mu.Lock()
	lines := loadErrs.lines
	loadErrs.on, loadErrs.lines = false, nil
	loadErrs.mu.Unlock()
	return v, lines
}

// captureLine keeps an error line for the running load; false when no
// load is capturing.
func captureLine(line string) bool {
	loadErrs.mu.Lock()
	defer loadErrs.mu.Unlock()
	if !loadErrs.on {
		return false
	}
	loadErrs.lines = append(loadErrs.lines, line)
	return true
}

func logLoadErrors(lines []string) {
	for _, l := range lines {
		slog.Error("llama.cpp: " + l)
	}
}

// loadReason is the reason llama.cpp gave in lines: the text after "error
// loading model: " when there is one, else every line.
func loadReason(lines []string) string {
	const mark = "error loading model: "
	for _, l := range lines {
		if i := strings.Index(l, mark); i >= 0 {
			return strings.TrimSpace(l[i+len(mark):])
		}
	}
	if len(lines) == 0 {
		return "llama.cpp gave no reason"
	}
	return strings.Join(lines, "; ")
}
