package refvit_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/refvit"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// HF's hidden_states of an n-block tower has n+1 entries: [0] the
// embeddings, [k] the output of block k; negative indices count from the end.
func TestHiddenState(t *testing.T) {
	cases := []struct{ i, n, want int }{
		{refvit.LLaVA15SelectLayer, 24, 23}, // LLaVA-1.5 on CLIP-L: the output of block 23 of 24
		{-1, 24, 24},
		{-25, 24, 0}, // the embeddings
		{0, 24, 0},
		{23, 24, 23},
		{24, 24, 24},
		{-2, 13, 12},
		{-4, 13, 10},
	}
	for _, c := range cases {
		got, err := refvit.HiddenState(c.i, c.n)
		require.NoError(t, err, "hidden_states[%d] of %d blocks", c.i, c.n)
		assert.Equal(t, c.want, got, "hidden_states[%d] of %d blocks", c.i, c.n)
	}
	for _, c := range []struct{ i, n int }{{25, 24}, {-26, 24}} {
		_, err := refvit.HiddenState(c.i, c.n)
		assert.ErrorContains(t, err, "does not exist", "hidden_states[%d] of %d blocks", c.i, c.n)
	}
}

func smallClip(nLayer int) testmodel.ClipSpec {
	c := testmodel.TinyClip()
	c.ImageSize = 112 // 8x8 patches keep the float64 forward quick
	c.NLayer = nLayer
	return c
}

func image(c testmodel.ClipSpec) []float32 {
	img := make([]float32, c.ImageSize*c.ImageSize*3)
	for i := range img {
		img[i] = float32(i%97)/48 - 1
	}
	return img
}

// The hidden state picks the depth: the same weights stored with more blocks
// give the same output at the same index (blocks past it are not run), the
// deep scores are the attention of block hiddenState, and the depth changes
// the output.
func TestForwardDepth(t *testing.T) {
	dir := t.TempDir()
	load := func(c testmodel.ClipSpec, name string) *refvit.Model {
		p := filepath.Join(dir, name)
		require.NoError(t, testmodel.WriteMMProj(p, c))
		m, err := refvit.Load(p)
		require.NoError(t, err)
		return m
	}
	// Tensor values depend on the seed and the name only, so blocks 0..5
	// of both files are identical.
	m6 := load(smallClip(6), "six.gguf")
	m8 := load(smallClip(8), "eight.gguf")
	assert.Equal(t, 6, m6.NBlock)
	assert.Equal(t, 8, m8.NBlock)
	img := image(smallClip(6))

	for _, layout := range []refvit.Layout{refvit.CLSFirst, refvit.LlamaCpp} {
		a, err := m6.Forward(img, layout, 2, 6)
		require.NoError(t, err)
		b, err := m8.Forward(img, layout, 2, 6)
		require.NoError(t, err)
		assert.Equal(t, a.Embd, b.Embd, "layout %d: blocks past hidden_states[6] are not run", layout)
		assert.Equal(t, a.Deep, b.Deep)
		assert.Equal(t, a.Object, b.Object)
		require.Contains(t, a.Attn, 5, "the deep layer is block 6 (0-based 5)")
		assert.Equal(t, refvit.ColumnMeans(a.Attn[5])[1:], a.Deep)

		c, err := m8.Forward(img, layout, 2, 8)
		require.NoError(t, err)
		assert.NotEqual(t, a.Embd[0], c.Embd[0], "two more blocks change the features")
		assert.NotEqual(t, a.Deep, c.Deep)
		assert.Equal(t, a.Object, c.Object, "the object layer does not depend on the depth")

		d, err := m8.Forward(img, layout, 8, 8)
		require.NoError(t, err)
		assert.Equal(t, d.Deep, d.Object, "object layer = deep layer")
	}

	_, err := m8.Forward(img, refvit.CLSFirst, 1, 9)
	assert.ErrorContains(t, err, "hidden_states[9]")
	_, err = m8.Forward(img, refvit.CLSFirst, 1, 0)
	assert.ErrorContains(t, err, "hidden_states[0]")
	_, err = m8.Forward(img, refvit.CLSFirst, 7, 6)
	assert.ErrorContains(t, err, "object layer 7 outside 1..6")
}

// The SigLIP reference on a Gemma 3 mmproj: pooled token grid, one score
// per patch forming a distribution, one embedding per token; other
// projectors and layers out of range are refused.
func TestSigLIPForward(t *testing.T) {
	dir := t.TempDir()
	c := testmodel.TinyGemma3()
	p := filepath.Join(dir, "gemma3.gguf")
	require.NoError(t, testmodel.WriteMMProj(p, c))
	m, err := refvit.LoadSigLIP(p)
	require.NoError(t, err)
	assert.Equal(t, 2, m.Merge)
	out, err := m.Forward(image(c), 1)
	require.NoError(t, err)
	assert.Equal(t, [4]int{4, 4, 8, 8}, [4]int{out.GridW, out.GridH, out.PatchW, out.PatchH})
	require.Len(t, out.Embd, 16)
	assert.Len(t, out.Embd[0], c.ProjDim)
	for _, s := range [][]float64{out.Object, out.Deep} {
		require.Len(t, s, 64)
		sum := 0.0
		for _, v := range s {
			sum += v
		}
		assert.InDelta(t, 1, sum, 1e-12)
	}
	assert.NotEqual(t, out.Object, out.Deep)
	_, err = m.Forward(image(c), 3)
	assert.ErrorContains(t, err, "object layer 3 outside 1..2")

	llava := filepath.Join(dir, "llava.gguf")
	require.NoError(t, testmodel.WriteMMProj(llava, smallClip(2)))
	_, err = refvit.LoadSigLIP(llava)
	assert.ErrorContains(t, err, "is not a gemma3 mmproj")
}
