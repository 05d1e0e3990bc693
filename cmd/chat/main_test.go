package main

// End-to-end tests of the chat binary: TestMain builds it once, each test runs
// it with os/exec on the generated tiny LLaVA-1.5 pair (576 image tokens,
// 64-wide LM) and checks exit status, stdout and stderr separately.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// chatBin is the binary TestMain builds.
var chatBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hiprune-chat-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat e2e:", err)
		os.Exit(1)
	}
	chatBin = filepath.Join(dir, "chat")
	// The environment (CGO flags included) is inherited, so the llama.cpp
	// objects come from the same build cache as the test binary's.
	build := exec.Command("go", "build", "-o", chatBin, "github.com/hiprune/hiprune-go/cmd/chat")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chat e2e: building the binary: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// runChat runs the binary with args and stdin, in dir (so relative paths work).
func runChat(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), emulator.Timeout(60*time.Second))
	defer cancel()
	cmd := emulator.CommandContext(ctx, chatBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(t0)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running chat %q: %v", args, err)
	}
	require.NoError(t, ctx.Err(), "chat %q timed out; stderr:\n%s", args, r.stderr)
	assertNoPanic(t, r)
	return r
}

func assertNoPanic(t *testing.T, r result) {
	t.Helper()
	for _, bad := range []string{"panic:", "goroutine ", "SIGSEGV", "fatal error:"} {
		assert.NotContains(t, r.stderr, bad, "stack trace or crash in stderr")
	}
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// progress lines the CLI writes on stderr before an error can happen.
func isProgress(l string) bool {
	return strings.HasPrefix(l, "chat: loading ") || strings.HasPrefix(l, "level=")
}

// assertFails checks a failed run: the exit status, an empty stdout, and one
// "chat:" error line, the last one on stderr, holding every substring in want.
// Usage errors (status 2) print that line and nothing else.
func assertFails(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	assert.Equal(t, code, r.code, "exit status; stderr:\n%s", r.stderr)
	assert.Empty(t, r.stdout, "stdout of a failed run")
	ls := lines(r.stderr)
	require.NotEmpty(t, ls, "stderr is empty")
	var errLines []string
	for _, l := range ls {
		if !isProgress(l) {
			errLines = append(errLines, l)
		}
	}
	require.Len(t, errLines, 1, "want exactly one error line; stderr:\n%s", r.stderr)
	msg := errLines[0]
	assert.Equal(t, ls[len(ls)-1], msg, "the error line comes last")
	assert.True(t, strings.HasPrefix(msg, "chat: "), "error line %q does not start with \"chat: \"", msg)
	for _, w := range want {
		assert.Contains(t, msg, w)
	}
	if code == 2 {
		assert.Len(t, ls, 1, "a usage error prints one line; stderr:\n%s", r.stderr)
	}
}

// timings is one parsed "timings:" line.
type timings struct {
	prune                                string
	before, after, decode, kvCells, text int
	stop                                 string
}

var timingsRE = regexp.MustCompile(`^timings: prune=(\S+) image_tokens=(\d+)->(\d+) .* \((\d+) tokens\) kv_cells=(\d+) text_tokens=(\d+) stop=(\w+)$`)

func parseTimings(t *testing.T, stderr string) []timings {
	t.Helper()
	var out []timings
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		return n
	}
	for _, l := range lines(stderr) {
		if !strings.HasPrefix(l, "timings:") {
			continue
		}
		m := timingsRE.FindStringSubmatch(l)
		require.NotNil(t, m, "unparsable timings line %q", l)
		out = append(out, timings{
			prune: m[1], before: atoi(m[2]), after: atoi(m[3]), decode: atoi(m[4]),
			kvCells: atoi(m[5]), text: atoi(m[6]), stop: m[7],
		})
	}
	return out
}

// turnCells is how many KV cells a turn adds: its text and kept image tokens,
// and every generated token (session.go decodes each sampled token into the
// cache, the last one at the -n limit included), plus the end-of-generation
// token when generation stopped on it (kept so the next turn follows a
// complete answer).
func turnCells(tm timings) int {
	n := tm.text + tm.after + tm.decode
	if tm.stop == "eog" {
		n++
	}
	return n
}

func assertAnswerOnly(t *testing.T, stdout string) {
	t.Helper()
	assert.NotEmpty(t, strings.TrimSpace(stdout), "empty answer")
	assert.True(t, strings.HasSuffix(stdout, "\n"), "stdout %q does not end in a newline", stdout)
	for _, l := range strings.Split(stdout, "\n") {
		for _, logPrefix := range []string{"chat:", "level=", "timings:"} {
			assert.False(t, strings.HasPrefix(l, logPrefix), "log line on stdout: %q", l)
		}
	}
}

type env struct {
	lm, mm, dir, img string
}

func setup(t *testing.T) env {
	t.Helper()
	lm, mm := fixture.Pair(t, "tiny")
	dir := t.TempDir()
	return env{lm: lm, mm: mm, dir: dir, img: fixture.WriteImage(t, dir, "x.png", 500, 300, 3)}
}

func TestOneShot(t *testing.T) {
	e := setup(t)
	args := func(extra ...string) []string {
		return append([]string{"-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", "What is in the picture?",
			"-n", "8", "--seed", "1", "--timings"}, extra...)
	}

	r := runChat(t, "", args("--temp", "0", "--keep", "64")...)
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assertAnswerOnly(t, r.stdout)
	tm := parseTimings(t, r.stderr)
	require.Len(t, tm, 1, "stderr:\n%s", r.stderr)
	assert.Contains(t, r.stderr, "image_tokens=576->64")
	assert.Contains(t, r.stderr, "flash_attn=false", "auto: plain attention for CLIP on the CPU")
	assert.Equal(t, "hiprune", tm[0].prune)
	assert.Equal(t, 576, tm[0].before)
	assert.Equal(t, 64, tm[0].after)
	assert.Positive(t, tm[0].text)
	assert.Contains(t, []string{"limit", "eog"}, tm[0].stop)
	if tm[0].stop == "limit" {
		assert.Equal(t, 8, tm[0].decode)
	}
	assert.Equal(t, turnCells(tm[0]), tm[0].kvCells, "kv_cells = text_tokens + 64 + generated (+1 for an end token)")

	again := runChat(t, "", args("--temp", "0", "--keep", "64")...)
	require.Equal(t, 0, again.code, "stderr:\n%s", again.stderr)
	assert.Equal(t, r.stdout, again.stdout, "greedy decoding is not deterministic")

	t.Run("prune none", func(t *testing.T) {
		r := runChat(t, "", args("--temp", "0", "--prune", "none")...)
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assertAnswerOnly(t, r.stdout)
		tm := parseTimings(t, r.stderr)
		require.Len(t, tm, 1)
		assert.Contains(t, r.stderr, "image_tokens=576->576")
		assert.Equal(t, "none", tm[0].prune)
		assert.Equal(t, turnCells(tm[0]), tm[0].kvCells)
	})

	t.Run("encoder-type q8_0, flash attention on", func(t *testing.T) {
		r := runChat(t, "", args("--temp", "0", "--keep", "64", "--encoder-type", "q8_0", "--encoder-flash-attn", "on")...)
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assertAnswerOnly(t, r.stdout)
		assert.Contains(t, r.stderr, "weights=q8_0")
		assert.Contains(t, r.stderr, "flash_attn=true")
		assert.Contains(t, r.stderr, "image_tokens=576->64")
	})

	t.Run("encoder-type q4_0, repacked or not", func(t *testing.T) {
		buffer := func(stderr string) string {
			m := regexp.MustCompile(`weight_buffer=(\S+)`).FindStringSubmatch(stderr)
			require.NotNil(t, m, "no weight_buffer in the encoder's log line:\n%s", stderr)
			return m[1]
		}
		r := runChat(t, "", args("--temp", "0", "--keep", "64", "--encoder-type", "q4_0")...)
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assertAnswerOnly(t, r.stdout)
		plain := runChat(t, "", args("--temp", "0", "--keep", "64", "--encoder-type", "q4_0", "--no-repack")...)
		require.Equal(t, 0, plain.code, "stderr:\n%s", plain.stderr)
		assertAnswerOnly(t, plain.stdout)
		assert.Equal(t, "CPU", buffer(plain.stderr), "--no-repack keeps the weights in the plain buffer")
		// Every CPU of this machine class (AVX2) and every arm64 target
		// (dot product) has a repacked q4_0 kernel; which extra buffer type
		// takes the weights (AMX before CPU_REPACK) is ggml's choice.
		if extra := bridge.CPUExtraBuffers(); len(extra) > 0 {
			assert.Contains(t, extra, buffer(r.stderr))
		} else {
			assert.Equal(t, "CPU", buffer(r.stderr))
		}
	})

	t.Run("seeded sampling is deterministic", func(t *testing.T) {
		a := runChat(t, "", args("--temp", "0.8", "--seed", "42")...)
		b := runChat(t, "", args("--temp", "0.8", "--seed", "42")...)
		require.Equal(t, 0, a.code, "stderr:\n%s", a.stderr)
		require.Equal(t, 0, b.code, "stderr:\n%s", b.stderr)
		assertAnswerOnly(t, a.stdout)
		assert.Equal(t, a.stdout, b.stdout)
		assert.Contains(t, a.stderr, "image_tokens=576->192", "default keep ratio is a third")
	})
}

func TestSaveMask(t *testing.T) {
	e := setup(t)
	out := filepath.Join(e.dir, "mask.png")
	r := runChat(t, "", "-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", "Where?", "-n", "2", "--temp", "0",
		"--keep", "64", "--save-mask", out)
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assertAnswerOnly(t, r.stdout)
	assert.Contains(t, r.stderr, "wrote mask "+out)

	in := decodePNG(t, e.img)
	mask := decodePNG(t, out)
	require.Equal(t, in.Bounds(), mask.Bounds(), "mask size differs from the input's")
	require.Equal(t, image.Rect(0, 0, 500, 300), mask.Bounds())
	var darker, same, total int
	for y := 0; y < 300; y++ {
		for x := 0; x < 500; x++ {
			r0, g0, b0, _ := in.At(x, y).RGBA()
			r1, g1, b1, _ := mask.At(x, y).RGBA()
			total++
			switch {
			case r0 == r1 && g0 == g1 && b0 == b1:
				same++
			case r1+g1+b1 < r0+g0+b0:
				darker++
			}
		}
	}
	// 64 of 576 patches are kept: most of the picture is dimmed, not all.
	assert.Greater(t, darker, total/2, "too few dimmed pixels")
	assert.Positive(t, same, "no pixel of a kept patch is left as it was")
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, "%s is not a valid PNG", path)
	return img
}

func TestInteractivePiped(t *testing.T) {
	e := setup(t)
	stdin := fmt.Sprintf("/image %s\nDescribe it.\n/keep 32\n/image %s\nAnd now?\n/reset\nHello\n/quit\n", e.img, e.img)
	r := runChat(t, stdin, "-m", e.lm, "--mmproj", e.mm, "--timings", "--temp", "0", "-n", "4")
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assertAnswerOnly(t, r.stdout)
	tm := parseTimings(t, r.stderr)
	require.Len(t, tm, 3, "one timings line per answer; stderr:\n%s", r.stderr)

	assert.Equal(t, [2]int{576, 192}, [2]int{tm[0].before, tm[0].after}, "first turn: default keep ratio 1/3")
	assert.Equal(t, [2]int{576, 32}, [2]int{tm[1].before, tm[1].after}, "second turn: /keep 32")
	assert.Equal(t, [2]int{0, 0}, [2]int{tm[2].before, tm[2].after}, "third turn has no image")
	for i, x := range tm {
		assert.Positive(t, x.decode, "turn %d generated nothing", i+1)
	}
	// The cache holds the whole conversation until /reset, then only the new turn.
	assert.Equal(t, turnCells(tm[0]), tm[0].kvCells, "turn 1")
	assert.Equal(t, tm[0].kvCells+turnCells(tm[1]), tm[1].kvCells, "turn 2 adds to turn 1")
	assert.Equal(t, turnCells(tm[2]), tm[2].kvCells, "after /reset only the new turn is cached")
	assert.Less(t, tm[2].kvCells, 64)
	assert.Contains(t, r.stderr, "conversation reset")
}

// pngClaiming returns a PNG whose IHDR says w x h but holds a tiny image's data.
func pngClaiming(t *testing.T, w, h uint32) []byte {
	t.Helper()
	b, err := testmodel.EncodePNG(testmodel.SampleImage(4, 4, 1))
	require.NoError(t, err)
	// signature (8), IHDR length (4), "IHDR" (4), width, height, ..., CRC over type+data.
	require.Equal(t, "IHDR", string(b[12:16]))
	binary.BigEndian.PutUint32(b[16:20], w)
	binary.BigEndian.PutUint32(b[20:24], h)
	binary.BigEndian.PutUint32(b[29:33], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func TestBadInput(t *testing.T) {
	e := setup(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(e.dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	notImage := write("notes.png", []byte("these are my notes, not a picture\n"))
	jpg := fixture.WriteImage(t, e.dir, "full.jpg", 320, 240, 5)
	jb, err := os.ReadFile(jpg)
	require.NoError(t, err)
	truncated := write("half.jpg", jb[:len(jb)/2])
	huge := write("huge.png", pngClaiming(t, 10000, 6000))
	missingModel := filepath.Join(e.dir, "no-such-model.gguf")
	missingImage := filepath.Join(e.dir, "no-such-image.png")

	// A projector of width 32 (generated as a valid pair with a 32-wide LM),
	// used with the 64-wide tiny LM.
	lm32 := testmodel.TinyLM()
	lm32.NEmbd = 32
	clip32 := testmodel.TinyClip()
	clip32.ProjDim = 32
	_, mm32 := fixture.Custom(t, "tiny-proj32", lm32, clip32)

	withImage := func(img string, extra ...string) []string {
		return append([]string{"-m", e.lm, "--mmproj", e.mm, "--image", img, "-p", "hi", "-n", "2"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"missing model", []string{"-m", missingModel, "-p", "hi"}, 1, []string{missingModel}},
		{"missing image", withImage(missingImage), 1, []string{missingImage}},
		{"not an image", withImage(notImage), 1, []string{notImage, "not an image"}},
		{"truncated jpeg", withImage(truncated), 1, []string{truncated, "truncated or corrupt"}},
		{"over the pixel limit", withImage(huge), 1, []string{huge, "10000 x 6000", "over the limit"}},
		{"projector width mismatch", []string{"-m", e.lm, "--mmproj", mm32, "-p", "hi"}, 1, []string{mm32, "32", "64"}},
		{"image without mmproj", []string{"-m", e.lm, "--image", e.img, "-p", "hi"}, 2, []string{"--mmproj"}},
		{"keep 0", []string{"-m", e.lm, "--keep", "0", "-p", "hi"}, 2, []string{"--keep 0"}},
		{"keep-ratio 1.5", []string{"-m", e.lm, "--keep-ratio", "1.5", "-p", "hi"}, 2, []string{"--keep-ratio 1.5"}},
		{"keep and keep-ratio", []string{"-m", e.lm, "--keep", "5", "--keep-ratio", "0.5", "-p", "hi"}, 2, []string{"exclusive"}},
		{"prune bogus", []string{"-m", e.lm, "--prune", "bogus", "-p", "hi"}, 2, []string{`"bogus"`}},
		{"object layer past the depth", withImage(e.img, "--object-layer", "99"), 1, []string{"99", "12"}},
		{"alpha 2", []string{"-m", e.lm, "--alpha", "2", "-p", "hi"}, 2, []string{"--alpha 2"}},
		{"encoder-type bogus", withImage(e.img, "--encoder-type", "q5_k"), 2, []string{"--encoder-type q5_k", "q8_0"}},
		{"encoder-flash-attn bogus", withImage(e.img, "--encoder-flash-attn", "yes"), 2, []string{"--encoder-flash-attn yes", "auto, on or off"}},
		{"unknown flag", []string{"-m", e.lm, "--bogus", "-p", "hi"}, 2, []string{"-bogus"}},
		{"missing -m", []string{"-p", "hi"}, 2, []string{"-m"}},
		// The mask is written after the answer: its folder is checked first.
		{"save-mask folder missing", withImage(e.img, "--save-mask", filepath.Join(missingImage, "m.png")), 1,
			[]string{"--save-mask", missingImage}},
		{"save-mask without extension", withImage(e.img, "--save-mask", filepath.Join(e.dir, "mask")), 2,
			[]string{"--save-mask", ".png"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runChat(t, "", c.args...)
			assertFails(t, r, c.code, c.want...)
		})
	}

	t.Run("pixel limit fails fast", func(t *testing.T) {
		r := runChat(t, "", withImage(huge)...)
		assertFails(t, r, 1, "50000000")
		assert.Less(t, r.elapsed, emulator.Timeout(5*time.Second))
	})
	t.Run("projector mismatch names both widths", func(t *testing.T) {
		r := runChat(t, "", "-m", e.lm, "--mmproj", mm32, "-p", "hi")
		assertFails(t, r, 1, "width 32", "takes 64")
	})
}

func TestHelp(t *testing.T) {
	r := runChat(t, "", "--help")
	assert.Equal(t, 0, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "-keep")
	assert.Contains(t, r.stderr, "-save-mask")
	assert.Equal(t, 1, strings.Count(r.stderr, "Usage:"), "usage printed more than once")
}
