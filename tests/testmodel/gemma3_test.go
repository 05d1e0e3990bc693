package testmodel

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// The Gemma 3 mmproj holds what clip.cpp reads for PROJECTOR_TYPE_GEMMA3
// (whether mtmd loads and runs it is checked in bridge and llava).
func TestGemma3MMProj(t *testing.T) {
	c := TinyGemma3()
	require.NoError(t, CheckPair(TinyLM(), c))
	assert.Equal(t, 64, c.NPatches())
	assert.Equal(t, 16, c.NImageTokens())
	assert.Equal(t, 576, TinyClip().NImageTokens())

	path := filepath.Join(t.TempDir(), "gemma3.gguf")
	require.NoError(t, WriteMMProj(path, c))
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	get := func(key string) any {
		kv, ok := f.Get(key)
		require.True(t, ok, key)
		return kv.Value
	}
	assert.Equal(t, "gemma3", get("clip.projector_type"))
	assert.Equal(t, uint32(2), get("clip.vision.projector.scale_factor"))
	assert.Equal(t, true, get("clip.use_gelu"))
	_, llava := f.Get("clip.has_llava_projector")
	assert.False(t, llava)

	var n int64
	for _, ti := range f.Tensors {
		n += elems(ti.Ne)
	}
	assert.Equal(t, c.ParamCount(), n)
	shape := func(name string) []int64 {
		ti, ok := f.Tensor(name)
		require.True(t, ok, name)
		return ti.Ne
	}
	assert.Equal(t, []int64{64, 64}, shape("v.position_embd.weight"), "patches only: SigLIP has no class token")
	assert.Equal(t, []int64{64, 128}, shape("v.blk.1.ffn_up.weight"), "fc1 as ffn_up: ne[0] == n_embd, no swap")
	assert.Equal(t, []int64{64, 64}, shape("mm.input_projection.weight"), "ne[0] is the LM width")
	for _, name := range []string{"v.patch_embd.bias", "v.post_ln.weight", "mm.soft_emb_norm.weight"} {
		shape(name)
	}
	for _, name := range []string{"v.class_embd", "v.pre_ln.weight", "mm.0.weight"} {
		_, ok := f.Tensor(name)
		assert.False(t, ok, name)
	}

	// The new fields stay out of LLaVA specs' records: their hashes and
	// cached files are unchanged.
	rec, err := json.Marshal(TinyClip())
	require.NoError(t, err)
	assert.NotContains(t, string(rec), "Projector")
	assert.NotContains(t, string(rec), "MergeFactor")

	for _, tc := range []struct {
		mut  func(*ClipSpec)
		want string
	}{
		{func(c *ClipSpec) { c.Projector = "ldp" }, `ClipSpec.Projector=ldp`},
		{func(c *ClipSpec) { c.MergeFactor = 3 }, "must divide the 8-patch grid side"},
		{func(c *ClipSpec) { c.MergeFactor = -1 }, "ClipSpec.MergeFactor=-1"},
	} {
		s := TinyGemma3()
		tc.mut(&s)
		assert.ErrorContains(t, s.Validate(), tc.want)
	}
	llavaMerge := TinyClip()
	llavaMerge.MergeFactor = 2
	assert.ErrorContains(t, llavaMerge.Validate(), "ClipSpec.MergeFactor=2")
}

// The gemma3 LM holds what llama.cpp's loader reads for the architecture
// (whether it loads and runs with mtmd is checked in bridge).
func TestGemma3LM(t *testing.T) {
	l, c := TinyGemma3LM(), SmallGemma3()
	require.NoError(t, CheckPair(l, c))
	assert.Equal(t, 256, c.NImageTokens(), "896 px: 64x64 patches pooled 4x4")
	dir := t.TempDir()
	lmPath, mmPath, err := WritePair(dir, l, c)
	require.NoError(t, err)

	f, err := gguf.Open(lmPath)
	require.NoError(t, err)
	defer f.Close()
	get := func(key string) any {
		kv, ok := f.Get(key)
		require.True(t, ok, key)
		return kv.Value
	}
	assert.Equal(t, "gemma3", get("general.architecture"))
	assert.Equal(t, uint32(32), get("gemma3.attention.key_length"))
	assert.Equal(t, uint32(32), get("gemma3.attention.value_length"))
	assert.Equal(t, uint32(32), get("gemma3.rope.dimension_count"))
	assert.Equal(t, uint32(16), get("gemma3.attention.sliding_window"))
	assert.Equal(t, "linear", get("gemma3.rope.scaling.type"))
	assert.Equal(t, float32(8), get("gemma3.rope.scaling.factor"))
	assert.Equal(t, float32(1e6), get("gemma3.rope.freq_base"))
	assert.Equal(t, Gemma3ChatTemplate, get("tokenizer.chat_template"))
	toks := get("tokenizer.ggml.tokens").([]string)
	types := get("tokenizer.ggml.token_type").([]int32)
	base := BuiltinVocabSize()
	for i, p := range Gemma3Specials {
		assert.Equal(t, p, toks[base+i])
		assert.Equal(t, TokenControl, types[base+i], p)
	}
	assert.Equal(t, uint32(base+1), get("tokenizer.ggml.eos_token_id"), "<end_of_turn>")
	shape := func(name string) []int64 {
		ti, ok := f.Tensor(name)
		require.True(t, ok, name)
		return ti.Ne
	}
	assert.Equal(t, []int64{64, 128}, shape("blk.5.attn_q.weight"), "4 heads of 32: wider than NEmbd/NHead")
	assert.Equal(t, []int64{64, 64}, shape("blk.5.attn_k.weight"), "2 KV heads of 32")
	assert.Equal(t, []int64{128, 64}, shape("blk.5.attn_output.weight"))
	assert.Equal(t, []int64{32}, shape("blk.0.attn_q_norm.weight"))
	assert.Equal(t, []int64{32}, shape("blk.0.attn_k_norm.weight"))
	for _, name := range []string{"blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight", "blk.0.ffn_gate.weight", "output_norm.weight"} {
		shape(name)
	}
	_, ok := f.Tensor("output.weight")
	assert.False(t, ok, "tied output")
	assert.Equal(t, l.ParamCount(), sumParams(f.Tensors))

	m, err := gguf.Open(mmPath)
	require.NoError(t, err)
	defer m.Close()
	_, ok = m.Get("clip.vision.projector.scale_factor")
	assert.False(t, ok, "the default 4: no key, as the converter writes Gemma 3")
	typ := func(name string) gguf.Type {
		ti, ok := m.Tensor(name)
		require.True(t, ok, name)
		return ti.Type
	}
	// As llama.cpp's converter forces them, whatever the file type.
	assert.Equal(t, F32, typ("v.position_embd.weight"))
	assert.Equal(t, F32, typ("v.patch_embd.weight"))
	assert.Equal(t, F16, typ("mm.input_projection.weight"))
	assert.Equal(t, c.ParamCount(), sumParams(m.Tensors))

	for _, tc := range []struct {
		mut  func(*LMSpec)
		want string
	}{
		{func(s *LMSpec) { s.HeadDim = 0 }, "LMSpec.HeadDim=0: must be even"},
		{func(s *LMSpec) { s.NLayer = 5 }, "LMSpec.NLayer=5: must be >= 6 with a sliding window"},
		{func(s *LMSpec) { s.TiedOutput = false }, "must be true: Gemma 3 ties"},
		{func(s *LMSpec) { s.RopeScale = -1 }, "LMSpec.RopeScale=-1"},
	} {
		s := TinyGemma3LM()
		tc.mut(&s)
		assert.ErrorContains(t, s.Validate(), tc.want)
	}
	llama := TinyLM()
	llama.HeadDim = 32
	assert.ErrorContains(t, llama.Validate(), "for Arch gemma3 only")
	noSWA := TinyGemma3LM()
	noSWA.NLayer, noSWA.SlidingWindow = 1, 0
	assert.NoError(t, noSWA.Validate(), "every layer global")
}

// The real-shape pair has Gemma-3-4B's parameter counts: 3.88 B in the LM
// (tied embeddings, 262,208-token vocabulary) and 0.42 B in SigLIP-So400m
// and the projection.
func TestGemma3_4BShapes(t *testing.T) {
	l, c, err := PresetPair("gemma4b")
	require.NoError(t, err)
	require.NoError(t, CheckPair(l, c))
	assert.InDelta(t, 3.880e9, float64(l.ParamCount()), 0.001e9)
	assert.InDelta(t, 419.8e6, float64(c.ParamCount()), 0.1e6)
	assert.Equal(t, 256, c.NImageTokens())
	assert.Equal(t, 4096, c.NPatches())
	assert.Equal(t, 72, c.NEmbd/c.NHead, "head size 72")
}
