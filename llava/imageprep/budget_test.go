package imageprep

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// smooth is a w x h test picture of the given colour model: gradients with
// a little texture, so every channel and the bit depth are exercised and
// encoding stays fast.
func smooth(w, h int, model color.Model) image.Image {
	var m draw2
	switch model {
	case color.GrayModel:
		m = image.NewGray(image.Rect(0, 0, w, h))
	case color.Gray16Model:
		m = image.NewGray16(image.Rect(0, 0, w, h))
	case color.NRGBAModel:
		m = image.NewNRGBA(image.Rect(0, 0, w, h))
	case color.RGBA64Model:
		m = image.NewRGBA64(image.Rect(0, 0, w, h))
	case color.NRGBA64Model:
		m = image.NewNRGBA64(image.Rect(0, 0, w, h))
	case nil:
		m = image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9[:16])
	default:
		m = image.NewRGBA(image.Rect(0, 0, w, h))
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint16((x*65535)/w) ^ uint16((x*y)&0x3f)
			m.Set(x, y, color.NRGBA64{R: v, G: uint16((y * 65535) / h), B: uint16(((x + y) * 30000) / (w + h)), A: 0xc000})
		}
	}
	return m
}

type draw2 interface {
	image.Image
	Set(x, y int, c color.Color)
}

// interlacedPNG writes m (8-bit RGBA) as an Adam7-interlaced PNG, which
// image/png cannot write: every pass's rows with filter 0.
func interlacedPNG(t testing.TB, m *image.NRGBA) []byte {
	t.Helper()
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	passes := [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}
	var raw bytes.Buffer
	for _, p := range passes {
		for y := p[1]; y < h; y += p[3] {
			if p[0] >= w {
				break
			}
			raw.WriteByte(0)
			for x := p[0]; x < w; x += p[2] {
				i := m.PixOffset(x, y)
				raw.Write(m.Pix[i : i+4])
			}
		}
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := io.Copy(zw, &raw)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		body := append([]byte(typ), data...)
		out.Write(body)
		binary.Write(&out, binary.BigEndian, crc32.ChecksumIEEE(body))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	chunk("IHDR", append(ihdr, 8, 6, 0, 0, 1))
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

// losslessWebP is a w x h lossless WebP: white or black after a checker
// of 3-pixel cells, alpha opaque.
func losslessWebP(w, h int) []byte {
	return testmodel.EncodeWebPLossless(w, h, func(x, y int) (r, g, b, a bool) {
		v := (x/3+y/3)&1 == 1
		return v, v, v, true
	})
}

// allocated is what f allocates on the heap, in bytes: an upper bound of
// how much the heap grows while f runs.
func allocated(f func()) int64 {
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return int64(b.TotalAlloc - a.TotalAlloc)
}

func TestDecodeCostBoundsAllocations(t *testing.T) {
	const w, h = 1536, 1024 // big enough that per-pixel terms dominate the slack
	gifData := func() []byte {
		var b bytes.Buffer
		require.NoError(t, gif.Encode(&b, smooth(w, h, nil), nil))
		return b.Bytes()
	}
	cases := []struct {
		name string
		data func() []byte
	}{
		{"png gray8", func() []byte { return encodePNG(t, smooth(w, h, color.GrayModel)) }},
		{"png gray16", func() []byte { return encodePNG(t, smooth(w, h, color.Gray16Model)) }},
		{"png rgb8", func() []byte { return encodePNG(t, smooth(w, h, color.RGBAModel).(*image.RGBA)) }},
		{"png rgba8", func() []byte { return encodePNG(t, smooth(w, h, color.NRGBAModel)) }},
		{"png rgb16", func() []byte { return encodePNG(t, smooth(w, h, color.RGBA64Model)) }},
		{"png rgba16", func() []byte { return encodePNG(t, smooth(w, h, color.NRGBA64Model)) }},
		{"png paletted", func() []byte { return encodePNG(t, smooth(w, h, nil)) }},
		{"png interlaced", func() []byte { return interlacedPNG(t, smooth(w, h, color.NRGBAModel).(*image.NRGBA)) }},
		{"jpeg 4:2:0", func() []byte { return encodeJPEG(t, smooth(w, h, color.RGBAModel), 90) }},
		{"jpeg gray", func() []byte { return encodeJPEG(t, smooth(w, h, color.GrayModel), 90) }},
		{"gif", gifData},
		{"webp lossless", func() []byte { return losslessWebP(w, h) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.data()
			kind := sniff(data[:32])
			var rec bytes.Buffer
			cfg, err := decodeConfig(kind, io.TeeReader(bytes.NewReader(data), &rec))
			require.NoError(t, err)
			cost := decodeCost(kind, cfg, rec.Bytes())
			var derr error
			got := allocated(func() { _, derr = Decode(bytes.NewReader(data), DefaultLimits) })
			require.NoError(t, derr)
			t.Logf("%s: allocated %.1f MB, bound %.1f MB", c.name, float64(got)/1e6, float64(cost)/1e6)
			assert.LessOrEqual(t, got, cost, "the bound must cover what Decode allocates")
			// ... and not refuse images far below the budget. The header
			// cannot tell whether a tRNS chunk follows (it makes 8-bit grey
			// NRGBA and 16-bit grey NRGBA64), so grey PNGs are counted
			// at up to 2.5x.
			assert.LessOrEqual(t, cost, 5*got/2+decodeSlack, "bound too loose")
		})
	}
}

// pngHeader16 is a PNG signature and IHDR for a 16-bit RGBA image, no data.
func pngHeader16(w, h int) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := []byte("IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, 6, 0, 0, 0)
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

func TestDecodeMemoryBudgetRefusesFromHeader(t *testing.T) {
	// 7000 x 7000 is under the pixel limit; at 16 bits RGBA Go's decoder
	// alone would hold 392 MB. Refused from the header, before any pixel.
	_, err := Decode(bytes.NewReader(pngHeader16(7000, 7000)), DefaultLimits)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.NotErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "7000 x 7000")
	assert.Contains(t, err.Error(), "memory budget")
	assert.Contains(t, err.Error(), "384 MiB")

	// The same size at 8 bits fits the budget: it gets to the (missing)
	// pixel data.
	_, err = Decode(bytes.NewReader(pngHeader(7000, 7000)), DefaultLimits)
	assert.ErrorIs(t, err, ErrCorrupt)

	// A budget of its own.
	data := encodePNG(t, noise(64, 64, 3))
	_, err = Decode(bytes.NewReader(data), Limits{MaxDecodeBytes: 1 << 20})
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = Decode(bytes.NewReader(data), Limits{MaxDecodeBytes: 2 << 20})
	assert.NoError(t, err)
}

func TestJPEGMarkers(t *testing.T) {
	data := encodeJPEG(t, smooth(40, 24, color.RGBAModel), 90)
	sof, _, _, _ := jpegMarkers(data)
	require.NotNil(t, sof)
	assert.Equal(t, byte(0xc0), sof[0], "Go writes baseline JPEG")
	assert.Equal(t, byte(3), sof[6], "three components")
	// Truncated headers give the worst case, never a panic.
	for n := 0; n < len(data) && n < 400; n += 7 {
		_ = jpegCost(image.Config{Width: 40, Height: 24}, data[:n])
	}
	assert.Equal(t, int64(24*40*24), jpegCost(image.Config{Width: 40, Height: 24}, data[:3]))
}
