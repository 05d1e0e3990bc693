package imageprep

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// 1792x896: scale 0.5 -> 896x448 at y = (896-448)/2 = 224; rows 0..223
// and 672..895 are black, which normalises to exactly -1 with mean and std
// 0.5.
func TestPreprocessGemma3PadsBlack(t *testing.T) {
	p := Gemma3Params
	col := [3]uint8{250, 5, 60}
	f, err := PreprocessGemma3(uniform(1792, 896, col), p)
	require.NoError(t, err)
	require.Equal(t, [2]int{896, 896}, [2]int{f.W, f.H})
	img := normPx(col, p)
	for y := 0; y < 896; y += 7 {
		want := [3]float32{-1, -1, -1}
		if y >= 224 && y < 672 {
			want = img
		}
		for x := 0; x < 896; x += 5 {
			require.Equal(t, want, fpx(f, x, y), "(%d,%d)", x, y)
		}
	}
	assert.Equal(t, [3]float32{-1, -1, -1}, fpx(f, 0, 223))
	assert.Equal(t, img, fpx(f, 895, 224))
	assert.Equal(t, img, fpx(f, 0, 671))
	assert.Equal(t, [3]float32{-1, -1, -1}, fpx(f, 0, 672))
}

// Inside the picture Gemma 3's letterbox is LLaVA's (same fit, filter and
// offset); only the canvas differs. A model-size image is copied.
func TestPreprocessGemma3IsLetterboxOnBlack(t *testing.T) {
	p := Gemma3Params
	src := NewRGB(301, 517)
	for i := range src.Pix {
		src.Pix[i] = uint8(i*31 + i/7)
	}
	got, err := PreprocessGemma3(src, p)
	require.NoError(t, err)
	lb, err := Letterbox(src, p.ImageSize)
	require.NoError(t, err)
	l := Geometry(src.W, src.H, p)
	require.False(t, l.Content.Empty())
	for y := 0; y < 896; y++ {
		for x := 0; x < 896; x++ {
			r, g, b := lb.At(x, y)
			want := normPx([3]uint8{r, g, b}, p)
			if !(x >= l.Content.Min.X && x < l.Content.Max.X && y >= l.Content.Min.Y && y < l.Content.Max.Y) {
				want = normPx(Gemma3PadColor, p)
			}
			require.Equal(t, want, fpx(got, x, y), "(%d,%d)", x, y)
		}
	}

	same := NewRGB(896, 896)
	for i := range same.Pix {
		same.Pix[i] = uint8(i * 13)
	}
	f, err := PreprocessGemma3(same, p)
	require.NoError(t, err)
	for i, v := range same.Pix {
		require.Equal(t, norm(v, i%3, p), f.Pix[i])
	}
}

func TestPreprocessGemma3Errors(t *testing.T) {
	_, err := PreprocessGemma3(uniform(4, 4, [3]uint8{}), Params{ImageSize: 0, Std: [3]float32{1, 1, 1}})
	assert.ErrorIs(t, err, ErrParams)
	_, err = PreprocessGemma3(&RGB{W: 2, H: 2, Pix: make([]uint8, 5)}, Gemma3Params)
	assert.ErrorIs(t, err, ErrParams)
	assert.ErrorContains(t, err, "has 5 bytes, want 12")
	_, err = PreprocessGemma3(&RGB{}, Gemma3Params)
	assert.ErrorIs(t, err, ErrEmpty)
}
