package testmodel

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// The Janus-Pro mmproj holds what clip.cpp reads for
// PROJECTOR_TYPE_JANUS_PRO (whether mtmd loads and runs it, and to how
// many tokens, is checked in bridge: this package does not link llama.cpp).
func TestJanusProMMProj(t *testing.T) {
	c := TinyJanusPro()
	require.NoError(t, CheckPair(TinyLM(), c))
	assert.Equal(t, 16, c.NPatches())
	assert.Equal(t, 16, c.NImageTokens(), "every patch is a token: no pooling or merge")

	path := filepath.Join(t.TempDir(), "janus.gguf")
	require.NoError(t, WriteMMProj(path, c))
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	get := func(key string) any {
		kv, ok := f.Get(key)
		require.True(t, ok, key)
		return kv.Value
	}
	assert.Equal(t, "janus_pro", get("clip.projector_type"))
	assert.Equal(t, true, get("clip.use_gelu"), "the aligner's activation is the tower's")
	assert.Equal(t, uint32(64), get("clip.vision.image_size"))
	for _, key := range []string{"clip.has_llava_projector", "clip.vision.projector.scale_factor"} {
		_, ok := f.Get(key)
		assert.False(t, ok, key)
	}

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
	// mm.0 maps the vision width to ProjDim, mm.1 keeps it; clip.cpp's
	// clip_n_mmproj_embd is mm.1.bias's ne[0], which must be the LM's width.
	assert.Equal(t, []int64{64, 64}, shape("mm.0.weight"))
	assert.Equal(t, []int64{64}, shape("mm.0.bias"))
	assert.Equal(t, []int64{64, 64}, shape("mm.1.weight"))
	assert.Equal(t, []int64{int64(TinyLM().NEmbd)}, shape("mm.1.bias"))
	assert.Equal(t, []int64{64, 16}, shape("v.position_embd.weight"), "patches only: SigLIP has no class token")
	for _, name := range []string{"v.patch_embd.bias", "v.blk.1.ffn_up.weight", "v.post_ln.weight"} {
		shape(name)
	}
	for _, name := range []string{"v.class_embd", "v.pre_ln.weight", "mm.2.weight", "mm.soft_emb_norm.weight", "mm.input_projection.weight"} {
		_, ok := f.Tensor(name)
		assert.False(t, ok, name)
	}

	// A wider aligner shows the two matrices' orientation: mm.0 is
	// [n_embd, ProjDim] and mm.1 [ProjDim, ProjDim] in ggml order.
	wide := TinyJanusPro()
	wide.ProjDim = 96
	wpath := filepath.Join(t.TempDir(), "wide.gguf")
	require.NoError(t, WriteMMProj(wpath, wide))
	wf, err := gguf.Open(wpath)
	require.NoError(t, err)
	defer wf.Close()
	for name, want := range map[string][]int64{"mm.0.weight": {64, 96}, "mm.1.weight": {96, 96}, "mm.1.bias": {96}} {
		ti, ok := wf.Tensor(name)
		require.True(t, ok, name)
		assert.Equal(t, want, ti.Ne, name)
	}
	assert.ErrorContains(t, CheckPair(TinyLM(), wide), "ProjDim=96 must equal LMSpec.NEmbd=64")

	bad := TinyJanusPro()
	bad.MergeFactor = 2
	assert.ErrorContains(t, bad.Validate(), "ClipSpec.MergeFactor=2", "no pooling in Janus-Pro")
}
