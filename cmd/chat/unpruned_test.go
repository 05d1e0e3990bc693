package main

// Vision families our encoder does not run (here a generated Janus-Pro pair,
// 16 image tokens an image) chat through llama.cpp's mtmd, unpruned.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/fixture"
)

const notice = "pruning is not available for this family yet"

func setupJanus(t *testing.T) env {
	t.Helper()
	lm, mm := fixture.Janus(t)
	dir := t.TempDir()
	return env{lm: lm, mm: mm, dir: dir, img: fixture.WriteImage(t, dir, "x.png", 500, 300, 3)}
}

func noticeLines(stderr string) []string {
	var out []string
	for _, l := range lines(stderr) {
		if strings.Contains(l, notice) {
			out = append(out, l)
		}
	}
	return out
}

func TestUnprunedFamily(t *testing.T) {
	e := setupJanus(t)
	args := func(extra ...string) []string {
		return append([]string{"-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", "What is in the picture?",
			"-n", "6", "--seed", "1", "--temp", "0", "-t", "2", "--timings"}, extra...)
	}

	r := runChat(t, "", args()...)
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assertAnswerOnly(t, r.stdout)
	ns := noticeLines(r.stderr)
	require.Len(t, ns, 1, "one notice; stderr:\n%s", r.stderr)
	assert.Equal(t, `chat: projector type "janus_pro" (Janus-Pro): `+notice+`; images run unpruned through llama.cpp's mtmd`, ns[0])
	tm := parseTimings(t, r.stderr)
	require.Len(t, tm, 1, "stderr:\n%s", r.stderr)
	assert.Equal(t, "none", tm[0].prune)
	assert.Equal(t, [2]int{16, 16}, [2]int{tm[0].before, tm[0].after}, "every image token kept")
	assert.Equal(t, turnCells(tm[0]), tm[0].kvCells)
	assert.Contains(t, r.stderr, "x.png: 16 -> 16 image tokens")

	t.Run("prune none is accepted without the notice", func(t *testing.T) {
		n := runChat(t, "", args("--prune", "none")...)
		require.Equal(t, 0, n.code, "stderr:\n%s", n.stderr)
		assert.Equal(t, r.stdout, n.stdout, "the same unpruned answer")
		assert.Empty(t, noticeLines(n.stderr))
	})

	t.Run("pruning flags are usage errors", func(t *testing.T) {
		for _, flag := range [][]string{
			{"--prune", "hiprune"}, {"--prune", "uniform"}, {"--prune", "random"}, {"--keep", "8"}, {"--keep-ratio", "0.5"},
			{"--alpha", "0.2"}, {"--object-layer", "3"}, {"--save-mask", filepath.Join(e.dir, "m.png")}, {"--clip-layout", "llama.cpp"},
		} {
			r := runChat(t, "", args(flag...)...)
			assertFails(t, r, 2, fmt.Sprintf("%s %s: pruning is not available", flag[0], flag[1]),
				`projector type "janus_pro" (Janus-Pro)`, `(projector types that can be pruned: `, `"mlp" (LLaVA-1.5 / NeXT)`)
		}
	})
}

func TestUnprunedFamilyInteractive(t *testing.T) {
	e := setupJanus(t)
	stdin := fmt.Sprintf("/image %s\nDescribe it.\n/keep 4\nAnd now?\n/image %s\nAnd this?\n/reset\nHello\n/quit\n", e.img, e.img)
	r := runChat(t, stdin, "-m", e.lm, "--mmproj", e.mm, "--timings", "--temp", "0", "-n", "4", "-t", "2")
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assertAnswerOnly(t, r.stdout)
	assert.Len(t, noticeLines(r.stderr), 1, "stderr:\n%s", r.stderr)
	assert.Contains(t, r.stderr, `chat: /keep: pruning is not available for projector type "janus_pro" (Janus-Pro)`)
	tm := parseTimings(t, r.stderr)
	require.Len(t, tm, 4, "one timings line per answer; stderr:\n%s", r.stderr)
	want := [][2]int{{16, 16}, {0, 0}, {16, 16}, {0, 0}}
	for i, x := range tm {
		assert.Equal(t, want[i], [2]int{x.before, x.after}, "turn %d", i+1)
		assert.Positive(t, x.decode, "turn %d generated nothing", i+1)
	}
	// The cache holds the whole conversation until /reset.
	assert.Equal(t, turnCells(tm[0]), tm[0].kvCells, "turn 1")
	assert.Equal(t, tm[0].kvCells+turnCells(tm[1]), tm[1].kvCells, "turn 2")
	assert.Equal(t, tm[1].kvCells+turnCells(tm[2]), tm[2].kvCells, "turn 3")
	assert.Equal(t, turnCells(tm[3]), tm[3].kvCells, "after /reset")
}

// A projector type llama.cpp does not know fails clearly, and one it knows
// but cannot load names the type and llama.cpp's reason.
func TestBadUnprunedProjector(t *testing.T) {
	e := setupJanus(t)
	unknown := fixture.Mutate(t, e.mm, e.dir, "unknown.gguf", fixture.Edit{Set: map[string]any{"clip.projector_type": "foo"}})
	r := runChat(t, "", "-m", e.lm, "--mmproj", unknown, "--image", e.img, "-p", "hi", "-n", "2")
	assertFails(t, r, 1, unknown, `projector type "foo" is not one llama.cpp knows (`, `"mlp" (LLaVA-1.5 / NeXT)`, ` can be pruned; `)

	broken := fixture.Mutate(t, e.mm, e.dir, "broken.gguf", fixture.Edit{Drop: []string{"mm.1.weight"}})
	r = runChat(t, "", "-m", e.lm, "--mmproj", broken, "--image", e.img, "-p", "hi", "-n", "2")
	assertFails(t, r, 1, broken, `projector type "janus_pro" (Janus-Pro)`, "mm.1.weight")
}

// --encoder-type converts our encoder's weights; mtmd, which runs the
// unpruned families, takes the file's: asking is an error, not ignored.
func TestUnprunedEncoderType(t *testing.T) {
	e := setupJanus(t)
	r := runChat(t, "", "-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", "hi", "-n", "2", "--encoder-type", "q8_0")
	assertFails(t, r, 1, "--encoder-type q8_0", "mtmd")
	// Likewise flash attention: the pinned mtmd runs its clip on auto.
	r = runChat(t, "", "-m", e.lm, "--mmproj", e.mm, "--image", e.img, "-p", "hi", "-n", "2", "--encoder-flash-attn", "off")
	assertFails(t, r, 1, "--encoder-flash-attn off", "mtmd")
}
