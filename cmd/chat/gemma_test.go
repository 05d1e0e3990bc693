package main

import (
	"image"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/fixture"
)

// A Gemma 3 pair through the binary, pruned with the same flags as LLaVA:
// 256 image tokens, a third (85) kept by default; counts and ratios of the
// 256; --prune none keeps all. The mask is drawn on the original image.
func TestGemma3OneShot(t *testing.T) {
	lm, mm := fixture.Pair(t, "tiny-gemma")
	dir := t.TempDir()
	img := fixture.WriteImage(t, dir, "x.png", 300, 200, 3)
	out := filepath.Join(dir, "mask.png")
	args := func(extra ...string) []string {
		return append([]string{"-m", lm, "--mmproj", mm, "--image", img, "-p", "What is in the picture?",
			"-n", "4", "--temp", "0", "-t", "2", "--timings"}, extra...)
	}
	r := runChat(t, "", args("--save-mask", out)...)
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assertAnswerOnly(t, r.stdout)
	assert.NotContains(t, r.stderr, notice)
	tm := parseTimings(t, r.stderr)
	require.Len(t, tm, 1)
	assert.Equal(t, [2]int{256, 85}, [2]int{tm[0].before, tm[0].after})
	assert.Equal(t, turnCells(tm[0]), tm[0].kvCells, "a cell per kept token")
	assert.Equal(t, image.Rect(0, 0, 300, 200), decodePNG(t, out).Bounds())

	for _, c := range []struct {
		flags []string
		after int
	}{
		{[]string{"--keep", "64"}, 64},
		{[]string{"--keep-ratio", "0.125"}, 32},
		{[]string{"--prune", "none"}, 256},
		{[]string{"--keep", "20", "--prune", "uniform"}, 20},
	} {
		r := runChat(t, "", args(c.flags...)...)
		require.Equal(t, 0, r.code, "%v: stderr:\n%s", c.flags, r.stderr)
		tm := parseTimings(t, r.stderr)
		require.Len(t, tm, 1)
		assert.Equal(t, [2]int{256, c.after}, [2]int{tm[0].before, tm[0].after}, "%v", c.flags)
	}
	// The tiny tower has 2 blocks: found when the encoder loads.
	r = runChat(t, "", args("--object-layer", "3")...)
	assertFails(t, r, 1, "object layer 3", "2 blocks")
}
