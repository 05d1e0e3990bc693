package main

// Tests of the hostile-input kinds of the hardening issue that the CLI
// owns: non-regular files (hangs), thread counts, prompts longer than the
// context, outputs that would replace an input or fail after the answer,
// NaN options, context rounding, and stdin lines over the limit.

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/emulator"
)

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo not available here: %v", err)
	}
	return path
}

func TestNonRegularInputsDoNotBlock(t *testing.T) {
	e := setup(t)
	fifo := mkfifo(t, filepath.Join(e.dir, "pipe.gguf"))
	fifoImg := mkfifo(t, filepath.Join(e.dir, "pipe.png"))
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"model is a FIFO", []string{"-m", fifo, "-p", "hi"}, []string{fifo, "named pipe"}},
		{"mmproj is a FIFO", []string{"-m", e.lm, "--mmproj", fifo, "-p", "hi"}, []string{fifo, "named pipe"}},
		{"image is a FIFO", []string{"-m", e.lm, "--mmproj", e.mm, "--image", fifoImg, "-p", "hi"}, []string{fifoImg, "named pipe"}},
		{"model is a directory", []string{"-m", e.dir, "-p", "hi"}, []string{e.dir, "directory"}},
		{"image is a directory", []string{"-m", e.lm, "--mmproj", e.mm, "--image", e.dir, "-p", "hi"}, []string{e.dir, "directory"}},
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		cases = append(cases,
			struct {
				name string
				args []string
				want []string
			}{"image is a device", []string{"-m", e.lm, "--mmproj", e.mm, "--image", "/dev/zero", "-p", "hi"}, []string{"/dev/zero", "device"}},
			struct {
				name string
				args []string
				want []string
			}{"model is a device", []string{"-m", "/dev/zero", "-p", "hi"}, []string{"/dev/zero", "device"}},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertFails(t, runChat(t, "", c.args...), 1, c.want...)
		})
	}
	t.Run("interactive /image of a FIFO", func(t *testing.T) {
		r := runChat(t, "/image "+fifoImg+"\n/quit\n", "-m", e.lm, "--mmproj", e.mm)
		assert.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assert.Contains(t, r.stderr, "named pipe")
	})
}

func TestThreadsCapped(t *testing.T) {
	e := setup(t)
	n := runtime.NumCPU()
	counts := emulator.Cases(t, []int{n + 1, 1000, 1 << 20}, func(c int) bool { return c == n+1 },
		"each case is a whole image turn (minutes under qemu) through the same cap")
	for _, threads := range counts {
		r := runChat(t, "", "-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", "hi", "-n", "2", "--temp", "0",
			"-t", fmt.Sprint(threads))
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assertAnswerOnly(t, r.stdout)
		assert.Contains(t, r.stderr, fmt.Sprintf("chat: -t %d: this machine has %d CPUs; using %d threads", threads, n, n))
	}
	r := runChat(t, "", "-m", e.lm, "-p", "hi", "-n", "1", "-t", fmt.Sprint(n))
	require.Equal(t, 0, r.code)
	assert.NotContains(t, r.stderr, "CPUs", "no note when the count fits")
}

func TestPromptLongerThanContextRefusedBeforeDecoding(t *testing.T) {
	e := setup(t)
	long := strings.Repeat("tell me more about the picture ", 400) // thousands of tokens
	// The message names the token count, which only the check made before
	// any decoding knows (the decoder fails at the first batch past the end).
	r := runChat(t, "", "-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", long, "-c", "512", "-n", "2")
	assertFails(t, r, 1, "the message needs", "512-token context", "context is full")
	r = runChat(t, "", "-m", e.lm, "-p", long, "-c", "1024", "-n", "2")
	assertFails(t, r, 1, "the message needs", "1024-token context")
	// Just the image over the context: 576 image tokens in 256.
	r = runChat(t, "", "-m", e.lm, "--mmproj", e.mm, "--image", e.img, "--prune", "none", "-p", "hi", "-c", "256")
	assertFails(t, r, 1, "576 image", "256-token context")
}

func TestContextRoundingIsReported(t *testing.T) {
	e := setup(t)
	for _, c := range []int{16, 100, 300} {
		r := runChat(t, "", "-m", e.lm, "-p", "hi", "-n", "1", "-c", fmt.Sprint(c))
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		want := (c + 255) / 256 * 256
		assert.Contains(t, r.stderr, fmt.Sprintf("chat: -c %d: llama.cpp rounds the context to %d tokens", c, want))
	}
	r := runChat(t, "", "-m", e.lm, "-p", "hi", "-n", "1", "-c", "512")
	assert.NotContains(t, r.stderr, "rounds the context")
}

func TestSaveMaskNeverOverwritesAnInput(t *testing.T) {
	e := setup(t)
	link := filepath.Join(e.dir, "link.png")
	require.NoError(t, os.Symlink(e.img, link))
	hard := filepath.Join(e.dir, "hard.png")
	require.NoError(t, os.Link(e.img, hard))
	// Two images write NAME-1.png and NAME-2.png: here the second is an input.
	numbered := filepath.Join(e.dir, "m-2.png")
	require.NoError(t, os.WriteFile(numbered, mustRead(t, e.img), 0o644))
	lmLink := filepath.Join(e.dir, "model.png")
	require.NoError(t, os.Symlink(e.lm, lmLink))

	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, e.img)
	require.NoError(t, err)

	inputs := []string{e.img, e.lm, e.mm, link, hard, numbered}
	before := map[string][32]byte{}
	for _, p := range inputs {
		before[p] = fileHash(t, p)
	}
	base := []string{"-m", e.lm, "--mmproj", e.mm, "-p", "hi", "-n", "2"}
	cases := []struct {
		name string
		args []string
	}{
		{"same path", append([]string{"--image", e.img, "--save-mask", e.img}, base...)},
		{"relative path to the image", append([]string{"--image", e.img, "--save-mask", rel}, base...)},
		{"path with dot segments", append([]string{"--image", e.img, "--save-mask", e.dir + "/./sub/../x.png"}, base...)},
		{"symlink to the image", append([]string{"--image", link, "--save-mask", e.img}, base...)},
		{"hard link of the image", append([]string{"--image", e.img, "--save-mask", hard}, base...)},
		{"the model, through a symlink", append([]string{"--image", e.img, "--save-mask", lmLink}, base...)},
		{"numbered mask of two images", append([]string{"--image", e.img, "--image", numbered, "--save-mask", filepath.Join(e.dir, "m.png")}, base...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runChat(t, "", c.args...)
			assertFails(t, r, 2, "--save-mask", "input")
		})
	}
	t.Run("interactive /image then a mask onto it", func(t *testing.T) {
		// The first mask of a session is --save-mask itself.
		img2 := filepath.Join(e.dir, "later.png")
		require.NoError(t, os.WriteFile(img2, mustRead(t, e.img), 0o644))
		h := fileHash(t, img2)
		r := runChat(t, "/image "+img2+"\nWhat is it?\n/quit\n", "-m", e.lm, "--mmproj", e.mm, "-n", "2",
			"--save-mask", img2)
		assert.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assert.Contains(t, r.stderr, "input")
		assert.Empty(t, r.stdout, "the turn is refused before it runs")
		assert.Equal(t, h, fileHash(t, img2), "input changed")
	})
	for _, p := range inputs {
		assert.Equal(t, before[p], fileHash(t, p), "input %s changed", p)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestOutputCheckedBeforeTheAnswer(t *testing.T) {
	e := setup(t)
	withImage := []string{"-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", "hi", "-n", "2"}
	dirPNG := filepath.Join(e.dir, "folder.png")
	require.NoError(t, os.Mkdir(dirPNG, 0o755))
	fifo := mkfifo(t, filepath.Join(e.dir, "out.png"))
	notDir := filepath.Join(e.dir, "file")
	require.NoError(t, os.WriteFile(notDir, []byte("x"), 0o644))
	cases := []struct {
		name, mask string
		want       []string
	}{
		{"a directory", dirPNG, []string{dirPNG, "directory"}},
		{"a FIFO", fifo, []string{fifo, "named pipe"}},
		{"under a file", filepath.Join(notDir, "m.png"), []string{notDir, "not a directory"}},
		{"missing folder", filepath.Join(e.dir, "nope", "m.png"), []string{"nope"}},
	}
	if st, err := os.Stat("/sys"); err == nil && st.IsDir() {
		// sysfs refuses new files even to root, which ignores permission bits.
		cases = append(cases, struct {
			name, mask string
			want       []string
		}{"an unwritable folder", "/sys/mask.png", []string{"/sys", "cannot create files"}})
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(e.dir, "ro")
		require.NoError(t, os.Mkdir(ro, 0o555))
		cases = append(cases, struct {
			name, mask string
			want       []string
		}{"a read-only folder", filepath.Join(ro, "m.png"), []string{ro}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runChat(t, "", append(withImage, "--save-mask", c.mask)...)
			assertFails(t, r, 1, append([]string{"--save-mask"}, c.want...)...)
		})
	}
	entries, err := os.ReadDir(e.dir)
	require.NoError(t, err)
	for _, en := range entries {
		assert.False(t, strings.HasPrefix(en.Name(), ".hiprune-check"), "probe file left behind: %s", en.Name())
	}
}

func TestNaNAndNegativeOptionsRefused(t *testing.T) {
	e := setup(t)
	cases := []struct {
		flag, value, want string
	}{
		{"--top-p", "NaN", "--top-p"},
		{"--top-p", "-0.1", "--top-p"},
		{"--min-p", "NaN", "--min-p"},
		{"--min-p", "2", "--min-p"},
		{"--repeat-penalty", "NaN", "--repeat-penalty"},
		{"--repeat-penalty", "-1", "--repeat-penalty"},
		{"--repeat-penalty", "+Inf", "--repeat-penalty"},
		{"--temp", "NaN", "--temp"},
		{"--temp", "-0.5", "--temp"},
		{"--temp", "Inf", "--temp"},
		{"--keep-ratio", "NaN", "--keep-ratio"},
		{"--alpha", "NaN", "--alpha"},
		{"--alpha", "-0.1", "--alpha"},
		{"-t", "-3", "-t"},
		{"-c", "-5", "-c"},
		{"-b", "0", "-b"},
	}
	for _, c := range cases {
		t.Run(c.flag+"="+c.value, func(t *testing.T) {
			r := runChat(t, "", "-m", e.lm, "-p", "hi", c.flag, c.value)
			assertFails(t, r, 2, c.want)
		})
	}
}

func TestInteractiveContextFullKeepsReading(t *testing.T) {
	e := setup(t)
	long := strings.Repeat("describe every detail ", 200)
	stdin := long + "\nHello\n"
	r := runChat(t, stdin, "-m", e.lm, "-c", "256", "-n", "3", "--temp", "0", "--timings", "-t", "1")
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "context is full"), "said once; stderr:\n%s", r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "/reset"), "suggests /reset once; stderr:\n%s", r.stderr)
	assert.Len(t, parseTimings(t, r.stderr), 1, "the next message is still answered")
	assertAnswerOnly(t, r.stdout)

	// Generation that fills the context stops with a note, and /reset frees it.
	// A message of about 200 tokens, so that filling the rest is quick;
	// one thread, so that a loaded machine does not stall spinning workers.
	msg := strings.Repeat("describe every detail ", 60)
	r = runChat(t, msg+"\n/reset\n"+msg+"\n", "-m", e.lm, "-c", "256", "-n", "-1", "--temp", "0", "--timings", "-t", "1")
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	tm := parseTimings(t, r.stderr)
	require.Len(t, tm, 2, "stderr:\n%s", r.stderr)
	assert.Equal(t, "context", tm[0].stop, "greedy on random weights runs to the end of the context")
	assert.Contains(t, r.stderr, "end of the 256-token context")
	assert.Positive(t, tm[1].decode, "after /reset the full context has room again")
}

func TestLongStdinLine(t *testing.T) {
	e := setup(t)
	huge := strings.Repeat("a", maxLine+10)
	for _, stdin := range []string{
		huge + "\nHello\n",     // then a normal message
		huge + "\n\nHello\n",   // an empty line between
		"Hello\n" + huge,       // last line without a newline
		huge + huge + "\nHi\n", // two limits' worth in one line
	} {
		r := runChat(t, stdin, "-m", e.lm, "-n", "2", "--temp", "0", "--timings")
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assert.Equal(t, 1, strings.Count(r.stderr, "1 MiB"), "stderr:\n%s", r.stderr)
		assert.Len(t, parseTimings(t, r.stderr), 1, "the normal message is answered")
	}
}
