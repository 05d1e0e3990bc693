// Package emulator lets tests run where the target is not the host: make
// cross-test builds the test binaries for linux/arm64 and runs them under
// qemu-user (go test -exec), and these helpers run the other target binaries
// a test starts (the chat binary, a re-executed test binary) the same way,
// and say when a test is meaningless or too slow there.
package emulator

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Env names the command line that runs target binaries when they cannot
// run natively, e.g. "qemu-aarch64 -cpu cortex-a76 -L /usr/aarch64-linux-gnu";
// make cross-test sets it and hands the same command to go test -exec.
// Machines without binfmt_misc (containers, this CI) cannot exec an arm64
// binary from inside an emulated process: the kernel refuses it as an exec
// format error, so every such exec must go through the emulator explicitly.
const Env = "HIPRUNE_EMULATOR"

// SlowdownEnv optionally overrides the factor by which Timeout stretches
// wall-clock limits under emulation.
const SlowdownEnv = "HIPRUNE_EMULATOR_SLOWDOWN"

// defaultSlowdown is what qemu-user's translation costs on ggml's kernels
// and the Go runtime, with margin: tests measured 5 to 20 times slower than
// native on the same machine.
const defaultSlowdown = 20

// Argv returns the emulator command line, or nil when target binaries run
// natively.
func Argv() []string {
	return strings.Fields(os.Getenv(Env))
}

// Active reports whether this process runs under user-mode emulation.
func Active() bool {
	return len(Argv()) > 0
}

// Skip skips t under emulation; why says what makes the test meaningless
// or too slow there.
func Skip(t testing.TB, why string) {
	t.Helper()
	if a := Argv(); len(a) > 0 {
		t.Skipf("skipped under emulation (%s): %s", a[0], why)
	}
}

// Timeout stretches a wall-clock limit meant for native speed by the
// emulation slowdown; natively it returns d unchanged.
func Timeout(d time.Duration) time.Duration {
	if !Active() {
		return d
	}
	f := defaultSlowdown
	if s := os.Getenv(SlowdownEnv); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			f = n
		}
	}
	return d * time.Duration(f)
}

// Command is exec.Command for a binary built for the target: under
// emulation the emulator runs it.
func Command(bin string, args ...string) *exec.Cmd {
	return CommandContext(context.Background(), bin, args...)
}

// CommandContext is exec.CommandContext for a binary built for the target.
func CommandContext(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if a := Argv(); len(a) > 0 {
		return exec.CommandContext(ctx, a[0], append(append(a[1:len(a):len(a)], bin), args...)...)
	}
	return exec.CommandContext(ctx, bin, args...)
}

// Cases returns cs natively; under emulation only the cases keep selects,
// for a table whose other rows repeat the same code path at more cost.
// why says what the dropped rows would have added.
func Cases[T any](t testing.TB, cs []T, keep func(T) bool, why string) []T {
	t.Helper()
	if !Active() {
		return cs
	}
	var out []T
	for _, c := range cs {
		if keep(c) {
			out = append(out, c)
		}
	}
	t.Logf("under emulation %d of %d cases: %s", len(out), len(cs), why)
	return out
}
