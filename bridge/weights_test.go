package bridge_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// quantizedCopy writes the mmproj of spec c again with its matrices in
// quant ("q8_0", "q4_0"), quantized by internal/gguf from the values stored
// in src: a quantized mmproj as a converter would make it from that file.
func quantizedCopy(t *testing.T, src string, c testmodel.ClipSpec, quant string) string {
	t.Helper()
	f, err := gguf.Open(src)
	require.NoError(t, err)
	defer f.Close()
	ws := testmodel.Weights{}
	for _, ti := range f.Tensors {
		v, err := f.ReadTensorFloat32(ti.Name)
		require.NoError(t, err, ti.Name)
		ws[ti.Name] = v
	}
	c.MatQuant = quant
	w, err := testmodel.NewMMProjWriterWeights(c, ws)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "mmproj-"+quant+".gguf")
	require.NoError(t, w.WriteFile(path))
	return path
}

// EncoderParams.Weights converts the matrix weights at load. Checked against
// llama.cpp's clip on a file whose matrices are stored quantized (written by
// internal/gguf's own quantizers from the same values): our encoder on the
// f32 file converting at load, and on the quantized file as stored, give
// clip's embeddings; the quantized encoder differs from the f32 one by what
// the type's rounding explains, and not by nothing.
func TestEncoderWeightsMatchClipOnQuantizedFile(t *testing.T) {
	c := testmodel.TinyClip()
	_, mm := fixture.Pair(t, "tiny")
	base, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp, Threads: 2, ObjectLayer: 1})
	require.NoError(t, err)
	defer base.Close()
	assert.Equal(t, "f32", base.Info().WeightType)
	cases := []struct {
		quant   string
		weights bridge.Weights
		// quantized vs f32 weights, relative to the embeddings' scale: about
		// half of each is measured (3.0e-2 and 3.3e-1) through the tiny
		// tower's 12 random blocks, which compound the rounding; whether
		// answers survive it is make eval's question, on the trained testbed
		maxVsF float64
	}{
		{"q8_0", bridge.WeightsQ8_0, 6e-2},
		{"q4_0", bridge.WeightsQ4_0, 0.7},
	}
	for _, tc := range cases {
		t.Run(tc.quant, func(t *testing.T) {
			qfile := quantizedCopy(t, mm, c, tc.quant)
			// clip without flash attention, as our encoder's "auto" runs CLIP
			// on the CPU (TestEncoderMatchesLlamaCppClip covers both).
			clip, err := bridge.OpenClip(qfile, false, 0)
			require.NoError(t, err)
			defer clip.Close()
			conv, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp, Threads: 2, ObjectLayer: 1, Weights: tc.weights})
			require.NoError(t, err)
			defer conv.Close()
			stored, err := bridge.OpenEncoder(qfile, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp, Threads: 2, ObjectLayer: 1})
			require.NoError(t, err)
			defer stored.Close()
			assert.Equal(t, tc.quant, conv.Info().WeightType)
			assert.Equal(t, tc.quant, stored.Info().WeightType)
			for seed := uint64(1); seed <= 2; seed++ {
				img := preprocessed(t, clip, 500, 375, seed)
				want, err := clip.Encode(img, 2)
				require.NoError(t, err)
				gotConv := encode(t, conv, img)
				gotStored := encode(t, stored, img)
				eConv, eStored := relErr(t, gotConv.Embd, want), relErr(t, gotStored.Embd, want)
				eF := relErr(t, gotConv.Embd, encode(t, base, img).Embd)
				t.Logf("%s seed %d: vs clip on the %s file: converted at load %.2e, as stored %.2e; vs f32 weights %.2e",
					tc.quant, seed, tc.quant, eConv, eStored, eF)
				// ggml_quantize_chunk at load and internal/gguf's quantizers
				// make the same bytes, so both equal clip exactly (measured 0)
				assert.LessOrEqual(t, eConv, 1e-6, "converted at load vs clip")
				assert.LessOrEqual(t, eStored, 1e-6, "as stored vs clip")
				assert.Greater(t, eF, 1e-5, "the quantized encoder should not equal the f32 one")
				assert.LessOrEqual(t, eF, tc.maxVsF)
			}
		})
	}
}

func TestEncoderWeightsErrors(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny")
	q4 := quantizedCopy(t, mm, testmodel.TinyClip(), "q4_0")
	_, err := bridge.OpenEncoder(q4, bridge.EncoderParams{Weights: bridge.WeightsQ8_0})
	require.Error(t, err)
	assert.ErrorIs(t, err, bridge.ErrUnsup)
	assert.Contains(t, err.Error(), "stored as q4_0")
	assert.Contains(t, err.Error(), "v.blk.0.attn_q.weight")

	_, err = bridge.OpenEncoder(mm, bridge.EncoderParams{Weights: bridge.Weights(9)})
	assert.ErrorIs(t, err, bridge.ErrArg)

	for _, s := range []string{"", "f16", "q8_0", "q4_0"} {
		w, ok := bridge.ParseWeights(s)
		require.True(t, ok, s)
		if s != "" {
			assert.Equal(t, s, w.String())
		}
	}
	_, ok := bridge.ParseWeights("q5_k")
	assert.False(t, ok)
}
