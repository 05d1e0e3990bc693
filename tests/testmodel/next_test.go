package testmodel

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/internal/gguf"
)

// WithNeXT writes LLaVA-1.6's keys and newline tensor on top of an
// unchanged LLaVA-1.5 encoder; LLaVA-1.5 specs keep their hashes.
func TestMMProjNeXT(t *testing.T) {
	base := TinyClip()
	next := WithNeXT(base)
	dir := t.TempDir()
	pb, pn := filepath.Join(dir, "base.gguf"), filepath.Join(dir, "next.gguf")
	require.NoError(t, WriteMMProj(pb, base))
	require.NoError(t, WriteMMProj(pn, next))
	f, err := gguf.Open(pn)
	require.NoError(t, err)
	defer f.Close()
	kv, ok := f.Get("clip.vision.image_grid_pinpoints")
	require.True(t, ok)
	assert.Equal(t, gguf.ValInt32, kv.ElemType, "clip.cpp reads it with get_arr_int")
	assert.Equal(t, []int32{336, 672, 672, 336, 672, 672, 1008, 336, 336, 1008}, kv.Value)
	kv, ok = f.Get("clip.vision.mm_patch_merge_type")
	require.True(t, ok)
	assert.Equal(t, "spatial_unpad", kv.Value)
	nl, ok := f.Tensor("model.image_newline")
	require.True(t, ok)
	assert.Equal(t, []int64{int64(base.ProjDim)}, nl.Ne)
	assert.Equal(t, F32, nl.Type)

	g, err := gguf.Open(pb)
	require.NoError(t, err)
	defer g.Close()
	require.Len(t, f.Tensors, len(g.Tensors)+1)
	for i := range g.Tensors {
		a, err := g.ReadTensor(g.Tensors[i].Name)
		require.NoError(t, err)
		b, err := f.ReadTensor(g.Tensors[i].Name)
		require.NoError(t, err)
		assert.Equal(t, a, b, "tensor %s: the encoder is LLaVA-1.5's", g.Tensors[i].Name)
	}
	rec, err := json.Marshal(base)
	require.NoError(t, err)
	assert.NotContains(t, string(rec), "Pinpoints")
	assert.NotContains(t, string(rec), "Newline")

	bad := next
	bad.GridPinpoints = []int32{336, 672, 672}
	assert.ErrorContains(t, bad.Validate(), "GridPinpoints")
	l, c, err := PresetPair("1b-next")
	require.NoError(t, err)
	assert.Equal(t, LM1B().NEmbd, c.ProjDim)
	assert.Equal(t, 2048, l.NEmbd)
	assert.Equal(t, "spatial_unpad", c.MergeType)
}
