package gguf_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/internal/gguf"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// fuzzSeeds are small valid files: an mmproj of the shape the project
// generates (every key kind it writes, F16/F32 tensors) and a Q4_0 LM
// header cut short of its data, so the fuzzer starts from real layouts.
func fuzzSeeds(t testing.TB) [][]byte {
	clip := testmodel.TinyClip()
	clip.ImageSize, clip.PatchSize, clip.NEmbd, clip.NHead, clip.NFF, clip.NLayer, clip.ProjDim = 4, 2, 4, 2, 4, 2, 4
	clip.FeatureLayer = 2
	mw, err := testmodel.NewMMProjWriter(clip)
	require.NoError(t, err)
	var mm bytes.Buffer
	_, err = mw.WriteTo(&mm)
	require.NoError(t, err)

	w := gguf.NewWriter()
	require.NoError(t, w.AddString("general.architecture", "llama"))
	require.NoError(t, w.AddUint32("llama.block_count", 1))
	require.NoError(t, w.AddInt32("test.i32", -7))
	require.NoError(t, w.AddUint64("test.u64", 1<<40))
	require.NoError(t, w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5))
	require.NoError(t, w.AddBool("tokenizer.ggml.add_bos_token", true))
	require.NoError(t, w.AddStringArray("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "▁a"}))
	require.NoError(t, w.AddFloat32Array("tokenizer.ggml.scores", []float32{0, 0, -1}))
	require.NoError(t, w.AddUint32Array("test.u32s", []uint32{1, 2}))
	ne := []int64{32, 2}
	require.NoError(t, w.AddTensor("token_embd.weight", gguf.TypeQ4_0, ne, gguf.Float32Source(gguf.TypeQ4_0, ne, make([]float32, 64))))
	require.NoError(t, w.AddTensor("output_norm.weight", gguf.TypeF32, []int64{3}, gguf.Float32Source(gguf.TypeF32, []int64{3}, []float32{1, 2, 3})))
	var lm bytes.Buffer
	_, err = w.WriteTo(&lm)
	require.NoError(t, err)
	return [][]byte{mm.Bytes(), lm.Bytes(), lm.Bytes()[:lm.Len()-40]}
}

func TestFuzzSeedsAreValid(t *testing.T) {
	for i, b := range fuzzSeeds(t)[:2] {
		_, err := gguf.OpenReaderAt(bytes.NewReader(b), int64(len(b)))
		require.NoError(t, err, "seed %d", i)
	}
}

// FuzzOpen feeds arbitrary bytes to the header reader. It must return an
// error or a header whose tensors all lie in the input, never panic or
// allocate more than the input justifies; Decode (size unknown) must agree.
func FuzzOpen(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := gguf.OpenReaderAt(bytes.NewReader(b), int64(len(b)))
		d, derr := gguf.Decode(bytes.NewReader(b))
		if err != nil {
			if derr == nil {
				// Decode does not check extents: only Open's tensor check may differ.
				require.Contains(t, err.Error(), "beyond the file size")
			}
			return
		}
		require.NoError(t, derr)
		require.Equal(t, len(g.KV), len(d.KV))
		require.Equal(t, g.Tensors, d.Tensors)
		require.Zero(t, g.DataOffset%g.Alignment)
		for _, ti := range g.Tensors {
			require.LessOrEqual(t, g.DataOffset+ti.Offset+ti.Size, int64(len(b)))
			raw, err := g.ReadTensor(ti.Name)
			require.NoError(t, err)
			require.Len(t, raw, int(ti.Size))
			if ti.Type.Known() {
				v, err := g.ReadTensorFloat32(ti.Name)
				require.NoError(t, err)
				n := int64(1)
				for _, x := range ti.Ne {
					n *= x
				}
				require.Len(t, v, int(n))
			}
		}
		require.NoError(t, g.Close())
	})
}
