package imageprep

import (
	"fmt"
	"image"
	"math"
)

// What llama.cpp does for Qwen2-VL / Qwen2.5-VL (projector types
// qwen2vl_merger and qwen2.5vl_merger; read from tools/mtmd/clip.cpp,
// clip_image_preprocess and img_tool::calc_size_preserved_ratio, Hugging
// Face's "smart_resize"):
//
//  1. The image keeps (about) its size and aspect ratio: each side is
//     rounded to the nearest multiple of the alignment A = 2 * patch size
//     (28 px: the 2x2 patch groups the merger concatenates), at least A.
//  2. If that has more than MaxPixels pixels, beta = sqrt(W*H / MaxPixels)
//     and each side becomes floor(side / beta / A) * A (at least A); if it
//     has fewer than MinPixels, beta = sqrt(MinPixels / (W*H)) and each side
//     becomes ceil(side * beta / A) * A. Everything is float32 (std::round
//     rounds halves away from zero). MinPixels and MaxPixels are 8 and 4096
//     merged tokens of A*A pixels (clip_hparams::set_limit_image_tokens),
//     unless mtmd was given image_min_tokens / image_max_tokens.
//  3. The image is resized to that size without padding (img_tool::resize
//     with add_padding=false: a copy at the same size, else the bilinear
//     filter LLaVA's letterbox uses) and normalised as for LLaVA-1.5.

// Qwen2.5-VL token limits the pinned llama.cpp applies by default, in
// merged tokens (clip.cpp, set_limit_image_tokens(8, 4096)).
const (
	QwenMinTokens = 8
	QwenMaxTokens = 4096
)

// DynamicParams describe a dynamic-resolution vision tower (Qwen2.5-VL):
// clip.vision.patch_size, the merge side (2), the pixel limits and
// clip.vision.image_mean / image_std.
type DynamicParams struct {
	PatchSize int
	Merge     int
	// MinPixels and MaxPixels bound the resized area; QwenPixelLimits
	// gives llama.cpp's defaults.
	MinPixels, MaxPixels int
	Mean, Std            [3]float32
}

// QwenPixelLimits returns llama.cpp's pixel limits for a patch size and
// merge side: minTokens and maxTokens merged tokens (QwenMinTokens and
// QwenMaxTokens by default) of (patch*merge)^2 pixels each.
func QwenPixelLimits(patch, merge, minTokens, maxTokens int) (minPixels, maxPixels int) {
	a := patch * merge
	return minTokens * a * a, maxTokens * a * a
}

// Align is the side every resized dimension is a multiple of.
func (p DynamicParams) Align() int { return p.PatchSize * p.Merge }

func (p DynamicParams) validate() error {
	if p.PatchSize < 1 || p.Merge < 1 || p.PatchSize > 1<<12 || p.Merge > 16 {
		return fmt.Errorf("%w: patch size %d, merge %d", ErrParams, p.PatchSize, p.Merge)
	}
	if p.MinPixels < 1 || p.MaxPixels < p.MinPixels || p.MaxPixels > 1<<30 {
		return fmt.Errorf("%w: pixel limits %d..%d (want 1 <= min <= max <= 2^30)", ErrParams, p.MinPixels, p.MaxPixels)
	}
	return Params{ImageSize: 1, Mean: p.Mean, Std: p.Std}.validate()
}

// SmartResize is the size llama.cpp resizes a w x h image to (see above).
// w*h must fit an int32, as in the C++.
func SmartResize(w, h int, p DynamicParams) (Size, error) {
	if err := p.validate(); err != nil {
		return Size{}, err
	}
	if w < 1 || h < 1 {
		return Size{}, fmt.Errorf("%w: %d x %d", ErrEmpty, w, h)
	}
	if int64(w)*int64(h) > math.MaxInt32 {
		return Size{}, fmt.Errorf("%w: %d x %d has more than 2^31 pixels", ErrTooLarge, w, h)
	}
	a := p.Align()
	fa := float32(a)
	round := func(x float32) int { return int(math.Round(float64(x/fa))) * a }
	ceil := func(x float32) int { return int(math.Ceil(float64(x/fa))) * a }
	floor := func(x float32) int { return int(math.Floor(float64(x/fa))) * a }
	// sqrt of a float32 through float64 is correctly rounded (53 >= 2*24+2
	// bits), so this is std::sqrt(float).
	sqrt32 := func(x float32) float32 { return float32(math.Sqrt(float64(x))) }

	hb := max(a, round(float32(h)))
	wb := max(a, round(float32(w)))
	if hb*wb > p.MaxPixels {
		beta := sqrt32(float32(h*w) / float32(p.MaxPixels))
		hb = max(a, floor(float32(h)/beta))
		wb = max(a, floor(float32(w)/beta))
	} else if hb*wb < p.MinPixels {
		beta := sqrt32(float32(p.MinPixels) / float32(h*w))
		hb = ceil(float32(h) * beta)
		wb = ceil(float32(w) * beta)
	}
	return Size{W: wb, H: hb}, nil
}

// PreprocessDynamic resizes img to SmartResize's size and normalises it,
// step for step as llama.cpp's clip_image_preprocess does for Qwen2-VL and
// Qwen2.5-VL. The result is W/PatchSize x H/PatchSize patches, merged into
// W/Align x H/Align image tokens.
func PreprocessDynamic(img *RGB, p DynamicParams) (*Float, error) {
	if err := img.validate(); err != nil {
		return nil, err
	}
	sz, err := SmartResize(img.W, img.H, p)
	if err != nil {
		return nil, err
	}
	return Normalize(stretch(img, sz.W, sz.H), Params{ImageSize: 1, Mean: p.Mean, Std: p.Std})
}

// DynamicLayout maps the resized image (the whole w x h image stretched to
// sz, SmartResize's size) back to the original image, for masks. Its Size
// is the resized width.
func DynamicLayout(w, h int, sz Size) Layout {
	l := Layout{SrcW: w, SrcH: h, Size: sz.W, Content: image.Rect(0, 0, sz.W, sz.H)}
	if w > 0 && h > 0 {
		l.ScaleX = float64(sz.W) / float64(w)
		l.ScaleY = float64(sz.H) / float64(h)
	}
	return l
}

// DynamicMaskView is the mask view of a w x h image preprocessed with p:
// the kept tokens (row-major on the (W/Align) x (H/Align) token grid) drawn
// over the original image, each token's Align x Align pixels of the
// resized image mapped back (DrawMasks, WriteMasksPNG).
func DynamicMaskView(w, h int, p DynamicParams, kept []int) (MaskView, error) {
	sz, err := SmartResize(w, h, p)
	if err != nil {
		return MaskView{}, err
	}
	a := p.Align()
	return MaskView{Layout: DynamicLayout(w, h, sz), GridW: sz.W / a, GridH: sz.H / a, Patch: a, Kept: kept}, nil
}
