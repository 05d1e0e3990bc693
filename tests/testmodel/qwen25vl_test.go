package testmodel

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// The Qwen2.5-VL pair holds what llama.cpp's loaders read for the qwen2vl
// architecture and the qwen2.5vl_merger projector (whether mtmd loads and
// runs it is checked in bridge).
func TestQwen25VLPair(t *testing.T) {
	l, c := TinyQwenLM(), TinyQwen25VL()
	require.NoError(t, CheckPair(l, c))
	assert.Equal(t, 400, c.NImageTokens(), "560 px: 40x40 patches merged 2x2")
	dir := t.TempDir()
	lmPath, mmPath, err := WritePair(dir, l, c)
	require.NoError(t, err)

	m, err := gguf.Open(mmPath)
	require.NoError(t, err)
	defer m.Close()
	get := func(f *gguf.File, key string) any {
		kv, ok := f.Get(key)
		require.True(t, ok, key)
		return kv.Value
	}
	assert.Equal(t, "qwen2.5vl_merger", get(m, "clip.projector_type"))
	assert.Equal(t, true, get(m, "clip.use_silu"))
	assert.Equal(t, uint32(2), get(m, "clip.vision.n_wa_pattern"))
	assert.Equal(t, uint32(112), get(m, "clip.vision.window_size"))
	assert.Equal(t, uint32(2), get(m, "clip.vision.spatial_merge_size"))
	_, llava := m.Get("clip.has_llava_projector")
	assert.False(t, llava)
	shape := func(f *gguf.File, name string) []int64 {
		ti, ok := f.Tensor(name)
		require.True(t, ok, name)
		return ti.Ne
	}
	assert.Equal(t, []int64{14, 14, 3, 64}, shape(m, "v.patch_embd.weight"))
	assert.Equal(t, []int64{14, 14, 3, 64}, shape(m, "v.patch_embd.weight.1"), "Conv3d's second frame")
	assert.Equal(t, []int64{96, 64}, shape(m, "v.blk.3.ffn_down.weight"), "ne[0] != n_embd: clip.cpp does not swap")
	assert.Equal(t, []int64{64, 96}, shape(m, "v.blk.3.ffn_gate.weight"))
	assert.Equal(t, []int64{256, 256}, shape(m, "mm.0.weight"), "2x2 patches concatenated")
	assert.Equal(t, []int64{256, 64}, shape(m, "mm.2.weight"))
	for _, name := range []string{"v.class_embd", "v.position_embd.weight", "v.patch_embd.bias", "v.blk.0.ln1.bias", "v.post_ln.bias"} {
		_, ok := m.Tensor(name)
		assert.False(t, ok, name)
	}
	assert.Equal(t, c.ParamCount(), sumParams(m.Tensors))

	f, err := gguf.Open(lmPath)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, "qwen2vl", get(f, "general.architecture"))
	assert.Equal(t, []int32{2, 3, 3, 0}, get(f, "qwen2vl.rope.dimension_sections"))
	assert.Equal(t, float32(1e6), get(f, "qwen2vl.rope.freq_base"))
	assert.Equal(t, false, get(f, "tokenizer.ggml.add_bos_token"))
	assert.Equal(t, QwenChatTemplate, get(f, "tokenizer.chat_template"))
	toks := get(f, "tokenizer.ggml.tokens").([]string)
	types := get(f, "tokenizer.ggml.token_type").([]int32)
	base := BuiltinVocabSize()
	require.Len(t, toks, base+len(QwenSpecials))
	for i, p := range QwenSpecials {
		assert.Equal(t, p, toks[base+i])
		assert.Equal(t, TokenControl, types[base+i], p)
	}
	assert.Equal(t, uint32(base+2), get(f, "tokenizer.ggml.eos_token_id"), "<|im_end|>")
	assert.Equal(t, []int64{32}, shape(f, "blk.1.attn_k.bias"), "2 KV heads of 16")
	assert.Equal(t, []int64{64}, shape(f, "blk.1.attn_q.bias"))
	assert.Equal(t, l.ParamCount(), sumParams(f.Tensors))

	tied := Qwen25VL3BLM()
	tied.NLayer, tied.VocabWords = 1, 0
	p := filepath.Join(dir, "tied.gguf")
	require.NoError(t, WriteLM(p, tied))
	g, err := gguf.Open(p)
	require.NoError(t, err)
	defer g.Close()
	_, ok := g.Tensor("output.weight")
	assert.False(t, ok, "tied output: llama.cpp reuses token_embd")
	assert.Equal(t, tied.ParamCount(), sumParams(g.Tensors))

	// The new fields stay out of the other specs' records.
	for _, v := range []any{TinyLM(), TinyClip(), TinyGemma3()} {
		rec, err := json.Marshal(v)
		require.NoError(t, err)
		for _, k := range []string{"Arch", "RopeSections", "Specials", "EOSPiece", "NoBOS", "TiedOutput", "WAPattern", "WindowSize", "UseSiLU"} {
			assert.NotContains(t, string(rec), k)
		}
	}
}

// The real-shape pair has Qwen2.5-VL-3B's parameter counts: 3.09 B in the
// LM (tied embeddings) and 0.67 B in the vision tower and merger.
func TestQwen25VL3BShapes(t *testing.T) {
	l, c, err := PresetPair("qwen3b")
	require.NoError(t, err)
	require.NoError(t, CheckPair(l, c))
	assert.InDelta(t, 3.086e9, float64(l.ParamCount()), 0.001e9)
	assert.InDelta(t, 668.7e6, float64(c.ParamCount()), 0.1e6)
	assert.Equal(t, 1280/16, c.NEmbd/c.NHead, "head size 80")
}

func TestQwen25VLValidation(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*ClipSpec)
		want string
	}{
		{func(c *ClipSpec) { c.NHead = 32 }, "head size NEmbd/NHead=2 must be a multiple of 4"},
		{func(c *ClipSpec) { c.NFF = 64 }, "ClipSpec.NFF=64: must differ from NEmbd"},
		{func(c *ClipSpec) { c.ImageSize = 574 }, "ClipSpec.ImageSize=574: must be a multiple of 28"},
		{func(c *ClipSpec) { c.WAPattern = 0 }, "ClipSpec.WAPattern=0: must be >= 1"},
		{func(c *ClipSpec) { c.WindowSize = 100 }, "ClipSpec.WindowSize=100"},
		{func(c *ClipSpec) { c.Newline = true }, "takes none of the LLaVA fields"},
		{func(c *ClipSpec) { c.UseGELU = true }, "UseGELU and UseSiLU are both set"},
	} {
		c := TinyQwen25VL()
		tc.mut(&c)
		assert.ErrorContains(t, c.Validate(), tc.want)
	}
	llava := TinyClip()
	llava.WAPattern = 8
	assert.ErrorContains(t, llava.Validate(), "for a qwen2.5vl_merger projector only")

	for _, tc := range []struct {
		mut  func(*LMSpec)
		want string
	}{
		{func(s *LMSpec) { s.RopeSections = []int32{2, 3, 3} }, "must be 4 values"},
		{func(s *LMSpec) { s.RopeSections = []int32{4, 4, 4, 0} }, "must add up to half the head size, 8"},
		{func(s *LMSpec) { s.Arch = "gpt2" }, `LMSpec.Arch=gpt2: must be "llama", "qwen2vl" or "gemma3"`},
		{func(s *LMSpec) { s.Specials = []string{"<a>", "<a>"} }, "piece 1 is empty or repeated"},
		{func(s *LMSpec) { s.EOSPiece = "<|eot|>" }, "must be one of Specials"},
		{func(s *LMSpec) { s.VocabWords = BuiltinVocabSize() }, "must be 0 or >= the built-in vocabulary size"},
	} {
		s := TinyQwenLM()
		tc.mut(&s)
		assert.ErrorContains(t, s.Validate(), tc.want)
	}
	llamaLM := TinyLM()
	llamaLM.RopeSections = []int32{2, 3, 3, 0}
	assert.ErrorContains(t, llamaLM.Validate(), "only for Arch qwen2vl")
	_, err := BuildVocabSpecials(0, []string{"<s>"})
	assert.ErrorContains(t, err, `duplicate vocabulary piece "<s>"`)
}
