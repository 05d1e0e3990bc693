package imageprep

import (
	"encoding/binary"
	"image"
	"image/color"
)

// DefaultMaxDecodeBytes is the memory budget of one Decode when
// Limits.MaxDecodeBytes is not set: 384 MiB.
const DefaultMaxDecodeBytes = 384 << 20

// decodeSlack covers what does not grow with the image: bufio and zlib
// buffers, Huffman and LZW tables, the header copy.
const decodeSlack = 1 << 20

// decodeCost bounds from above, in bytes, what Decode allocates for an image
// whose header has been read: the Go decoder's image and working buffers
// plus the RGB result. It follows the decoders' sources (image/png,
// image/jpeg, image/gif, golang.org/x/image/webp); TestDecodeCostBoundsAllocations
// checks it against measured allocations.
func decodeCost(kind string, cfg image.Config, header []byte) int64 {
	w, h := int64(cfg.Width), int64(cfg.Height)
	px := w * h
	rgb := 3 * px // the result
	var dec int64
	switch kind {
	case "png":
		// One image of the colour type's width (a tRNS chunk, which the
		// header read may not have reached, turns 8-bit grey or RGB into
		// NRGBA, so 8-bit non-palette images count 4 bytes), two rows, and
		// for Adam7 interlacing one image per pass before the merge.
		bpp := int64(4)
		switch cfg.ColorModel.(type) {
		case color.Palette:
			bpp = 1
		}
		switch cfg.ColorModel {
		case color.Gray16Model, color.RGBA64Model, color.NRGBA64Model:
			bpp = 8
		}
		dec = bpp*px + 2*(8*w+1)
		if len(header) > 28 && header[28] == 1 {
			dec *= 2
		}
	case "jpeg":
		dec = jpegCost(cfg, header)
	case "gif":
		// The paletted frame (no larger than the screen), its copy when
		// interlaced, and the frame's RGB before it is placed on the screen.
		dec = 2*px + rgb
	case "webp":
		dec = webpCost(w, h, header)
	default:
		dec = 8 * px
	}
	return dec + rgb + decodeSlack
}

// jpegCost reads the frame header (SOFn) and the JFIF/Adobe markers before
// it from the bytes DecodeConfig consumed: the component planes (padded to
// whole MCUs), a 4-byte coefficient per sample for progressive images, and
// the RGBA or CMYK image Go builds for RGB and 4-component files.
func jpegCost(cfg image.Config, header []byte) int64 {
	w, h := int64(cfg.Width), int64(cfg.Height)
	worst := (4 + 16 + 4) * w * h // 4 full-size planes, progressive, converted
	sof, jfif, adobe, transform := jpegMarkers(header)
	if sof == nil {
		return worst
	}
	progressive := sof[0] == 0xc2
	body := sof[1:]
	if len(body) < 6 {
		return worst
	}
	n := int(body[5])
	if n < 1 || len(body) < 6+3*n {
		return worst
	}
	var hmax, vmax int64 = 1, 1
	type comp struct{ id, h, v int64 }
	comps := make([]comp, n)
	for i := range comps {
		c := body[6+3*i:]
		comps[i] = comp{int64(c[0]), max(1, int64(c[1]>>4)), max(1, int64(c[1]&15))}
		hmax, vmax = max(hmax, comps[i].h), max(vmax, comps[i].v)
	}
	mxx := (w + 8*hmax - 1) / (8 * hmax)
	myy := (h + 8*vmax - 1) / (8 * vmax)
	var samples int64
	for _, c := range comps {
		samples += 64 * c.h * c.v * mxx * myy
	}
	cost := samples
	if progressive {
		cost += 4 * samples
	}
	rgbIDs := n == 3 && comps[0].id == 'R' && comps[1].id == 'G' && comps[2].id == 'B'
	if n == 4 || (n == 3 && !jfif && ((adobe && transform == 0) || rgbIDs)) {
		cost += 4 * w * h
	}
	return cost
}

// jpegMarkers walks the marker segments in b and returns the SOFn segment
// (its marker byte, then its payload), whether a JFIF APP0 and an Adobe
// APP14 segment came before it, and the Adobe colour transform.
func jpegMarkers(b []byte) (sof []byte, jfif, adobe bool, transform byte) {
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return nil, jfif, adobe, transform
		}
		m := b[i+1]
		if m == 0xff { // fill byte
			i++
			continue
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return nil, jfif, adobe, transform
		}
		seg := b[i+4 : i+2+n]
		switch {
		case m == 0xe0 && len(seg) >= 5 && string(seg[:5]) == "JFIF\x00":
			jfif = true
		case m == 0xee && len(seg) >= 12 && string(seg[:5]) == "Adobe":
			adobe, transform = true, seg[11]
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			return append([]byte{m}, seg...), jfif, adobe, transform
		}
		i += 2 + n
	}
	return nil, jfif, adobe, transform
}

// webpCost: lossy (VP8) is a 4:2:0 image padded to 16-pixel macroblocks plus
// the coefficient partitions, which the decoder reads whole (at most the
// chunk, and never more than 8 partitions of 16 MiB); lossless (VP8L) is an
// NRGBA image plus one more for the colour-indexing transform; the extended
// form (VP8X) may carry either, with an alpha plane decoded through VP8L.
func webpCost(w, h int64, header []byte) int64 {
	mbw, mbh := (w+15)/16*16, (h+15)/16*16
	lossy := mbw*mbh*3/2 + min(riffSize(header), 8<<24)
	lossless := 8 * w * h
	if len(header) < 16 {
		return lossy + lossless + 9*w*h
	}
	switch string(header[12:16]) {
	case "VP8 ":
		return lossy
	case "VP8L":
		return lossless
	}
	// VP8X: the larger of the two, plus the alpha plane decoded as a
	// lossless image and copied out.
	return max(lossy, lossless) + 9*w*h
}

func riffSize(header []byte) int64 {
	if len(header) < 8 {
		return 0
	}
	return int64(binary.LittleEndian.Uint32(header[4:8]))
}
