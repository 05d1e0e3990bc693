package imageprep

import (
	"fmt"
	"math"
)

// PadColor is the letterbox colour llama.cpp hard-codes for LLaVA-1.5:
// LLaVA's image mean (0.48145466, 0.4578275, 0.40821073) * 255, truncated.
var PadColor = [3]uint8{122, 116, 104}

// Params come from the mmproj GGUF: clip.vision.image_size,
// clip.vision.image_mean and clip.vision.image_std.
type Params struct {
	ImageSize int
	Mean, Std [3]float32
	// Pinpoints are clip.vision.image_grid_pinpoints (LLaVA-NeXT's
	// any-resolution candidates, PreprocessViews); empty for LLaVA-1.5.
	Pinpoints []Size
}

// LLaVA15Params are the values stored in LLaVA-1.5's mmproj (CLIP ViT-L/14-336).
var LLaVA15Params = Params{
	ImageSize: 336,
	Mean:      [3]float32{0.48145466, 0.4578275, 0.40821073},
	Std:       [3]float32{0.26862954, 0.26130258, 0.27577711},
}

func (p Params) validate() error {
	if p.ImageSize < 1 {
		return fmt.Errorf("%w: ImageSize %d < 1", ErrParams, p.ImageSize)
	}
	for c, s := range p.Std {
		if s == 0 || math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("%w: Std[%d] = %v (must be finite and non-zero)", ErrParams, c, s)
		}
		if m := p.Mean[c]; math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
			return fmt.Errorf("%w: Mean[%d] = %v (must be finite)", ErrParams, c, m)
		}
	}
	return nil
}

// Float is a normalised image in the layout of llama.cpp's clip_image_f32:
// W = nx, H = ny, Pix = buf, interleaved RGB floats, row-major (HWC),
// Pix[3*(y*W+x)+c]. clip_encode_float_image(ctx, n, &Pix[0], H, W, vec)
// takes it unchanged.
type Float struct {
	W, H int
	Pix  []float32
}

// Preprocess letterboxes img to ImageSize x ImageSize and normalises it,
// step for step as llama.cpp's clip_image_preprocess does for LLaVA-1.5
// (see the package documentation).
func Preprocess(img *RGB, p Params) (*Float, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	u8, err := Letterbox(img, p.ImageSize)
	if err != nil {
		return nil, err
	}
	return Normalize(u8, p)
}

// Normalize is llama.cpp's normalize_image_u8_to_f32:
// (float32(v)/255 - Mean[c]) / Std[c], computed in float32.
func Normalize(img *RGB, p Params) (*Float, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := img.validate(); err != nil {
		return nil, err
	}
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			lut[c][v] = (float32(v)/255 - p.Mean[c]) / p.Std[c]
		}
	}
	out := &Float{W: img.W, H: img.H, Pix: make([]float32, len(img.Pix))}
	for i := 0; i+2 < len(img.Pix); i += 3 {
		out.Pix[i] = lut[0][img.Pix[i]]
		out.Pix[i+1] = lut[1][img.Pix[i+1]]
		out.Pix[i+2] = lut[2][img.Pix[i+2]]
	}
	return out, nil
}

// fit is img_tool::resize's geometry for target size x size with padding:
// the resized image's size and its offset inside the canvas. copyOnly means
// the input already has the target size and is copied verbatim.
func fit(w, h, size int) (nw, nh, offX, offY int, copyOnly bool) {
	return fitRect(w, h, size, size)
}

// fitRect is fit on a tw x th canvas (LLaVA-NeXT's refined image).
func fitRect(w, h, tw, th int) (nw, nh, offX, offY int, copyOnly bool) {
	if w == tw && h == th {
		return tw, th, 0, 0, true
	}
	scaleW := float32(tw) / float32(w)
	scaleH := float32(th) / float32(h)
	scale := min(scaleW, scaleH)
	nw = min(int(math.Ceil(float64(float32(w)*scale))), tw)
	nh = min(int(math.Ceil(float64(float32(h)*scale))), th)
	return nw, nh, (tw - nw) / 2, (th - nh) / 2, false
}

// Letterbox is the u8 part of the preprocessing (llama.cpp's
// img_tool::resize with add_padding and PadColor): the image resized with
// llama.cpp's bilinear filter keeping its aspect ratio, centred on a
// size x size canvas of PadColor.
func Letterbox(img *RGB, size int) (*RGB, error) {
	if size < 1 {
		return nil, fmt.Errorf("%w: ImageSize %d < 1", ErrParams, size)
	}
	if err := img.validate(); err != nil {
		return nil, err
	}
	nw, nh, offX, offY, copyOnly := fit(img.W, img.H, size)
	if copyOnly {
		return &RGB{W: size, H: size, Pix: append([]uint8(nil), img.Pix...)}, nil
	}
	resized := resizeBilinear(img, nw, nh)
	out := NewRGB(size, size)
	for i := 0; i < len(out.Pix); i += 3 {
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = PadColor[0], PadColor[1], PadColor[2]
	}
	for y := 0; y < nh; y++ {
		d := 3 * ((offY+y)*size + offX)
		copy(out.Pix[d:d+3*nw], resized.Pix[3*y*nw:3*(y+1)*nw])
	}
	return out, nil
}

// lerp is img_tool::lerp, s + (e - s) * t in float32; the conversion keeps
// Go from fusing it into an FMA (see the package comment on fusion).
func lerp(s, e, t float32) float32 {
	return s + float32((e-s)*t)
}

// resizeBilinear is img_tool::resize_bilinear: source coordinate
// x * (W-1)/tw in float32, results truncated to uint8.
func resizeBilinear(src *RGB, tw, th int) *RGB {
	dst := NewRGB(tw, th)
	xRatio := float32(src.W-1) / float32(tw)
	yRatio := float32(src.H-1) / float32(th)

	x0 := make([]int, tw) // byte offset of the left sample
	x1 := make([]int, tw) // byte offset of the right sample
	xl := make([]float32, tw)
	for x := 0; x < tw; x++ {
		// Rounded on its own: on arm64 Go would otherwise fuse the product
		// into px - float32(xf) below (FNMSUB), a different fraction.
		px := float32(xRatio * float32(x))
		xf := int(px)
		xl[x] = px - float32(xf)
		x0[x] = 3 * xf
		// C++ reads xf+1 unclamped; it is only out of the row when
		// W == 1, where the weight is exactly 0.
		x1[x] = 3 * min(xf+1, src.W-1)
	}
	rowLen := 3 * src.W
	for y := 0; y < th; y++ {
		py := float32(yRatio * float32(y))
		yf := int(py)
		yl := py - float32(yf)
		top := src.Pix[yf*rowLen : (yf+1)*rowLen]
		yb := min(yf+1, src.H-1)
		bot := src.Pix[yb*rowLen : (yb+1)*rowLen]
		d := dst.Pix[3*y*tw : 3*(y+1)*tw]
		for x := 0; x < tw; x++ {
			a, b, t := x0[x], x1[x], xl[x]
			for c := 0; c < 3; c++ {
				tv := lerp(float32(top[a+c]), float32(top[b+c]), t)
				bv := lerp(float32(bot[a+c]), float32(bot[b+c]), t)
				d[3*x+c] = truncU8(lerp(tv, bv, yl))
			}
		}
	}
	return dst
}

// truncU8 is static_cast<uint8_t> of a value known to lie in [0, 255].
func truncU8(v float32) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}
