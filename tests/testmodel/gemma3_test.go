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
