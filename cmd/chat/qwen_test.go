package main

import (
	"image"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/fixture"
)

// A Qwen2.5-VL pair through the binary, pruned with the same flags as
// LLaVA: 300 x 200 resizes to 308 x 196, 11 x 7 = 77 merged tokens in 11
// positions; the default keeps 0.334 of them (26). The mask is drawn on
// the original image. Two turns with an image each (interactive) fill the
// cells with the kept tokens only.
func TestQwenOneShot(t *testing.T) {
	lm, mm := fixture.Qwen25VL(t)
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
	assert.Equal(t, [2]int{77, 26}, [2]int{tm[0].before, tm[0].after})
	assert.Equal(t, turnCells(tm[0]), tm[0].kvCells, "a cell per kept token")
	mask := decodePNG(t, out)
	assert.Equal(t, image.Rect(0, 0, 300, 200), mask.Bounds())
	in := decodePNG(t, img)
	same := 0
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			r0, g0, b0, _ := in.At(x, y).RGBA()
			r1, g1, b1, _ := mask.At(x, y).RGBA()
			if r0 == r1 && g0 == g1 && b0 == b1 {
				same++
			}
		}
	}
	// 26 of 77 tokens kept: some of the picture is left as it was, most not.
	assert.Positive(t, same)
	assert.Less(t, same, 300*200/2)

	for _, c := range []struct {
		flags  []string
		before int
		after  int
	}{
		{[]string{"--keep-ratio", "0.112"}, 77, 9},
		{[]string{"--keep", "20", "--prune", "uniform"}, 77, 20},
		{[]string{"--prune", "none"}, 77, 77},
		{[]string{"--object-layer", "2", "--keep-ratio", "0.223"}, 77, 17},
	} {
		r := runChat(t, "", args(c.flags...)...)
		require.Equal(t, 0, r.code, "%v: stderr:\n%s", c.flags, r.stderr)
		tm := parseTimings(t, r.stderr)
		require.Len(t, tm, 1)
		assert.Equal(t, [2]int{c.before, c.after}, [2]int{tm[0].before, tm[0].after}, "%v", c.flags)
	}
	// The tiny tower has 4 blocks: found when the encoder loads, as for LLaVA.
	r = runChat(t, "", args("--object-layer", "5")...)
	assertFails(t, r, 1, "object layer 5", "4 blocks")

	// Interactive: a second image in a second turn.
	img2 := fixture.WriteImage(t, dir, "y.png", 100, 260, 4)
	r = runChat(t, "What is this?\n/image "+img2+"\nAnd this one?\n", "-m", lm, "--mmproj", mm, "--image", img,
		"-n", "2", "--temp", "0", "-t", "2", "--timings")
	require.Equal(t, 0, r.code, "stderr:\n%s", r.stderr)
	tm = parseTimings(t, r.stderr)
	require.Len(t, tm, 2)
	assert.Equal(t, [2]int{77, 26}, [2]int{tm[0].before, tm[0].after})
	assert.Equal(t, [2]int{36, 12}, [2]int{tm[1].before, tm[1].after}, "100 x 260: 4 x 9 tokens")
	assert.Equal(t, tm[0].kvCells+turnCells(tm[1]), tm[1].kvCells)
}

// chat serve with a Qwen2.5-VL pair: a 320 x 240 image is 11 x 9 = 99
// merged tokens (308 x 252), the server's default keeps 0.334 (33), a
// request's keep_ratio applies; the conversation resent with a new turn
// reuses the image in the slot, and usage counts tokens (KV cells), not
// M-RoPE positions.
func TestServeQwen(t *testing.T) {
	lm, mm := fixture.Qwen25VL(t)
	cfg, _ := serveConfigPair(t, lm, mm)
	url := startServer(t, cfg)
	img := dataURI("image/png", imagePNG(t, 9))
	first := []any{userMsg(textPart("Look at this."), imagePart(img))}
	c1 := completion(t, post(t, url, map[string]any{"messages": first, "max_tokens": 4}))
	checkCounts(t, c1.Usage, c1.Timings, c1.Choices[0].FinishReason)
	assert.Equal(t, [2]int{99, 33}, [2]int{c1.Usage.ImageTokensBefore, c1.Usage.ImageTokensAfter})
	assert.Equal(t, "hiprune", c1.Timings.Prune)

	conv := append(first, map[string]any{"role": "assistant", "content": c1.Choices[0].Message.Content},
		map[string]any{"role": "user", "content": "And the colours?"})
	c2 := completion(t, post(t, url, map[string]any{"messages": conv, "max_tokens": 4}))
	checkCounts(t, c2.Usage, c2.Timings, c2.Choices[0].FinishReason)
	assert.Equal(t, 1, c2.Timings.ImagesReused, "the image stays in the slot's context")
	assert.Zero(t, c2.Timings.ImagesEncoded)
	assert.Greater(t, c2.Timings.CacheN, 33, "the prefix through the image is reused")

	c3 := completion(t, post(t, url, map[string]any{"messages": first, "max_tokens": 2,
		"hiprune": map[string]any{"keep_ratio": 0.112}}))
	checkCounts(t, c3.Usage, c3.Timings, c3.Choices[0].FinishReason)
	assert.Equal(t, 11, c3.Usage.ImageTokensAfter, "99 x 0.112 = 11.1")
}
