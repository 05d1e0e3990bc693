package main

import (
	"image"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/emulator"
	"github.com/hiprune/hiprune-go/tests/fixture"
)

// A LLaVA-NeXT pair through the binary: 500 x 300 is cut into a base view
// and 2 x 1 tiles (672 x 336); CLIP's layout crops the tiles' grid to 40 of
// 48 columns and ends each of its 24 rows with a newline: 576 + 24 x 41 =
// 1560 tokens, of which the default keeps 1/9; llama.cpp's layout sends the
// 3 x 576 tokens mtmd does. The mask shows the base view and the tiles.
func TestNeXTOneShot(t *testing.T) {
	lm, mm := fixture.Pair(t, "tiny-next")
	dir := t.TempDir()
	img := fixture.WriteImage(t, dir, "x.png", 500, 300, 3)
	out := filepath.Join(dir, "mask.png")
	args := func(extra ...string) []string {
		return append([]string{"-m", lm, "--mmproj", mm, "--image", img, "-p", "What is in the picture?",
			"-n", "4", "--temp", "0", "--timings"}, extra...)
	}
	r := runChat(t, "", args("--save-mask", out)...)
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assertAnswerOnly(t, r.stdout)
	assert.Contains(t, r.stderr, "image_tokens=1560->173")
	mask := decodePNG(t, out)
	assert.Equal(t, image.Rect(0, 0, 2*500+imageprep.MaskGap, 300), mask.Bounds())

	if emulator.Active() {
		t.Log("under emulation, no --keep 320 turn: another whole NeXT turn (minutes under qemu) through the budget path the default just took")
	} else {
		r = runChat(t, "", args("--keep", "320")...)
		require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
		assert.Contains(t, r.stderr, "image_tokens=1560->320")
	}

	r = runChat(t, "", args("--prune", "none", "--clip-layout", "llama.cpp")...)
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	assert.Contains(t, r.stderr, "image_tokens=1728->1728")

	// Known once the image is read: an option error (exit 2) after loading.
	r = runChat(t, "", args("--keep", "10")...)
	assert.Equal(t, 2, r.code, "stderr:\n%s", r.stderr)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "keep at least 25")
}
