package llava

import (
	"image"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/hiprune"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

var nextParams = imageprep.Params{
	ImageSize: 336, Mean: imageprep.LLaVA15Params.Mean, Std: imageprep.LLaVA15Params.Std,
	Pinpoints: []imageprep.Size{{W: 336, H: 672}, {W: 672, H: 336}, {W: 672, H: 672}, {W: 1008, H: 336}, {W: 336, H: 1008}},
}

func plan(t *testing.T, w, h int) imageprep.ViewPlan {
	t.Helper()
	p, err := imageprep.PlanViews(w, h, nextParams)
	require.NoError(t, err)
	return p
}

// LLaVA's unpad_image on the 48 x 48 feature grid of a 2 x 2 tile image.
func TestUnpadCrop(t *testing.T) {
	for _, tc := range []struct {
		w, h           int
		r0, r1, c0, c1 int
	}{
		// 375 * (48/500) = 36 rows of image, (48-36)/2 = 6 padding rows each side
		{500, 375, 6, 42, 0, 48},
		{375, 500, 0, 48, 6, 42},
		{672, 672, 0, 48, 0, 48},
		// 48/640*480 = 36.0 exactly
		{640, 480, 6, 42, 0, 48},
		// int(400 * 48/700) = 27, (48-27)/2 = 10: 28 rows kept (the odd one stays)
		{700, 400, 10, 38, 0, 48},
	} {
		r0, r1, c0, c1 := unpadCrop(imageprep.Size{W: tc.w, H: tc.h}, 48, 48)
		assert.Equal(t, [4]int{tc.r0, tc.r1, tc.c0, tc.c1}, [4]int{r0, r1, c0, c1}, "%dx%d", tc.w, tc.h)
	}
}

func TestTokenLayout(t *testing.T) {
	p := plan(t, 500, 375) // 672 x 672: 2 x 2 tiles
	require.Equal(t, 2, p.TilesX)
	require.Equal(t, 2, p.TilesY)

	t.Run("llama.cpp: every view, in order, no newline", func(t *testing.T) {
		l := newTokenLayout(p, 24, 24, bridge.MergeSpatialUnpad, true)
		require.Len(t, l.entries, 5*576)
		assert.Zero(t, l.newlines)
		for i, e := range l.entries {
			require.Equal(t, tokenEntry{int32(i / 576), int32(i % 576)}, e)
		}
	})
	t.Run("spatial_unpad: base, tiles in raster order cropped, a newline per row", func(t *testing.T) {
		l := newTokenLayout(p, 24, 24, bridge.MergeSpatialUnpad, false)
		// rows 6..41 of the 48 x 48 grid, 48 tokens and a newline each
		require.Len(t, l.entries, 576+36*49)
		assert.Equal(t, 36, l.newlines)
		assert.Equal(t, tokenEntry{0, 575}, l.entries[575])
		assert.Equal(t, tokenEntry{1, 6*24 + 0}, l.entries[576], "first kept row of the top-left tile")
		assert.Equal(t, tokenEntry{1, 6*24 + 23}, l.entries[576+23])
		assert.Equal(t, tokenEntry{2, 6*24 + 0}, l.entries[576+24], "the row goes on in the top-right tile")
		assert.Equal(t, tokenEntry{-1, 0}, l.entries[576+48], "newline after the row")
		assert.Equal(t, tokenEntry{3, 0}, l.entries[576+18*49], "row 24: the bottom tiles")
		assert.Equal(t, tokenEntry{-1, 0}, l.entries[len(l.entries)-1])
		assert.Equal(t, image.Rect(0, 0, 24, 24), l.area[0])
		assert.Equal(t, image.Rect(0, 6, 24, 24), l.area[1])
		assert.Equal(t, image.Rect(0, 6, 24, 24), l.area[2])
		assert.Equal(t, image.Rect(0, 0, 24, 18), l.area[3])
		assert.Equal(t, image.Rect(0, 0, 24, 18), l.area[4])
	})
	t.Run("spatial: raster order, no crop, no newline", func(t *testing.T) {
		l := newTokenLayout(p, 24, 24, bridge.MergeSpatial, false)
		require.Len(t, l.entries, 5*576)
		assert.Equal(t, tokenEntry{2, 0}, l.entries[576+24])
		assert.Equal(t, tokenEntry{1, 24}, l.entries[576+48])
	})
	t.Run("flat: views in order", func(t *testing.T) {
		l := newTokenLayout(p, 24, 24, bridge.MergeFlat, false)
		require.Len(t, l.entries, 5*576)
		assert.Equal(t, tokenEntry{1, 24}, l.entries[576+24])
	})
	t.Run("base view only", func(t *testing.T) {
		small := plan(t, 300, 200)
		require.Equal(t, 1, small.NViews())
		l := newTokenLayout(small, 24, 24, bridge.MergeSpatialUnpad, false)
		require.Len(t, l.entries, 577, "LLaVA appends one newline to a single view")
		assert.Equal(t, tokenEntry{-1, 0}, l.entries[576])
		assert.Len(t, newTokenLayout(small, 24, 24, bridge.MergeSpatialUnpad, true).entries, 576)
	})
}

func TestSplitBudget(t *testing.T) {
	// The authors' split: N'/B for each of B whole views.
	assert.Equal(t, []int{64, 64, 64, 64, 64}, splitBudget(320, []int{576, 576, 576, 576, 576}))
	assert.Equal(t, []int{33, 32, 32, 32, 32}, splitBudget(161, []int{576, 576, 576, 576, 576}))
	// In proportion to what a view contributes; the total is exact.
	got := splitBudget(284, []int{576, 432, 432, 432, 432})
	assert.Equal(t, []int{71, 54, 53, 53, 53}, got)
	assert.Equal(t, []int{0, 10, 0}, splitBudget(10, []int{0, 20, 0}))
	assert.Equal(t, []int{3, 2}, splitBudget(5, []int{3, 2}), "never more than a view has")
}

func fakeViews(n, grid int, seed uint64) []*bridge.Encoding {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]*bridge.Encoding, n)
	for v := range out {
		e := &bridge.Encoding{GridW: grid, GridH: grid, ProjDim: 2, Embd: make([]float32, grid*grid*2)}
		for i := 0; i < grid*grid; i++ {
			e.Object = append(e.Object, r.Float32())
			e.Deep = append(e.Deep, r.Float32())
			e.Embd[2*i], e.Embd[2*i+1] = float32(v), float32(i)
		}
		out[v] = e
	}
	return out
}

func TestSelectTokens(t *testing.T) {
	p := plan(t, 500, 375)
	views := fakeViews(5, 24, 7)

	t.Run("llama.cpp layout: HiPrune on each whole view with N'/5, as the authors", func(t *testing.T) {
		l := newTokenLayout(p, 24, 24, bridge.MergeFlat, true)
		kept, err := l.selectTokens(views, Options{}, 320)
		require.NoError(t, err)
		require.Len(t, kept, 320)
		for v := 0; v < 5; v++ {
			want, err := hiprune.Select(views[v].Object, views[v].Deep, 24, 24, hiprune.Config{Budget: 64, Alpha: hiprune.DefaultAlpha})
			require.NoError(t, err)
			var got []int
			for _, i := range kept {
				if i/576 == v {
					got = append(got, i%576)
				}
			}
			assert.Equal(t, want, got, "view %d", v)
		}
	})
	t.Run("unpad layout: newlines kept and counted, crop respected", func(t *testing.T) {
		l := newTokenLayout(p, 24, 24, bridge.MergeSpatialUnpad, false)
		for _, m := range []Method{MethodHiPrune, MethodUniform, MethodRandom} {
			kept, err := l.selectTokens(views, Options{Method: m}, 320)
			require.NoError(t, err)
			require.Len(t, kept, 320, m)
			nl := 0
			perView := make([]int, 5)
			for j, i := range kept {
				if j > 0 {
					require.Greater(t, i, kept[j-1])
				}
				if e := l.entries[i]; e.view < 0 {
					nl++
				} else {
					perView[e.view]++
				}
			}
			assert.Equal(t, 36, nl, "every row's newline")
			// 284 patches over 576 + 4 x 432 tokens
			assert.Equal(t, []int{71, 54, 53, 53, 53}, perView, m)
			rows := l.rows(views, []float32{-1, -1}, kept, 2)
			for j, i := range kept {
				e := l.entries[i]
				if e.view < 0 {
					assert.Equal(t, []float32{-1, -1}, rows[2*j:2*j+2])
				} else {
					assert.Equal(t, []float32{float32(e.view), float32(e.tok)}, rows[2*j:2*j+2])
				}
			}
		}
		_, err := l.selectTokens(views, Options{Keep: 30}, 30)
		require.ErrorIs(t, err, ErrOptions)
		assert.Contains(t, err.Error(), "keep at least 37")
		all, err := l.selectTokens(views, Options{Method: MethodNone}, len(l.entries))
		require.NoError(t, err)
		assert.Len(t, all, len(l.entries))
	})
	t.Run("mask: base view and the tiles as one grid", func(t *testing.T) {
		l := newTokenLayout(p, 24, 24, bridge.MergeSpatialUnpad, false)
		// the first base token, the first token of row 6 of the top-right
		// tile, and a newline
		kept := []int{0, 576 + 24, 576 + 48}
		mv := l.maskViews(kept)
		require.Len(t, mv, 2)
		assert.Equal(t, []int{0}, mv[0].Kept)
		assert.Equal(t, 24, mv[0].GridW)
		assert.Equal(t, []int{6*48 + 24}, mv[1].Kept)
		assert.Equal(t, 48, mv[1].GridW)
		assert.Equal(t, 14, mv[1].Patch)
		m, err := imageprep.DrawMasks(imageprep.NewRGB(500, 375), mv)
		require.NoError(t, err)
		assert.Equal(t, image.Rect(0, 0, 2*500+imageprep.MaskGap, 375), m.Bounds())
	})
}
