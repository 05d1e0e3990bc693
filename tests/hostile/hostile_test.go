package hostile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// Knobs, read from the environment:
//
//	HIPRUNE_HOSTILE=full      the whole corpus (make fuzz-inputs), not the sample
//	HIPRUNE_HOSTILE_TIMEOUT   seconds per case (default 20)
//	HIPRUNE_HOSTILE_KEEP=DIR  keep every case's files under DIR to reproduce by hand
const (
	envFull    = "HIPRUNE_HOSTILE"
	envTimeout = "HIPRUNE_HOSTILE_TIMEOUT"
	envKeep    = "HIPRUNE_HOSTILE_KEEP"
	// perGroup is how many cases of each (input, header field kind) the
	// short corpus keeps.
	perGroup = 5
	// minShort is the size the short corpus must reach (issue 16).
	minShort = 200
	// parallel bounds the chat processes running at once (2-core machines).
	parallel = 2
)

// basePair is the smallest pair the generator makes that chat runs end to
// end: a 1-layer, 16-wide Llama and a 2-block, 16-wide CLIP on 28 px images
// (4 patches), so a case that gets as far as the model costs milliseconds.
func basePair() (testmodel.LMSpec, testmodel.ClipSpec) {
	lm := testmodel.LMSpec{NEmbd: 16, NLayer: 1, NHead: 2, NHeadKV: 2, NFF: 32, NCtx: 512, Type: testmodel.F32,
		Seed: testmodel.DefaultSeed}
	clip := testmodel.ClipSpec{ImageSize: 28, PatchSize: 14, NEmbd: 16, NHead: 2, NFF: 32, NLayer: 2, ProjDim: 16,
		Type: testmodel.F32, Seed: testmodel.DefaultSeed + 1, Mean: testmodel.CLIPMean, Std: testmodel.CLIPStd,
		LayerNormEps: testmodel.DefaultLNEps}
	return lm, clip
}

func buildChat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chat")
	// The environment (CGO flags included) is inherited, so llama.cpp comes
	// from the same build cache as this test's.
	out, err := exec.Command("go", "build", "-o", bin, "github.com/hiprune/hiprune-go/cmd/chat").CombinedOutput()
	require.NoError(t, err, "building chat: %s", out)
	return bin
}

type outcome struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	timedOut       bool
}

func run(bin string, timeout time.Duration, args []string) (outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := emulator.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader("")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	t0 := time.Now()
	err := cmd.Run()
	o := outcome{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(t0), timedOut: ctx.Err() != nil}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		o.code = ee.ExitCode() // -1 when killed by a signal
	case o.timedOut:
		o.code = -1
	default:
		return o, err
	}
	return o, nil
}

func hashFiles(t *testing.T, paths []string) map[string][32]byte {
	t.Helper()
	h := map[string][32]byte{}
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		h[p] = sha256.Sum256(b)
	}
	return h
}

// crashMarkers are what an abort, a panic or a debugger dump print.
var crashMarkers = []string{"goroutine ", "panic:", "SIGABRT", "SIGSEGV", "GGML_ASSERT", "GGML_ABORT", "terminate called",
	"fatal error", "Aborted", "backtrace", "[Inferior", "gdb", "core dumped"}

// progress lines chat prints before an error can happen: the loading line
// and slog records (llama.cpp's own errors among them).
func isProgress(l string) bool {
	return strings.HasPrefix(l, "chat: loading ") || strings.HasPrefix(l, "level=")
}

// check returns what is wrong with a run of a case, or nil.
func check(c Case, o outcome, path string, paths []string, timeout time.Duration) []string {
	var bad []string
	if o.timedOut {
		bad = append(bad, fmt.Sprintf("did not finish within %v", timeout))
	}
	if o.code != 1 && o.code != 2 {
		bad = append(bad, fmt.Sprintf("exit status %d, want 1 or 2", o.code))
	}
	if o.stdout != "" {
		bad = append(bad, fmt.Sprintf("stdout is not empty: %q", clip(o.stdout)))
	}
	for _, m := range crashMarkers {
		if strings.Contains(o.stderr, m) || strings.Contains(o.stdout, m) {
			bad = append(bad, fmt.Sprintf("crash output (%q)", m))
			break
		}
	}
	var errLines, other []string
	for _, l := range strings.Split(o.stderr, "\n") {
		switch {
		case strings.TrimSpace(l) == "" || isProgress(l):
		case strings.HasPrefix(l, "chat: "):
			errLines = append(errLines, l)
		default:
			other = append(other, l)
		}
	}
	if len(other) > 0 {
		bad = append(bad, fmt.Sprintf("%d stderr lines that are neither chat's nor log records, first %q", len(other), clip(other[0])))
	}
	if len(errLines) != 1 {
		bad = append(bad, fmt.Sprintf("%d chat: error lines, want 1", len(errLines)))
		return bad
	}
	msg := errLines[0]
	// Case folders are named after what they corrupt: match the message
	// without the paths, or the name of the folder would do.
	bare := msg
	for _, p := range paths {
		bare = strings.ReplaceAll(bare, p, "<file>")
	}
	if re := regexp.MustCompile(`(?i)` + c.Want); !re.MatchString(bare) {
		bad = append(bad, fmt.Sprintf("the error line does not name the problem (want /%s/)", c.Want))
	}
	if path != "" && !strings.Contains(msg, path) {
		bad = append(bad, fmt.Sprintf("the error line does not name the file %s", path))
	}
	return bad
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}

// TestHostileInputs runs every case of the corpus (a sample of at least 200
// unless HIPRUNE_HOSTILE=full) through the chat binary.
func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the chat binary hundreds of times")
	}
	t0 := time.Now()
	full := os.Getenv(envFull) == "full"
	timeout := emulator.Timeout(20 * time.Second)
	if s := os.Getenv(envTimeout); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, envTimeout)
		timeout = time.Duration(n) * time.Second
	}
	bin := buildChat(t)

	lmSpec, clipSpec := basePair()
	lmPath, mmPath := fixture.Custom(t, "hostile", lmSpec, clipSpec)
	lm, err := os.ReadFile(lmPath)
	require.NoError(t, err)
	mm, err := os.ReadFile(mmPath)
	require.NoError(t, err)
	imgs, err := BaseImages(testmodel.SampleImage(40, 30, 7))
	require.NoError(t, err)
	cases, err := Corpus(Bases{LM: lm, MMProj: mm, Images: imgs}, full, perGroup)
	require.NoError(t, err)
	if !full {
		require.GreaterOrEqual(t, len(cases), minShort, "the short corpus is too small")
	}

	root := t.TempDir()
	if d := os.Getenv(envKeep); d != "" {
		root = d
	}
	base := filepath.Join(root, "base")
	require.NoError(t, os.MkdirAll(base, 0o755))
	paths := map[Role]string{
		RoleLM: filepath.Join(base, "lm.gguf"), RoleMMProj: filepath.Join(base, "mmproj.gguf"), RoleImage: filepath.Join(base, "image.png"),
	}
	require.NoError(t, os.WriteFile(paths[RoleLM], lm, 0o644))
	require.NoError(t, os.WriteFile(paths[RoleMMProj], mm, 0o644))
	require.NoError(t, os.WriteFile(paths[RoleImage], imgs["png"], 0o644))
	argv := func(p map[Role]string, extra ...string) []string {
		return append([]string{"-m", p[RoleLM], "--mmproj", p[RoleMMProj], "--image", p[RoleImage],
			"-p", "What is in the picture?", "-n", "4", "-t", "1", "-c", "512", "--temp", "0", "--seed", "1"}, extra...)
	}

	// The bases themselves must work, or every case below fails for nothing.
	ok, err := run(bin, timeout, argv(paths))
	require.NoError(t, err)
	require.Equal(t, 0, ok.code, "the base inputs fail: %s", ok.stderr)
	require.NotEmpty(t, ok.stdout)

	sem := make(chan struct{}, parallel)
	var failed atomic.Int32
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				dir := filepath.Join(root, "cases", strings.NewReplacer("/", "_", "[", "_", "]", "").Replace(c.Name))
				require.NoError(t, os.MkdirAll(dir, 0o755))
				p := map[Role]string{RoleLM: paths[RoleLM], RoleMMProj: paths[RoleMMProj], RoleImage: paths[RoleImage]}
				target := filepath.Join(dir, map[Role]string{RoleLM: "lm.gguf", RoleMMProj: "mmproj.gguf", RoleImage: "image.bin"}[c.Role])
				var extra []string
				switch c.Special {
				case "":
					require.NoError(t, os.WriteFile(target, c.Data(), 0o644))
				case "fifo":
					require.NoError(t, syscall.Mkfifo(target, 0o600))
				case "dir":
					require.NoError(t, os.Mkdir(target, 0o755))
				case "missing":
				case "swap":
					target = map[Role]string{RoleLM: paths[RoleMMProj], RoleMMProj: paths[RoleLM]}[c.Role]
				case "save-mask-over-image":
					target = filepath.Join(dir, "image.png")
					require.NoError(t, os.WriteFile(target, imgs["png"], 0o644))
					extra = []string{"--save-mask", target}
				default:
					t.Fatalf("unknown special %q", c.Special)
				}
				p[c.Role] = target
				args := argv(p, extra...)
				inputs := []string{p[RoleLM], p[RoleMMProj], p[RoleImage]}
				before := hashFiles(t, inputs)
				o, err := run(bin, timeout, args)
				require.NoError(t, err)
				bad := check(c, o, target, inputs, timeout)
				if after := hashFiles(t, inputs); !assert.ObjectsAreEqual(before, after) {
					bad = append(bad, "an input file changed")
				}
				if len(bad) > 0 {
					failed.Add(1)
					owner := ""
					if c.Owner != "" {
						owner = "\nkind owned by: " + c.Owner
					}
					t.Errorf("%s%s\ncommand: %s %s\nexit %d after %v\nstdout: %q\nstderr:\n%s",
						strings.Join(bad, "\n"), owner, bin, quoteArgs(args), o.code, o.elapsed.Round(time.Millisecond), clip(o.stdout), clip(o.stderr))
				}
			})
		}
	})
	t.Logf("hostile corpus: %d cases (%s), %d failed, %v", len(cases), map[bool]string{true: "full", false: "sample"}[full],
		failed.Load(), time.Since(t0).Round(time.Second))
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ?*'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
