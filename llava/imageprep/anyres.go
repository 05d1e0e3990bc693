package imageprep

import (
	"fmt"
	"image"
	"math"
)

// Size is a width and a height in pixels.
type Size struct{ W, H int }

// What llama.cpp does for LLaVA-NeXT (projector type "mlp" with
// clip.vision.image_grid_pinpoints), read from tools/mtmd/clip.cpp,
// clip_image_preprocess and llava_uhd::get_slice_instructions / slice_image:
//
//  1. An image no larger than S (clip.vision.image_size) on both sides gives
//     one view only: the image resized to S x S WITHOUT keeping its aspect
//     ratio (img_tool::resize with add_padding=false: resize_bilinear, or a
//     plain copy at exactly S x S).
//  2. Otherwise the base ("overview") view is the same S x S stretch, and the
//     refined image is the best pinpoint resolution (select_best_resolution,
//     below), to which the image is resized keeping its aspect ratio and
//     centred on BLACK padding (resize with add_padding=true, pad colour
//     {0, 0, 0}: the same geometry as the LLaVA-1.5 letterbox on a
//     rectangular canvas). The refined image is cut into S x S tiles,
//     row-major (the last row/column narrower when a pinpoint is not a
//     multiple of S; PlanViews refuses that, our encoder takes S x S only).
//  3. Every view is normalised like LLaVA-1.5's and the views are returned
//     base first, tiles after.

// SelectResolution is llama.cpp's llava_uhd::select_best_resolution: the
// candidate where the image, scaled to fit it keeping its aspect ratio
// (sizes truncated), keeps the most of its own pixels (at most w*h count),
// ties going to the least wasted candidate area, then to the earlier
// candidate. ok is false when every candidate scales the image to nothing
// (llama.cpp then reads an uninitialised size).
func SelectResolution(w, h int, candidates []Size) (best Size, ok bool) {
	minWasted := math.MaxInt
	maxEff := 0
	for _, c := range candidates {
		// resize_maintain_aspect_ratio, in float32 like the C++.
		sw := float32(c.W) / float32(w)
		sh := float32(c.H) / float32(h)
		s := min(sw, sh)
		tw, th := int(float32(w)*s), int(float32(h)*s)
		eff := min(tw*th, w*h)
		wasted := c.W*c.H - eff
		if eff > maxEff || (eff == maxEff && wasted < minWasted) {
			maxEff, minWasted, best, ok = eff, wasted, c, true
		}
	}
	return best, ok && maxEff > 0
}

// ViewPlan is how an image is cut into views for a model with resolution
// pinpoints.
type ViewPlan struct {
	Src  Size // the original image
	Size int  // side of every view (Params.ImageSize)
	// Refined is the chosen pinpoint resolution; zero when the image has the
	// base view only.
	Refined Size
	// TilesX, TilesY are the tiles across and down the refined image (0
	// when there are none); views 1..TilesX*TilesY are the tiles, row-major.
	TilesX, TilesY int
	// Content is where the resized image lies inside the refined image; the
	// rest is black padding.
	Content image.Rectangle
}

// NViews is the number of views: the base view and the tiles.
func (v ViewPlan) NViews() int { return 1 + v.TilesX*v.TilesY }

// BaseLayout maps the base view (the whole image stretched to Size x Size)
// back to the original image, for masks.
func (v ViewPlan) BaseLayout() Layout {
	l := Layout{SrcW: v.Src.W, SrcH: v.Src.H, Size: v.Size, Content: image.Rect(0, 0, v.Size, v.Size)}
	if v.Src.W > 0 && v.Src.H > 0 {
		l.ScaleX = float64(v.Size) / float64(v.Src.W)
		l.ScaleY = float64(v.Size) / float64(v.Src.H)
	}
	return l
}

// RefinedLayout maps the refined image (all tiles side by side) back to the
// original image, for masks. Its Size is the refined width.
func (v ViewPlan) RefinedLayout() Layout {
	l := Layout{SrcW: v.Src.W, SrcH: v.Src.H, Size: v.Refined.W, Content: v.Content}
	if v.Src.W > 0 && v.Src.H > 0 {
		l.ScaleX = float64(v.Content.Dx()) / float64(v.Src.W)
		l.ScaleY = float64(v.Content.Dy()) / float64(v.Src.H)
	}
	return l
}

// PlanViews returns the views llama.cpp cuts a w x h image into for
// p.Pinpoints (which must be set, each a positive multiple of ImageSize).
func PlanViews(w, h int, p Params) (ViewPlan, error) {
	if err := p.validate(); err != nil {
		return ViewPlan{}, err
	}
	if len(p.Pinpoints) == 0 {
		return ViewPlan{}, fmt.Errorf("%w: no resolution pinpoints (not a LLaVA-NeXT model)", ErrParams)
	}
	if w < 1 || h < 1 {
		return ViewPlan{}, fmt.Errorf("%w: %d x %d", ErrEmpty, w, h)
	}
	s := p.ImageSize
	for _, c := range p.Pinpoints {
		if c.W < s || c.H < s || c.W%s != 0 || c.H%s != 0 {
			return ViewPlan{}, fmt.Errorf("%w: pinpoint %dx%d is not a multiple of the %d px view", ErrParams, c.W, c.H, s)
		}
	}
	v := ViewPlan{Src: Size{w, h}, Size: s}
	if w <= s && h <= s {
		return v, nil
	}
	best, ok := SelectResolution(w, h, p.Pinpoints)
	if !ok {
		return ViewPlan{}, fmt.Errorf("%w: a %d x %d image scales to nothing in every pinpoint resolution", ErrParams, w, h)
	}
	v.Refined = best
	v.TilesX, v.TilesY = best.W/s, best.H/s
	nw, nh, ox, oy, _ := fitRect(w, h, best.W, best.H)
	v.Content = image.Rect(ox, oy, ox+nw, oy+nh)
	return v, nil
}

// PreprocessViews cuts and normalises img for a model with resolution
// pinpoints (p.Pinpoints), step for step as llama.cpp's
// clip_image_preprocess does for LLaVA-NeXT: the base view first, then the
// tiles row-major.
func PreprocessViews(img *RGB, p Params) ([]*Float, ViewPlan, error) {
	if err := img.validate(); err != nil {
		return nil, ViewPlan{}, err
	}
	plan, err := PlanViews(img.W, img.H, p)
	if err != nil {
		return nil, ViewPlan{}, err
	}
	s := p.ImageSize
	views := make([]*Float, 0, plan.NViews())
	base, err := Normalize(stretch(img, s, s), p)
	if err != nil {
		return nil, ViewPlan{}, err
	}
	views = append(views, base)
	if plan.TilesX == 0 {
		return views, plan, nil
	}
	refined := padResize(img, plan.Refined.W, plan.Refined.H, [3]uint8{0, 0, 0})
	for ty := 0; ty < plan.TilesY; ty++ {
		for tx := 0; tx < plan.TilesX; tx++ {
			tile := NewRGB(s, s)
			for y := 0; y < s; y++ {
				src := 3 * ((ty*s+y)*refined.W + tx*s)
				copy(tile.Pix[3*y*s:3*(y+1)*s], refined.Pix[src:src+3*s])
			}
			f, err := Normalize(tile, p)
			if err != nil {
				return nil, ViewPlan{}, err
			}
			views = append(views, f)
		}
	}
	return views, plan, nil
}

// stretch is img_tool::resize without padding: a copy at the same size,
// else resize_bilinear to exactly tw x th.
func stretch(img *RGB, tw, th int) *RGB {
	if img.W == tw && img.H == th {
		return &RGB{W: tw, H: th, Pix: append([]uint8(nil), img.Pix...)}
	}
	return resizeBilinear(img, tw, th)
}

// padResize is img_tool::resize with padding onto a tw x th canvas of pad.
func padResize(img *RGB, tw, th int, pad [3]uint8) *RGB {
	nw, nh, ox, oy, copyOnly := fitRect(img.W, img.H, tw, th)
	if copyOnly {
		return &RGB{W: tw, H: th, Pix: append([]uint8(nil), img.Pix...)}
	}
	resized := resizeBilinear(img, nw, nh)
	out := NewRGB(tw, th)
	if pad != [3]uint8{} {
		for i := 0; i < len(out.Pix); i += 3 {
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = pad[0], pad[1], pad[2]
		}
	}
	for y := 0; y < nh; y++ {
		d := 3 * ((oy+y)*tw + ox)
		copy(out.Pix[d:d+3*nw], resized.Pix[3*y*nw:3*(y+1)*nw])
	}
	return out
}
