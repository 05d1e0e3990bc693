package imageprep

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/testmodel"
)

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, m))
	return b.Bytes()
}

func encodeJPEG(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, m, &jpeg.Options{Quality: q}))
	return b.Bytes()
}

func decodeBytes(t testing.TB, data []byte) *RGB {
	t.Helper()
	img, err := Decode(bytes.NewReader(data), DefaultLimits)
	require.NoError(t, err)
	return img
}

func px(m *RGB, x, y int) [3]uint8 {
	r, g, b := m.At(x, y)
	return [3]uint8{r, g, b}
}

// noise returns an opaque w x h image of random colours.
func noise(w, h int, seed int64) *image.RGBA {
	r := rand.New(rand.NewSource(seed))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	r.Read(m.Pix)
	for i := 3; i < len(m.Pix); i += 4 {
		m.Pix[i] = 0xff
	}
	return m
}

func TestDecodePNGDropsAlphaWithoutCompositing(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	m.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 0}) // fully transparent: colour kept, like stb's 3-channel load
	m.SetNRGBA(1, 0, color.NRGBA{200, 100, 50, 128})
	m.SetNRGBA(0, 1, color.NRGBA{1, 2, 3, 255})
	m.SetNRGBA(1, 1, color.NRGBA{255, 255, 255, 1})
	got := decodeBytes(t, encodePNG(t, m))
	assert.Equal(t, 2, got.W)
	assert.Equal(t, 2, got.H)
	assert.Equal(t, []uint8{10, 20, 30, 200, 100, 50, 1, 2, 3, 255, 255, 255}, got.Pix)
}

func TestDecodePNG16BitKeepsHighByte(t *testing.T) {
	m := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	m.SetNRGBA64(0, 0, color.NRGBA64{0x12ff, 0xabcd, 0xff00, 0x0001})
	got := decodeBytes(t, encodePNG(t, m))
	assert.Equal(t, []uint8{0x12, 0xab, 0xff}, got.Pix)

	g := image.NewGray16(image.Rect(0, 0, 1, 1))
	g.SetGray16(0, 0, color.Gray16{0x80ff})
	assert.Equal(t, []uint8{0x80, 0x80, 0x80}, decodeBytes(t, encodePNG(t, g)).Pix)
}

func TestDecodePNGPalettedAndGray(t *testing.T) {
	pal := color.Palette{color.NRGBA{50, 60, 70, 0}, color.RGBA{1, 2, 3, 255}}
	pm := image.NewPaletted(image.Rect(0, 0, 2, 1), pal)
	pm.Pix = []uint8{0, 1}
	assert.Equal(t, []uint8{50, 60, 70, 1, 2, 3}, decodeBytes(t, encodePNG(t, pm)).Pix)

	g := image.NewGray(image.Rect(0, 0, 2, 1))
	g.Pix = []uint8{7, 250}
	assert.Equal(t, []uint8{7, 7, 7, 250, 250, 250}, decodeBytes(t, encodePNG(t, g)).Pix)
}

func TestDecodeJPEG(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 16, 8))
	for i := 0; i < len(m.Pix); i += 4 {
		copy(m.Pix[i:], []uint8{200, 100, 50, 255})
	}
	got := decodeBytes(t, encodeJPEG(t, m, 100))
	require.Equal(t, 16, got.W)
	require.Equal(t, 8, got.H)
	for i, v := range got.Pix {
		want := []int{200, 100, 50}[i%3]
		assert.InDelta(t, want, int(v), 3, "byte %d", i)
	}

	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range gray.Pix {
		gray.Pix[i] = 77
	}
	gg := decodeBytes(t, encodeJPEG(t, gray, 100))
	for i := 0; i < len(gg.Pix); i += 3 {
		assert.Equal(t, gg.Pix[i], gg.Pix[i+1])
		assert.Equal(t, gg.Pix[i], gg.Pix[i+2])
		assert.InDelta(t, 77, int(gg.Pix[i]), 1)
	}
}

// stb's fixed-point YCbCr->RGB, checked by hand:
// R = (Y<<20 + 1<<19 + (Cr-128)*(5743<<8)) >> 20, B likewise with 7258<<8,
// G = (Y<<20 + 1<<19 - (Cr-128)*(2925<<8) + ((-(Cb-128)*(1410<<8)) & 0xffff0000)) >> 20.
func TestStbYCbCrToRGB(t *testing.T) {
	cases := []struct{ y, cb, cr, r, g, b uint8 }{
		{128, 128, 128, 128, 128, 128},
		{255, 128, 128, 255, 255, 255},
		{0, 128, 128, 0, 0, 0},
		{128, 100, 128, 128, 138, 78},
		{128, 125, 128, 128, 129, 123},
		{128, 175, 128, 128, 112, 211},
		{128, 200, 128, 128, 103, 255}, // B = 256.08, clamped
	}
	for _, c := range cases {
		r, g, b := stbYCbCrToRGB(c.y, c.cb, c.cr)
		assert.Equal(t, [3]uint8{c.r, c.g, c.b}, [3]uint8{r, g, b}, "Y=%d Cb=%d Cr=%d", c.y, c.cb, c.cr)
	}
	// Over all inputs it stays within 1 of the JFIF formula.
	for y := 0; y < 256; y += 5 {
		for cb := 0; cb < 256; cb += 3 {
			for cr := 0; cr < 256; cr += 3 {
				r, _, b := stbYCbCrToRGB(uint8(y), uint8(cb), uint8(cr))
				wr := min(max(float64(y)+1.402*float64(cr-128), 0), 255)
				wb := min(max(float64(y)+1.772*float64(cb-128), 0), 255)
				require.InDelta(t, wr, float64(r), 1.01)
				require.InDelta(t, wb, float64(b), 1.01)
			}
		}
	}
}

// Chroma upsampling like stb_image: one chroma row [100, 200] under 4 luma
// columns. 4:2:0 uses the triangular hv_2 filter:
// t = 4*c = [400, 800]; out = [(400+2)>>2, (3*400+800+8)>>4, (3*800+400+8)>>4, (800+2)>>2]
// = [100, 125, 175, 200]. 4:2:2 uses h_2: [100, (300+200+2)>>2, same, 200]
// = [100, 125, 125, 200]. 4:4:4 is untouched.
func TestJPEGChromaUpsamplingLikeStb(t *testing.T) {
	blueOf := map[uint8]uint8{100: 78, 125: 123, 175: 211, 200: 255} // from TestStbYCbCrToRGB
	for _, tc := range []struct {
		ratio image.YCbCrSubsampleRatio
		h     int
		cb    []uint8
	}{
		{image.YCbCrSubsampleRatio420, 2, []uint8{100, 125, 175, 200}},
		{image.YCbCrSubsampleRatio422, 2, []uint8{100, 125, 125, 200}},
	} {
		m := image.NewYCbCr(image.Rect(0, 0, 4, tc.h), tc.ratio)
		for i := range m.Y {
			m.Y[i] = 128
		}
		for i := range m.Cr {
			m.Cr[i] = 128
		}
		for row := 0; row*m.CStride < len(m.Cb); row++ {
			m.Cb[row*m.CStride] = 100
			m.Cb[row*m.CStride+1] = 200
		}
		got := jpegToRGB(m)
		for y := 0; y < tc.h; y++ {
			for x := 0; x < 4; x++ {
				assert.Equal(t, blueOf[tc.cb[x]], px(got, x, y)[2], "ratio %v (%d,%d)", tc.ratio, x, y)
			}
		}
	}
	// Vertical 4:2:0 filter: chroma rows 0 and 1 with Cb 100 and 200 under 4
	// luma rows give rows weighted 1, 3/4:1/4, 1/4:3/4, 1 -> Cb 100,125,175,200.
	m := image.NewYCbCr(image.Rect(0, 0, 2, 4), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = 128
	}
	for i := range m.Cr {
		m.Cr[i] = 128
	}
	m.Cb[0], m.Cb[m.CStride] = 100, 200
	got := jpegToRGB(m)
	for y, want := range []uint8{78, 123, 211, 255} {
		assert.Equal(t, want, px(got, 0, y)[2], "row %d", y)
		assert.Equal(t, want, px(got, 1, y)[2], "row %d", y)
	}
}

func TestDecodeGIFFirstFrameAndBackground(t *testing.T) {
	pal := color.Palette{
		color.RGBA{0, 0, 0, 255},
		color.RGBA{10, 20, 200, 255}, // background index 1
		color.RGBA{255, 0, 0, 255},
		color.RGBA{0, 0, 0, 0}, // transparent
		color.RGBA{0, 250, 7, 255},
	}
	first := image.NewPaletted(image.Rect(1, 1, 3, 2), pal) // 2x1 frame inside a 4x3 screen
	first.Pix = []uint8{2, 3}
	second := image.NewPaletted(image.Rect(0, 0, 4, 3), pal)
	for i := range second.Pix {
		second.Pix[i] = 4
	}
	enc := func(bg byte) []byte {
		var b bytes.Buffer
		require.NoError(t, gif.EncodeAll(&b, &gif.GIF{
			Image: []*image.Paletted{first, second}, Delay: []int{10, 10}, BackgroundIndex: bg,
			Config: image.Config{ColorModel: pal, Width: 4, Height: 3},
		}))
		return b.Bytes()
	}

	got := decodeBytes(t, enc(1))
	require.Equal(t, 4, got.W)
	require.Equal(t, 3, got.H)
	assert.Equal(t, [3]uint8{255, 0, 0}, px(got, 1, 1), "first frame, not the second")
	assert.Equal(t, [3]uint8{0, 0, 0}, px(got, 2, 1), "transparent pixel stays black as in stb")
	// Outside the first frame stb copies its BGR-ordered palette entry:
	// (10, 20, 200) comes out as (200, 20, 10).
	for _, p := range []image.Point{{0, 0}, {3, 0}, {0, 1}, {3, 1}, {0, 2}, {3, 2}} {
		assert.Equal(t, [3]uint8{200, 20, 10}, px(got, p.X, p.Y), "%v", p)
	}

	got = decodeBytes(t, enc(0)) // background index 0: stb leaves black
	assert.Equal(t, [3]uint8{0, 0, 0}, px(got, 0, 0))
	assert.Equal(t, [3]uint8{255, 0, 0}, px(got, 1, 1))
}

// tinyWebP is a 2x2 lossless WebP of the given pixels (each channel 0 or 255).
func tinyWebP(pixels [4][4]uint8) []byte { // pixels[i] = {R, G, B, A}, row-major
	return testmodel.EncodeWebPLossless(2, 2, func(x, y int) (r, g, b, a bool) {
		p := pixels[2*y+x]
		return p[0] == 255, p[1] == 255, p[2] == 255, p[3] == 255
	})
}

func TestDecodeWebPLossless(t *testing.T) {
	data := tinyWebP([4][4]uint8{
		{255, 0, 0, 255},
		{0, 255, 0, 255},
		{0, 0, 255, 0}, // transparent blue: colour kept, alpha dropped
		{255, 255, 255, 255},
	})
	got := decodeBytes(t, data)
	require.Equal(t, 2, got.W)
	require.Equal(t, 2, got.H)
	assert.Equal(t, []uint8{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255}, got.Pix)
}

func TestDecodeFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.png")
	require.NoError(t, os.WriteFile(p, encodePNG(t, noise(5, 4, 1)), 0o644))
	img, err := DecodeFile(p, Limits{})
	require.NoError(t, err)
	assert.Equal(t, 5, img.W)
	assert.Equal(t, 4, img.H)

	missing := filepath.Join(dir, "nope.jpg")
	_, err = DecodeFile(missing, DefaultLimits)
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), missing)

	bad := filepath.Join(dir, "notes.png")
	require.NoError(t, os.WriteFile(bad, []byte("hello, this is not a picture\n"), 0o644))
	_, err = DecodeFile(bad, DefaultLimits)
	assert.ErrorIs(t, err, ErrFormat)
	assert.Contains(t, err.Error(), bad)
	assert.Contains(t, err.Error(), "text")
}

func TestDecodeNotAnImage(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		msg  string
	}{
		{nil, "empty input"},
		{[]byte("just some words"), "text"},
		{[]byte("<svg xmlns='http://www.w3.org/2000/svg'/>"), "SVG"},
		{[]byte("BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00"), "BMP"},
		{[]byte{0x00, 0x01, 0xfe, 0x9c, 0x80, 0x81}, "00 01 fe 9c"},
		{[]byte("RIFF\x00\x00\x00\x00WAVEfmt "), "not WebP"},
	} {
		_, err := Decode(bytes.NewReader(tc.data), DefaultLimits)
		require.Error(t, err, "%q", tc.data)
		assert.ErrorIs(t, err, ErrFormat, "%q", tc.data)
		assert.Contains(t, err.Error(), tc.msg)
	}
}

func TestDecodeTruncated(t *testing.T) {
	for name, data := range map[string][]byte{
		"png":  encodePNG(t, noise(64, 64, 2)),
		"jpeg": encodeJPEG(t, noise(64, 64, 3), 90),
		"gif": func() []byte {
			var b bytes.Buffer
			require.NoError(t, gif.Encode(&b, noise(64, 64, 4), nil))
			return b.Bytes()
		}(),
	} {
		for _, keep := range []int{len(data) / 2, len(data) - 3} {
			var got *RGB
			var err error
			assert.NotPanics(t, func() { got, err = Decode(bytes.NewReader(data[:keep]), DefaultLimits) }, name)
			require.Error(t, err, "%s cut to %d of %d bytes", name, keep, len(data))
			assert.Nil(t, got)
			assert.ErrorIs(t, err, ErrCorrupt, "%s: %v", name, err)
		}
		// Cut inside the header: a format error, still no panic.
		_, err := Decode(bytes.NewReader(data[:10]), DefaultLimits)
		assert.ErrorIs(t, err, ErrFormat, "%s: %v", name, err)
	}
}

// A JPEG that lacks only its final EOI marker (FF D9) is refused, as
// stb_image 2.27 refuses it ("expected marker").
func TestDecodeJPEGMissingEOI(t *testing.T) {
	data := encodeJPEG(t, noise(40, 24, 7), 90)
	require.Equal(t, []byte{0xff, 0xd9}, data[len(data)-2:])
	_, err := Decode(bytes.NewReader(data[:len(data)-2]), DefaultLimits)
	assert.ErrorIs(t, err, ErrCorrupt)
}

// pngHeader returns a PNG signature and a valid IHDR chunk for a w x h RGB
// image, and nothing else.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 4, 17)
	copy(ihdr, "IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit, truecolour
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

func TestDecodeTooManyPixelsRefusedFromHeader(t *testing.T) {
	// The header claims 10000 x 10000 and no pixel data follows: if Decode
	// tried to decode pixels it would report truncation, not ErrTooLarge.
	_, err := Decode(bytes.NewReader(pngHeader(10000, 10000)), DefaultLimits)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.NotErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "10000 x 10000")
	assert.Contains(t, err.Error(), "50000000")

	// A custom limit, on a real image.
	_, err = Decode(bytes.NewReader(encodePNG(t, noise(20, 10, 5))), Limits{MaxPixels: 199})
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "20 x 10")
	_, err = Decode(bytes.NewReader(encodePNG(t, noise(20, 10, 5))), Limits{MaxPixels: 200})
	assert.NoError(t, err)
}

func TestDecodeMaxBytes(t *testing.T) {
	data := encodePNG(t, noise(32, 32, 6))
	_, err := Decode(bytes.NewReader(data), Limits{MaxBytes: int64(len(data)) - 1})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "bytes")

	_, err = Decode(bytes.NewReader(data), Limits{MaxBytes: 16}) // over the limit while sniffing
	assert.ErrorIs(t, err, ErrTooLarge)

	_, err = Decode(bytes.NewReader(data), Limits{MaxBytes: int64(len(data))})
	assert.NoError(t, err)
}

func TestDecodeZeroSize(t *testing.T) {
	_, err := Decode(bytes.NewReader(pngHeader(0, 5)), DefaultLimits)
	assert.ErrorIs(t, err, ErrEmpty)
	assert.Contains(t, err.Error(), "0 x 5")

	// GIF whose logical screen is 0 x 0.
	g := []byte("GIF89a\x00\x00\x00\x00\x00\x00\x00\x3b")
	_, err = Decode(bytes.NewReader(g), DefaultLimits)
	assert.ErrorIs(t, err, ErrEmpty)
	assert.True(t, strings.Contains(err.Error(), "0 x 0"), err.Error())
}

func TestFromImage(t *testing.T) {
	m := image.NewNRGBA(image.Rect(3, 4, 5, 5)) // non-zero origin
	m.SetNRGBA(3, 4, color.NRGBA{1, 2, 3, 0})
	m.SetNRGBA(4, 4, color.NRGBA{4, 5, 6, 255})
	got, err := FromImage(m)
	require.NoError(t, err)
	assert.Equal(t, &RGB{W: 2, H: 1, Pix: []uint8{1, 2, 3, 4, 5, 6}}, got)

	_, err = FromImage(image.NewRGBA(image.Rect(0, 0, 0, 3)))
	assert.ErrorIs(t, err, ErrEmpty)
	_, err = FromImage(nil)
	assert.ErrorIs(t, err, ErrParams)

	back := got.ToImage()
	assert.Equal(t, color.RGBA{4, 5, 6, 255}, back.RGBAAt(1, 0))
}
