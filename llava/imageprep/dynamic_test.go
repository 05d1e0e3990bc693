package imageprep

import (
	"image"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func qwenParams() DynamicParams {
	lo, hi := QwenPixelLimits(14, 2, QwenMinTokens, QwenMaxTokens)
	return DynamicParams{PatchSize: 14, Merge: 2, MinPixels: lo, MaxPixels: hi, Mean: LLaVA15Params.Mean, Std: LLaVA15Params.Std}
}

// Sizes worked out by hand from the smart-resize rule (see dynamic.go).
func TestSmartResize(t *testing.T) {
	p := qwenParams()
	assert.Equal(t, 6272, p.MinPixels, "8 tokens of 28x28")
	assert.Equal(t, 3211264, p.MaxPixels, "4096 tokens of 28x28")
	for _, tc := range []struct {
		w, h int
		want Size
	}{
		{300, 200, Size{308, 196}},     // 10.71 -> 11, 7.14 -> 7 groups
		{560, 560, Size{560, 560}},     // already aligned
		{14, 14, Size{84, 84}},         // 28x28 < min: beta = sqrt(6272/196) = 5.66, ceil(2.83) = 3 groups
		{1, 1, Size{84, 84}},           // beta = 79.2: ceil(79.2/28) = 3 groups
		{4000, 3000, Size{2044, 1540}}, // 4004x2996 > max: beta = 1.933, floor(73.9) = 73, floor(55.4) = 55
		{1000, 10, Size{1008, 28}},     // a side rounds to 0 groups: at least one
		{42, 100, Size{56, 112}},       // 1.5 rounds half away from zero to 2
	} {
		got, err := SmartResize(tc.w, tc.h, p)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%dx%d", tc.w, tc.h)
		assert.Zero(t, got.W%28)
		assert.Zero(t, got.H%28)
	}
}

func TestPreprocessDynamic(t *testing.T) {
	p := qwenParams()
	// An aligned image is copied, then normalised.
	m := NewRGB(56, 28)
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 7)
	}
	f, err := PreprocessDynamic(m, p)
	require.NoError(t, err)
	require.Equal(t, [2]int{112, 56}, [2]int{f.W, f.H}, "56x28 is 2 tokens, below 8: beta = 2")
	m = NewRGB(112, 84)
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 7)
	}
	f, err = PreprocessDynamic(m, p)
	require.NoError(t, err)
	require.Equal(t, [2]int{112, 84}, [2]int{f.W, f.H})
	for i, v := range m.Pix {
		c := i % 3
		require.Equal(t, (float32(v)/255-p.Mean[c])/p.Std[c], f.Pix[i])
	}
	// Otherwise the bilinear stretch (no padding) to the smart size.
	u := NewRGB(300, 200)
	for i := range u.Pix {
		u.Pix[i] = 90
	}
	f, err = PreprocessDynamic(u, p)
	require.NoError(t, err)
	require.Equal(t, [2]int{308, 196}, [2]int{f.W, f.H})
	want := (float32(90)/255 - p.Mean[1]) / p.Std[1]
	for i := 1; i < len(f.Pix); i += 3 {
		require.Equal(t, want, f.Pix[i], "a uniform image has no padding colour")
	}
}

func TestDynamicParamsErrors(t *testing.T) {
	good := qwenParams()
	for _, mut := range []func(*DynamicParams){
		func(p *DynamicParams) { p.PatchSize = 0 },
		func(p *DynamicParams) { p.Merge = 0 },
		func(p *DynamicParams) { p.MinPixels = 0 },
		func(p *DynamicParams) { p.MaxPixels = p.MinPixels - 1 },
		func(p *DynamicParams) { p.Std[2] = 0 },
	} {
		p := good
		mut(&p)
		_, err := SmartResize(10, 10, p)
		assert.ErrorIs(t, err, ErrParams)
		_, err = PreprocessDynamic(NewRGB(10, 10), p)
		assert.ErrorIs(t, err, ErrParams)
	}
	_, err := SmartResize(0, 10, good)
	assert.ErrorIs(t, err, ErrEmpty)
	_, err = SmartResize(1<<16, 1<<16, good)
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = PreprocessDynamic(&RGB{W: 2, H: 2, Pix: make([]uint8, 5)}, good)
	assert.ErrorIs(t, err, ErrParams)
}

// The mask of a dynamic image covers the whole image (no padding): a
// 300x200 image is 308x196 after the smart resize, 11x7 tokens of 28 px,
// each about 27.3 x 28.6 source pixels.
func TestDynamicMaskView(t *testing.T) {
	p := qwenParams()
	img := NewRGB(300, 200)
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	v, err := DynamicMaskView(300, 200, p, []int{0, 76})
	require.NoError(t, err)
	assert.Equal(t, [3]int{11, 7, 28}, [3]int{v.GridW, v.GridH, v.Patch})
	m, err := DrawMasks(img, []MaskView{v})
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 300, 200), m.Bounds())
	at := func(x, y int) uint8 { return m.Pix[m.PixOffset(x, y)] }
	assert.Equal(t, uint8(200), at(10, 10), "inside kept token 0")
	assert.Equal(t, uint8(200), at(290, 190), "inside kept token 76, the last")
	assert.Equal(t, dim(200), at(150, 100), "a pruned token")
	assert.Equal(t, OutlineColor[0], at(0, 0), "token 0's outline")
	// token 0 spans source x < 308/11 * 300/308 = 27.27: pixel 27 is in token 1
	assert.Equal(t, OutlineColor[0], at(26, 10))
	assert.Equal(t, dim(200), at(28, 10))
	_, err = DynamicMaskView(300, 200, p, []int{77})
	require.NoError(t, err, "indices are checked when drawing")
	_, err = DrawMasks(img, []MaskView{{Layout: v.Layout, GridW: 11, GridH: 7, Patch: 28, Kept: []int{77}}})
	assert.ErrorIs(t, err, ErrParams)
	_, err = DynamicMaskView(0, 200, p, nil)
	assert.ErrorIs(t, err, ErrEmpty)
}
