package imageprep

import (
	"fmt"
	"image"
	"image/color"
)

// FromImage converts any image.Image to RGB the way stb_image's 3-channel
// output would: alpha is dropped (non-premultiplied colour kept), 16-bit
// samples are reduced with v>>8, grey is replicated. YCbCr images use Go's
// conversion; Decode uses stb's JPEG conversion instead (see package doc).
func FromImage(img image.Image) (*RGB, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrParams)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("%w: %d x %d", ErrEmpty, b.Dx(), b.Dy())
	}
	return toRGB(img), nil
}

func toRGB(img image.Image) *RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := NewRGB(w, h)
	o := 0
	switch m := img.(type) {
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = row[4*x], row[4*x+1], row[4*x+2]
				o += 3
			}
		}
	case *image.NRGBA64:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				// big-endian 16-bit samples: the high byte is v>>8
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = row[8*x], row[8*x+2], row[8*x+4]
				o += 3
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				v := row[x]
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = v, v, v
				o += 3
			}
		}
	case *image.Gray16:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				v := row[2*x]
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = v, v, v
				o += 3
			}
		}
	case *image.Paletted:
		lut := make([][3]uint8, 256)
		for i, c := range m.Palette {
			if i < 256 {
				lut[i] = colorToRGB(c)
			}
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				c := lut[row[x]]
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = c[0], c[1], c[2]
				o += 3
			}
		}
	case *image.YCbCr:
		ycbcrGo(out, m)
	case *image.NYCbCrA:
		ycbcrGo(out, &m.YCbCr)
	case *image.CMYK:
		// Go stores Adobe CMYK (and YCCK) JPEGs as 255-raw; stb computes
		// blinn_8x8(raw, rawK) per channel.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				k := 255 - row[4*x+3]
				out.Pix[o] = blinn8x8(255-row[4*x], k)
				out.Pix[o+1] = blinn8x8(255-row[4*x+1], k)
				out.Pix[o+2] = blinn8x8(255-row[4*x+2], k)
				o += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := colorToRGB(img.At(x, y))
				out.Pix[o], out.Pix[o+1], out.Pix[o+2] = c[0], c[1], c[2]
				o += 3
			}
		}
	}
	return out
}

// colorToRGB returns the non-premultiplied 8-bit RGB of c, alpha dropped.
func colorToRGB(c color.Color) [3]uint8 {
	switch c := c.(type) {
	case color.NRGBA:
		return [3]uint8{c.R, c.G, c.B}
	case color.NRGBA64:
		return [3]uint8{uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)}
	case color.Gray:
		return [3]uint8{c.Y, c.Y, c.Y}
	case color.YCbCr:
		r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
		return [3]uint8{r, g, b}
	}
	n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
	return [3]uint8{uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)}
}

// stb_image's "fast 0..255 * 0..255 => 0..255 rounded multiplication".
func blinn8x8(x, y uint8) uint8 {
	t := uint32(x)*uint32(y) + 128
	return uint8((t + (t >> 8)) >> 8)
}

// ycbcrGo converts with Go's own colour conversion (nearest chroma sample).
func ycbcrGo(out *RGB, m *image.YCbCr) {
	b := m.Rect
	o := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			ci := m.COffset(x, y)
			r, g, bb := color.YCbCrToRGB(m.Y[m.YOffset(x, y)], m.Cb[ci], m.Cr[ci])
			out.Pix[o], out.Pix[o+1], out.Pix[o+2] = r, g, bb
			o += 3
		}
	}
}

// jpegToRGB converts the output of image/jpeg like stb_image would have.
func jpegToRGB(img image.Image) *RGB {
	if m, ok := img.(*image.YCbCr); ok && m.Rect.Min == (image.Point{}) {
		if hs, vs, ok := chromaFactors(m.SubsampleRatio); ok {
			return ycbcrStb(m, hs, vs)
		}
	}
	return toRGB(img)
}

func chromaFactors(r image.YCbCrSubsampleRatio) (hs, vs int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1, true
	case image.YCbCrSubsampleRatio422:
		return 2, 1, true
	case image.YCbCrSubsampleRatio420:
		return 2, 2, true
	case image.YCbCrSubsampleRatio440:
		return 1, 2, true
	case image.YCbCrSubsampleRatio411:
		return 4, 1, true
	case image.YCbCrSubsampleRatio410:
		return 4, 2, true
	}
	return 0, 0, false
}

// stbResampler mirrors stb_image's per-component stbi__resample state
// (load_jpeg_image): which two chroma rows feed each output row.
type stbResampler struct {
	plane        []uint8
	stride       int
	hs, vs       int
	wLores, rows int // chroma samples per row, chroma rows
	ystep, ypos  int
	line0, line1 int // row indices into plane
	buf          []uint8
}

func newStbResampler(plane []uint8, stride, hs, vs, w, h int) *stbResampler {
	return &stbResampler{
		plane: plane, stride: stride, hs: hs, vs: vs,
		wLores: (w + hs - 1) / hs, rows: (h + vs - 1) / vs,
		ystep: vs >> 1,
		buf:   make([]uint8, (w+hs-1)/hs*hs+3),
	}
}

// next returns the upsampled chroma for the next output row (at least w samples).
func (r *stbResampler) next() []uint8 {
	near, far := r.line0, r.line1
	if r.ystep >= r.vs>>1 {
		near, far = r.line1, r.line0
	}
	in := r.plane[near*r.stride : near*r.stride+r.wLores]
	inFar := r.plane[far*r.stride : far*r.stride+r.wLores]
	var out []uint8
	switch {
	case r.hs == 1 && r.vs == 1:
		out = in
	case r.hs == 1 && r.vs == 2:
		out = r.buf
		for i := range in {
			out[i] = uint8((3*int(in[i]) + int(inFar[i]) + 2) >> 2)
		}
	case r.hs == 2 && r.vs == 1:
		out = resampleH2(r.buf, in)
	case r.hs == 2 && r.vs == 2:
		out = resampleHV2(r.buf, in, inFar)
	default: // stbi__resample_row_generic: nearest neighbour
		out = r.buf
		for i, v := range in {
			for j := 0; j < r.hs; j++ {
				out[i*r.hs+j] = v
			}
		}
	}
	r.ystep++
	if r.ystep >= r.vs {
		r.ystep = 0
		r.line0 = r.line1
		r.ypos++
		if r.ypos < r.rows {
			r.line1++
		}
	}
	return out
}

// resampleH2 is stbi__resample_row_h_2.
func resampleH2(out, in []uint8) []uint8 {
	w := len(in)
	if w == 1 {
		out[0], out[1] = in[0], in[0]
		return out
	}
	out[0] = in[0]
	out[1] = uint8((int(in[0])*3 + int(in[1]) + 2) >> 2)
	i := 1
	for ; i < w-1; i++ {
		n := 3*int(in[i]) + 2
		out[i*2] = uint8((n + int(in[i-1])) >> 2)
		out[i*2+1] = uint8((n + int(in[i+1])) >> 2)
	}
	out[i*2] = uint8((int(in[w-2])*3 + int(in[w-1]) + 2) >> 2)
	out[i*2+1] = in[w-1]
	return out
}

// resampleHV2 is stbi__resample_row_hv_2 (the SSE2/NEON variants compute
// the same integers).
func resampleHV2(out, near, far []uint8) []uint8 {
	w := len(near)
	if w == 1 {
		v := uint8((3*int(near[0]) + int(far[0]) + 2) >> 2)
		out[0], out[1] = v, v
		return out
	}
	t1 := 3*int(near[0]) + int(far[0])
	out[0] = uint8((t1 + 2) >> 2)
	for i := 1; i < w; i++ {
		t0 := t1
		t1 = 3*int(near[i]) + int(far[i])
		out[i*2-1] = uint8((3*t0 + t1 + 8) >> 4)
		out[i*2] = uint8((3*t1 + t0 + 8) >> 4)
	}
	out[w*2-1] = uint8((t1 + 2) >> 2)
	return out
}

// stb_image's reduced-precision YCbCr->RGB constants:
// stbi__float2fixed(x) = ((int)(x*4096.0f + 0.5f)) << 8.
const (
	fixCrR = 5743 << 8 // 1.40200
	fixCrG = 2925 << 8 // 0.71414
	fixCbG = 1410 << 8 // 0.34414
	fixCbB = 7258 << 8 // 1.77200
)

// stbYCbCrToRGB is stbi__YCbCr_to_RGB_row for one pixel (also the tail loop
// of the SIMD kernel, which is all stb runs when 3 channels are requested).
func stbYCbCrToRGB(y, cb8, cr8 uint8) (uint8, uint8, uint8) {
	yFixed := int32(y)<<20 + 1<<19
	cr := int32(cr8) - 128
	cb := int32(cb8) - 128
	r := yFixed + cr*fixCrR
	g := yFixed + cr*-fixCrG + int32(uint32(cb*-fixCbG)&0xffff0000)
	b := yFixed + cb*fixCbB
	return clamp8(r >> 20), clamp8(g >> 20), clamp8(b >> 20)
}

func clamp8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ycbcrStb upsamples chroma and converts exactly like stb_image's JPEG loader.
func ycbcrStb(m *image.YCbCr, hs, vs int) *RGB {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	out := NewRGB(w, h)
	cb := newStbResampler(m.Cb, m.CStride, hs, vs, w, h)
	cr := newStbResampler(m.Cr, m.CStride, hs, vs, w, h)
	o := 0
	for y := 0; y < h; y++ {
		yr := m.Y[y*m.YStride : y*m.YStride+w]
		cbr, crr := cb.next(), cr.next()
		for x := 0; x < w; x++ {
			out.Pix[o], out.Pix[o+1], out.Pix[o+2] = stbYCbCrToRGB(yr[x], cbr[x], crr[x])
			o += 3
		}
	}
	return out
}

// gifFirstFrame places Go's first GIF frame on the logical screen the way
// stb_image's stbi__gif_load_next does for the first frame: the canvas starts
// as black; pixels inside the frame rectangle come from the frame (Go maps
// the transparent index to RGBA{}, i.e. black, which is what stb leaves
// there); pixels outside it get the global palette's background entry when
// the background index is > 0, copied from stb's BGR-ordered palette, i.e.
// with red and blue swapped.
func gifFirstFrame(img image.Image, header []byte, w, h int) (*RGB, error) {
	frame := toRGB(img)
	fr := img.Bounds()
	if !fr.In(image.Rect(0, 0, w, h)) && !fr.Empty() {
		return nil, fmt.Errorf("%w: GIF frame %v outside the %d x %d screen", ErrCorrupt, fr, w, h)
	}
	out := NewRGB(w, h)
	if len(header) >= 13 {
		flags, bg := header[10], int(header[11])
		if bg > 0 {
			var c [3]uint8
			if flags&0x80 != 0 {
				n := 2 << (flags & 7)
				if off := 13 + 3*bg; bg < n && off+3 <= len(header) {
					// stb: pal[i] = {b, g, r, a}; out pixel = pal[bg] bytes.
					c = [3]uint8{header[off+2], header[off+1], header[off]}
				}
			}
			for i := 0; i < len(out.Pix); i += 3 {
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = c[0], c[1], c[2]
			}
		}
	}
	for y := 0; y < fr.Dy(); y++ {
		src := frame.Pix[3*y*fr.Dx() : 3*(y+1)*fr.Dx()]
		d := 3 * ((fr.Min.Y+y)*w + fr.Min.X)
		copy(out.Pix[d:d+len(src)], src)
	}
	return out, nil
}
