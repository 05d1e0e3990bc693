package bridge_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/llava/imageprep"
	"github.com/hiprune/hiprune-go/tests/fixture"
	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// LLaVA-NeXT preprocessing in Go against clip_image_preprocess: the same
// views (base view, then the tiles of the best pinpoint resolution), bit for
// bit, on shapes that pick every pinpoint, on the boundary of the base-only
// case, and on extreme aspect ratios.
func TestPreprocessViewsMatchesLlamaCpp(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny-next")
	clip, err := bridge.OpenClip(mm, false, -1)
	require.NoError(t, err)
	defer clip.Close()
	enc, err := bridge.OpenEncoder(mm, bridge.EncoderParams{Threads: 1})
	require.NoError(t, err)
	in := enc.Info()
	enc.Close()
	require.Len(t, in.Pinpoints, len(testmodel.NeXTPinpoints))
	assert.Equal(t, imageprep.Size{W: 336, H: 672}, in.Pinpoints[0])
	assert.Equal(t, bridge.MergeSpatialUnpad, in.MergeType)
	assert.True(t, in.HasNewline)
	p := imageprep.Params{ImageSize: in.ImageSize, Mean: in.Mean, Std: in.Std, Pinpoints: in.Pinpoints}

	sizes := []struct {
		w, h, views int
	}{
		{336, 336, 1}, {300, 200, 1}, {1, 1, 1}, {337, 336, 3}, {336, 337, 3},
		{500, 375, 5}, {672, 672, 5}, {640, 480, 5}, {900, 300, 4}, {300, 900, 4},
		{700, 330, 4}, {330, 700, 4}, {600, 330, 3}, {1000, 100, 4}, {100, 1000, 4}, {2000, 1500, 5}, {1008, 336, 4},
	}
	for i, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			rgb := fixture.Image(t, sz.w, sz.h, uint64(i+1))
			want, err := clip.Preprocess(rgb)
			require.NoError(t, err)
			got, plan, err := imageprep.PreprocessViews(rgb, p)
			require.NoError(t, err)
			require.Len(t, want, sz.views)
			require.Len(t, got, len(want))
			assert.Equal(t, sz.views, plan.NViews())
			for v := range want {
				require.Equal(t, [2]int{want[v].W, want[v].H}, [2]int{got[v].W, got[v].H}, "view %d size", v)
				if !assert.Equal(t, want[v].Pix, got[v].Pix, "view %d pixels", v) {
					return
				}
			}
		})
	}
}

// What a LLaVA-NeXT mmproj adds is checked when the encoder opens it.
func TestEncoderNeXTMetadataErrors(t *testing.T) {
	_, mm := fixture.Pair(t, "tiny-next")
	dir := t.TempDir()
	cases := []struct {
		name   string
		edit   fixture.Edit
		layout bridge.Layout
		kind   error
		want   string
	}{
		{"pinpoint not a multiple of the view", fixture.Edit{Set: map[string]any{"clip.vision.image_grid_pinpoints": []int32{336, 672, 500, 336}}},
			bridge.LayoutCLSFirst, bridge.ErrUnsup, "pair 1 is 500x336, not a multiple of clip.vision.image_size 336"},
		{"odd pinpoint count", fixture.Edit{Set: map[string]any{"clip.vision.image_grid_pinpoints": []int32{336, 672, 672}}},
			bridge.LayoutCLSFirst, bridge.ErrFormat, "has 3 values, want (width, height) pairs"},
		{"negative pinpoint", fixture.Edit{Set: map[string]any{"clip.vision.image_grid_pinpoints": []int32{336, -672}}},
			bridge.LayoutCLSFirst, bridge.ErrFormat, "pair 0 is 336x-672"},
		{"pinpoints not ints", fixture.Edit{Set: map[string]any{"clip.vision.image_grid_pinpoints": []float32{336, 672}}},
			bridge.LayoutCLSFirst, bridge.ErrFormat, "image_grid_pinpoints is not an array of int32"},
		{"unknown merge type", fixture.Edit{Set: map[string]any{"clip.vision.mm_patch_merge_type": "spatial_unpad_anyres_max_9"}},
			bridge.LayoutCLSFirst, bridge.ErrUnsup, `mm_patch_merge_type = "spatial_unpad_anyres_max_9" is not supported`},
		{"no newline", fixture.Edit{Drop: []string{"model.image_newline"}},
			bridge.LayoutCLSFirst, bridge.ErrFormat, "missing tensor model.image_newline (mm_patch_merge_type spatial_unpad"},
		{"newline of the wrong width", fixture.Edit{Reshape: map[string][]int64{"model.image_newline": {32}}},
			bridge.LayoutCLSFirst, bridge.ErrFormat, "tensor model.image_newline is"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := fixture.Mutate(t, mm, dir, "m.gguf", tc.edit)
			_, err := bridge.OpenEncoder(path, bridge.EncoderParams{Layout: tc.layout})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// llama.cpp never uses the newline: its layout opens a file without one.
	path := fixture.Mutate(t, mm, dir, "nonl.gguf", fixture.Edit{Drop: []string{"model.image_newline"}})
	enc, err := bridge.OpenEncoder(path, bridge.EncoderParams{Layout: bridge.LayoutLlamaCpp})
	require.NoError(t, err)
	assert.False(t, enc.Info().HasNewline)
	assert.Nil(t, enc.Newline())
	enc.Close()
}
