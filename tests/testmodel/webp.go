package testmodel

import (
	"bytes"
	"encoding/binary"
)

// EncodeWebPLossless assembles a w x h lossless WebP (VP8L) by hand, since
// no Go encoder exists: every channel uses a "simple" prefix code with the
// two symbols 0 and 255 (code 0 -> 0, code 1 -> 255), so each pixel is 4
// bits, green, red, blue, alpha; on(x, y) says which channels are 255.
func EncodeWebPLossless(w, h int, on func(x, y int) (r, g, b, a bool)) []byte {
	var bw bitWriter
	bw.put(uint32(w-1), 14)
	bw.put(uint32(h-1), 14)
	bw.put(1, 1)  // alpha used
	bw.put(0, 3)  // version
	bw.put(0, 1)  // no transform
	bw.put(0, 1)  // no colour cache
	bw.put(0, 1)  // no meta prefix codes
	for range 4 { // green, red, blue, alpha: simple code {0, 255}
		bw.put(1, 1) // simple
		bw.put(1, 1) // two symbols
		bw.put(0, 1) // first symbol uses 1 bit
		bw.put(0, 1) // first symbol: 0
		bw.put(255, 8)
	}
	bw.put(1, 1) // distance: simple code, one symbol 0
	bw.put(0, 1)
	bw.put(0, 1)
	bw.put(0, 1)
	bit := func(v bool) uint32 {
		if v {
			return 1
		}
		return 0
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b, a := on(x, y)
			bw.put(bit(g), 1)
			bw.put(bit(r), 1)
			bw.put(bit(b), 1)
			bw.put(bit(a), 1)
		}
	}
	payload := append([]byte{0x2f}, bw.buf...)
	if len(payload)%2 == 1 {
		payload = append(payload, 0)
	}
	var out bytes.Buffer
	out.WriteString("RIFF")
	out.Write(binary.LittleEndian.AppendUint32(nil, uint32(4+8+len(payload))))
	out.WriteString("WEBPVP8L")
	out.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(payload))))
	out.Write(payload)
	return out.Bytes()
}

// bitWriter packs bits LSB first, as VP8L wants.
type bitWriter struct {
	buf   []byte
	nbits uint
}

func (w *bitWriter) put(v uint32, n uint) {
	for i := uint(0); i < n; i++ {
		if w.nbits%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		w.buf[len(w.buf)-1] |= byte((v>>i)&1) << (w.nbits % 8)
		w.nbits++
	}
}
