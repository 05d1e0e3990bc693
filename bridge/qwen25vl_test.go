package bridge_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// llama.cpp's mtmd loads the generated Qwen2.5-VL pair and runs it: images
// of any size become (W/28) x (H/28) merged tokens after the smart resize,
// and, with M-RoPE, an image takes max(W/28, H/28) positions.
func TestQwen25VLThroughMtmd(t *testing.T) {
	lm, mm := fixture.Qwen25VL(t)
	pi, err := bridge.ReadProjector(mm)
	require.NoError(t, err)
	assert.Equal(t, bridge.ProjectorInfo{Type: "qwen2.5vl_merger", Family: "Qwen2.5-VL", Vision: true}, pi)

	m, err := bridge.LoadModel(lm, bridge.ModelParams{})
	require.NoError(t, err)
	defer m.Close()
	x, err := bridge.OpenMtmd(mm, m, 2, false)
	require.NoError(t, err)
	defer x.Close()
	ctx, err := bridge.NewContext(m, bridge.ContextParams{NCtx: 1024, Threads: 2})
	require.NoError(t, err)
	defer ctx.Close()

	// 300x200 resizes to 308x196 (11x7 tokens), 100x260 to 112x252 (4x9).
	a, b := fixture.Image(t, 300, 200, 1), fixture.Image(t, 100, 260, 2)
	mk := bridge.MtmdMarker()
	ch, err := x.Tokenize("<|im_start|>user\n"+mk+mk+"What is it?<|im_end|>\n<|im_start|>assistant\n", []*imageprep.RGB{a, b}, true)
	require.NoError(t, err)
	defer ch.Free()
	type img struct{ tokens, pos int }
	var imgs []img
	text := 0
	for i := 0; i < ch.Len(); i++ {
		if ch.IsImage(i) {
			imgs = append(imgs, img{ch.NTokens(i), ch.NPos(i)})
			continue
		}
		text += ch.NTokens(i)
		assert.Equal(t, ch.NTokens(i), ch.NPos(i))
	}
	assert.Equal(t, []img{{77, 11}, {36, 9}}, imgs)
	// The delimiters are single control tokens of the generated vocabulary.
	start := ch.Tokens(0)
	require.NotEmpty(t, start)
	assert.Equal(t, "<|vision_start|>", m.TokenText(start[len(start)-1]))
	assert.NotEqual(t, m.BOS(), start[0], "Qwen adds no BOS")

	n, tm, err := x.Eval(ctx, ch, 0, true)
	require.NoError(t, err)
	assert.Equal(t, 113, tm.ImageTokens)
	assert.Equal(t, text+11+9, n, "positions: the text and max(nx, ny) per image")
	// KVCells measures the span of positions, which an M-RoPE image
	// compresses: 130 tokens sit in 37 positions.
	assert.Equal(t, n, ctx.KVCells())
	assert.Equal(t, 130, tm.ImageTokens+tm.TextTokens)
	for _, v := range ctx.Logits() {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "logit %v", v)
	}
}

// Go's smart resize and preprocessing against clip_image_preprocess, on
// sizes that take each branch (aligned, rounded, grown to the minimum,
// shrunk to the maximum, extreme aspect ratios).
func TestPreprocessDynamicMatchesLlamaCpp(t *testing.T) {
	_, mm := fixture.Qwen25VL(t)
	clip, err := bridge.OpenClip(mm, false, -1)
	require.NoError(t, err)
	defer clip.Close()
	c := testmodel.TinyQwen25VL()
	lo, hi := imageprep.QwenPixelLimits(c.PatchSize, 2, imageprep.QwenMinTokens, imageprep.QwenMaxTokens)
	p := imageprep.DynamicParams{PatchSize: c.PatchSize, Merge: 2, MinPixels: lo, MaxPixels: hi, Mean: c.Mean, Std: c.Std}
	sizes := [][2]int{{560, 560}, {300, 200}, {200, 300}, {1, 1}, {17, 33}, {42, 100}, {1000, 10}, {10, 1000},
		{559, 561}, {4000, 3000}, {1920, 1080}, {3000, 40}}
	for i, sz := range sizes {
		rgb := fixture.Image(t, sz[0], sz[1], uint64(i+1))
		views, err := clip.Preprocess(rgb)
		require.NoError(t, err)
		require.Len(t, views, 1)
		want := views[0]
		got, err := imageprep.PreprocessDynamic(rgb, p)
		require.NoError(t, err)
		require.Equal(t, [2]int{want.W, want.H}, [2]int{got.W, got.H}, "size of %dx%d", sz[0], sz[1])
		diff := 0
		for j := range got.Pix {
			if got.Pix[j] != want.Pix[j] {
				diff++
			}
		}
		t.Logf("%dx%d -> %dx%d: %d of %d values differ", sz[0], sz[1], got.W, got.H, diff, len(got.Pix))
		assert.Zero(t, diff, "%dx%d", sz[0], sz[1])
	}
}
