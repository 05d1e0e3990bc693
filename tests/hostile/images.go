package hostile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"

	"github.com/hiprune/hiprune-go/tests/testmodel"
)

// Image error classes, as imageprep words them.
const (
	wantFormat   = `unsupported or unrecognised image format`
	wantCorrupt  = `truncated or corrupt image data|unsupported or unrecognised image format`
	wantTooLarge = `image too large`
	wantEmpty    = `zero-size image`
)

// BaseImages encodes img in every supported format: PNG, JPEG (baseline
// 4:2:0), GIF and a lossless WebP (2x2: x/image/webp has no encoder, see
// webpLossless).
func BaseImages(img image.Image) (map[string][]byte, error) {
	var p, j, g bytes.Buffer
	if err := png.Encode(&p, img); err != nil {
		return nil, err
	}
	if err := jpeg.Encode(&j, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	pal := image.NewPaletted(img.Bounds(), palette.Plan9)
	draw.Draw(pal, pal.Rect, img, img.Bounds().Min, draw.Src)
	if err := gif.Encode(&g, pal, nil); err != nil {
		return nil, err
	}
	return map[string][]byte{"png": p.Bytes(), "jpeg": j.Bytes(), "gif": g.Bytes(), "webp": webpLossless()}, nil
}

// chunk is a PNG chunk's place: length field at Off, data after the type.
type chunk struct {
	Type      string
	Off, Data int // Data: offset of the chunk data
	Len       int
}

func pngChunks(b []byte) []chunk {
	var cs []chunk
	for off := 8; off+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		cs = append(cs, chunk{Type: string(b[off+4 : off+8]), Off: off, Data: off + 8, Len: n})
		off += 12 + n
	}
	return cs
}

// fixCRC recomputes the CRC of the chunk at c after its data changed.
func fixCRC(b []byte, c chunk) {
	binary.BigEndian.PutUint32(b[c.Data+c.Len:], crc32.ChecksumIEEE(b[c.Off+4:c.Data+c.Len]))
}

func edit(b []byte, f func(c []byte)) []byte {
	c := bytes.Clone(b)
	f(c)
	return c
}

// ImageMutation is one malformed image file.
type ImageMutation struct {
	Name, Group, Want string
	Data              []byte
}

// ImageMutations malforms each base image at several points: magic, header
// fields (zero, huge and invalid dimensions, depths, tables), checksums,
// chunk lengths and truncations.
func ImageMutations(base map[string][]byte) []ImageMutation {
	var ms []ImageMutation
	add := func(kind, how, want string, data []byte) {
		ms = append(ms, ImageMutation{Name: kind + "/" + how, Group: "image/" + kind, Want: want, Data: data})
	}
	truncs := func(kind string, b []byte, offs ...int) {
		for _, o := range offs {
			if o > 0 && o < len(b) {
				add(kind, fmt.Sprintf("truncate-%d", o), wantCorrupt, bytes.Clone(b[:o]))
			}
		}
	}

	p := base["png"]
	cs := pngChunks(p)
	ihdr := cs[0]
	var idat chunk
	for _, c := range cs {
		if c.Type == "IDAT" {
			idat = c
			break
		}
	}
	setIHDR := func(off int, v []byte) []byte {
		return edit(p, func(c []byte) { copy(c[ihdr.Data+off:], v); fixCRC(c, ihdr) })
	}
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	add("png", "signature", wantFormat, edit(p, func(c []byte) { c[1] = 'X' }))
	add("png", "width-0", wantEmpty, setIHDR(0, be32(0)))
	add("png", "height-0", wantEmpty, setIHDR(4, be32(0)))
	add("png", "width-2^31-1", wantTooLarge+`|`+wantFormat, setIHDR(0, be32(1<<31-1)))
	add("png", "8000x8000", wantTooLarge, setIHDR(0, append(be32(8000), be32(8000)...)))
	add("png", "7000x7000-no-data", wantCorrupt+`|`+wantTooLarge, setIHDR(0, append(be32(7000), be32(7000)...)))
	add("png", "depth-3", wantFormat, setIHDR(8, []byte{3}))
	add("png", "colour-type-5", wantFormat, setIHDR(9, []byte{5}))
	add("png", "interlace-7", wantFormat, setIHDR(12, []byte{7}))
	add("png", "ihdr-crc", wantFormat, edit(p, func(c []byte) { c[ihdr.Data+ihdr.Len] ^= 0xff }))
	add("png", "ihdr-length", wantFormat, edit(p, func(c []byte) { binary.BigEndian.PutUint32(c[ihdr.Off:], 1<<31-1) }))
	add("png", "idat-crc", wantCorrupt, edit(p, func(c []byte) { c[idat.Data+idat.Len] ^= 0xff }))
	add("png", "idat-zlib-header", wantCorrupt, edit(p, func(c []byte) { c[idat.Data] = 0xff; c[idat.Data+1] = 0xff; fixCRC(c, idat) }))
	add("png", "idat-deflate-garbage", wantCorrupt, edit(p, func(c []byte) {
		r := rand.New(rand.NewPCG(1, 2))
		for i := idat.Data + 2; i < idat.Data+idat.Len; i++ {
			c[i] = byte(r.Uint32())
		}
		fixCRC(c, idat)
	}))
	add("png", "idat-length-huge", wantCorrupt, edit(p, func(c []byte) { binary.BigEndian.PutUint32(c[idat.Off:], 1<<31-1) }))
	truncs("png", p, 8, 16, ihdr.Data+ihdr.Len+4, idat.Data+idat.Len/2, len(p)-12, len(p)-1)

	j := base["jpeg"]
	marker := func(m byte) int { // offset of the first FF m marker
		for i := 2; i+1 < len(j); i++ {
			if j[i] == 0xff && j[i+1] == m {
				return i
			}
		}
		return -1
	}
	sof, dht, dqt, sos := marker(0xc0), marker(0xc4), marker(0xdb), marker(0xda)
	add("jpeg", "soi", wantFormat, edit(j, func(c []byte) { c[1] = 0xd9 }))
	// SOF0: FF C0 len(2) precision(1) height(2) width(2) ncomp(1) ...
	add("jpeg", "height-0", wantEmpty+`|`+wantFormat+`|`+wantCorrupt, edit(j, func(c []byte) { c[sof+5], c[sof+6] = 0, 0 }))
	add("jpeg", "width-0", wantEmpty+`|`+wantFormat, edit(j, func(c []byte) { c[sof+7], c[sof+8] = 0, 0 }))
	add("jpeg", "65535x65535", wantTooLarge, edit(j, func(c []byte) { copy(c[sof+5:], []byte{0xff, 0xff, 0xff, 0xff}) }))
	add("jpeg", "precision-12", wantCorrupt, edit(j, func(c []byte) { c[sof+4] = 12 }))
	add("jpeg", "components-2", wantCorrupt, edit(j, func(c []byte) { c[sof+9] = 2 }))
	add("jpeg", "sof-length", wantCorrupt, edit(j, func(c []byte) { c[sof+2], c[sof+3] = 0xff, 0xff }))
	add("jpeg", "dqt-table-id", wantCorrupt, edit(j, func(c []byte) { c[dqt+4] = 0x07 }))
	add("jpeg", "dht-class", wantCorrupt, edit(j, func(c []byte) { c[dht+4] = 0x25 }))
	add("jpeg", "sos-component", wantCorrupt, edit(j, func(c []byte) { c[sos+5] = 0x09 }))
	truncs("jpeg", j, 2, 20, sof+4, dht+10, sos+6, (sos+len(j))/2, len(j)-2)

	g := base["gif"]
	add("gif", "version", wantFormat, edit(g, func(c []byte) { copy(c[3:], "88a") }))
	add("gif", "screen-0x0", wantEmpty, edit(g, func(c []byte) { copy(c[6:], []byte{0, 0, 0, 0}) }))
	add("gif", "screen-65535x65535", wantTooLarge, edit(g, func(c []byte) { copy(c[6:], []byte{0xff, 0xff, 0xff, 0xff}) }))
	// After the 13-byte header and the global colour table (if any).
	gct := 0
	if g[10]&0x80 != 0 {
		gct = 3 << (int(g[10]&7) + 1)
	}
	desc := 13 + gct
	for desc < len(g) && g[desc] != 0x2c { // skip extensions to the image descriptor
		if g[desc] == 0x21 {
			i := desc + 2
			for i < len(g) && g[i] != 0 {
				i += int(g[i]) + 1
			}
			desc = i + 1
			continue
		}
		break
	}
	lct := 0
	if g[desc+9]&0x80 != 0 {
		lct = 3 << (int(g[desc+9]&7) + 1)
	}
	lzw := desc + 10 + lct
	add("gif", "frame-past-screen", wantCorrupt, edit(g, func(c []byte) { copy(c[desc+5:], []byte{0xff, 0xff, 0xff, 0xff}) }))
	add("gif", "lzw-min-code-0", wantCorrupt, edit(g, func(c []byte) { c[lzw] = 0 }))
	add("gif", "lzw-min-code-12", wantCorrupt, edit(g, func(c []byte) { c[lzw] = 12 }))
	add("gif", "block-length", wantCorrupt, edit(g, func(c []byte) { c[lzw+1] = 0xff }))
	truncs("gif", g, 6, 10, 13, desc+5, lzw+1, lzw+(len(g)-lzw)/2)

	w := base["webp"]
	add("webp", "riff", wantFormat, edit(w, func(c []byte) { copy(c, "RIFX") }))
	add("webp", "fourcc", wantFormat, edit(w, func(c []byte) { copy(c[8:], "WEBQ") }))
	add("webp", "vp8x-without-content", wantFormat+`|`+wantCorrupt, edit(w, func(c []byte) { copy(c[12:], "VP8X") }))
	add("webp", "vp8l-signature", wantFormat+`|`+wantCorrupt, edit(w, func(c []byte) { c[20] = 0 }))
	add("webp", "16384x16384", wantTooLarge, edit(w, func(c []byte) {
		c[21], c[22], c[23] = 0xff, 0xff, 0xff
		c[24] |= 0x0f
	}))
	add("webp", "version-bits", wantFormat+`|`+wantCorrupt, edit(w, func(c []byte) { c[24] |= 0xe0 }))
	add("webp", "chunk-length", wantFormat+`|`+wantCorrupt, edit(w, func(c []byte) { binary.LittleEndian.PutUint32(c[16:], 1<<30) }))
	truncs("webp", w, 12, 16, 20, 22, len(w)-2)
	return ms
}

// webpLossless is a 2x2 lossless WebP (green, red, blue and white pixels).
func webpLossless() []byte {
	bits := []uint32{0b1001, 0b0101, 0b0010, 0b1111} // green, red, blue, alpha bits
	return testmodel.EncodeWebPLossless(2, 2, func(x, y int) (r, g, b, a bool) {
		v := bits[2*y+x]
		return v&2 != 0, v&1 != 0, v&4 != 0, v&8 != 0
	})
}

// UnsupportedFiles are files of kinds chat does not read as images, each
// a plausible thing to pass as --image by mistake.
func UnsupportedFiles() []ImageMutation {
	bmp := func() []byte { // a valid 2x2 24-bit BMP
		var b bytes.Buffer
		le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
		b.WriteString("BM")
		le(uint32(54 + 16))
		le(uint32(0))
		le(uint32(54))
		le(uint32(40))
		le(int32(2))
		le(int32(2))
		le(uint16(1))
		le(uint16(24))
		le(uint32(0))
		le(uint32(16))
		le(int32(2835))
		le(int32(2835))
		le(uint32(0))
		le(uint32(0))
		b.Write(make([]byte, 16))
		return b.Bytes()
	}()
	tiff := []byte("II*\x00\x08\x00\x00\x00\x01\x00\x00\x01\x03\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00")
	heic := append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, 64)...)
	avif := append([]byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"), make([]byte, 64)...)
	rnd := make([]byte, 4096)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	rnd[0] = 0x42 // not a known magic by chance
	want := wantFormat
	files := []struct {
		name string
		data []byte
	}{
		{"bmp", bmp},
		{"bmp-truncated", bmp[:20]},
		{"tiff", tiff},
		{"tiff-big-endian", append([]byte("MM\x00*"), tiff[4:]...)},
		{"heic", heic},
		{"avif", avif},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`)},
		{"svg-xml", []byte("<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>")},
		{"empty", nil},
		{"text", []byte("this is not an image, just some text\n")},
		{"utf8-text", []byte("画像ではありません — not an image")},
		{"zeros", make([]byte, 1024)},
		{"random", rnd},
		{"pdf", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00\x00\x00")},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")},
		{"ico", []byte("\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00")},
		{"psd", []byte("8BPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03")},
		{"riff-wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00")},
		{"one-byte", []byte{0xff}},
		{"jpeg-soi-only", []byte{0xff, 0xd8}},
		{"png-signature-only", []byte("\x89PNG\r\n\x1a\n")},
		{"gif-header-only", []byte("GIF89a")},
	}
	var ms []ImageMutation
	for _, f := range files {
		w := want
		switch f.name {
		case "jpeg-soi-only", "png-signature-only", "gif-header-only":
			w = wantCorrupt
		}
		ms = append(ms, ImageMutation{Name: "unsupported/" + f.name, Group: "image/unsupported", Want: w, Data: f.data})
	}
	return ms
}
