package imageprep

import "image"

// Layout tells where the original image lies in the model's square input,
// so that patch grid cells can be mapped back to the original image.
//
// llama.cpp (this version) does not build a padded canvas at the original
// resolution: it resizes first and pads afterwards, at the model's
// resolution. So the exact geometry lives in model-input pixels: Content is
// the rectangle of the Size x Size input covered by the resized image, the
// rest is PadColor. A source pixel (x, y) maps, by its centre, to model
// coordinates (Content.Min.X + (x+0.5)*ScaleX, Content.Min.Y + (y+0.5)*ScaleY).
type Layout struct {
	SrcW, SrcH int             // original image size
	Size       int             // side of the square model input (Params.ImageSize)
	Content    image.Rectangle // resized image inside the model input, model pixels
	// ScaleX, ScaleY are model pixels per source pixel
	// (Content.Dx()/SrcW, Content.Dy()/SrcH; they may differ by rounding).
	ScaleX, ScaleY float64
}

// Geometry returns the letterbox layout llama.cpp uses for a w x h image.
// For w, h < 1 or p.ImageSize < 1 it returns a Layout with empty Content.
func Geometry(w, h int, p Params) Layout {
	l := Layout{SrcW: w, SrcH: h, Size: p.ImageSize}
	if w < 1 || h < 1 || p.ImageSize < 1 {
		return l
	}
	nw, nh, ox, oy, _ := fit(w, h, p.ImageSize)
	l.Content = image.Rect(ox, oy, ox+nw, oy+nh)
	l.ScaleX = float64(nw) / float64(w)
	l.ScaleY = float64(nh) / float64(h)
	return l
}

// firstSrc returns the first source index (0..n) whose pixel centre maps at
// or beyond model coordinate m, along one axis: source i maps to
// off + (i+0.5)*ext/n.
func firstSrc(m, off, ext, n int) int {
	if ext <= 0 || n <= 0 {
		return 0
	}
	// want the smallest i >= 0 with (2i+1)*ext >= 2*n*(m-off)
	r := 2 * int64(n) * int64(m-off)
	if r <= int64(ext) {
		return 0
	}
	num := r - int64(ext)
	den := 2 * int64(ext)
	i := (num + den - 1) / den
	if i > int64(n) {
		return n
	}
	return int(i)
}

// PatchRect returns the pixels of the original image that belong to patch
// (px, py) of a grid of patch x patch model pixels: those whose centres map
// into it. Adjacent patches tile the image without gaps or overlap. The
// rectangle is empty when the patch lies entirely in padding (or, when the
// image is upscaled a lot, when no source pixel centre falls inside it).
func (l Layout) PatchRect(px, py, patch int) image.Rectangle {
	if patch < 1 || l.Content.Empty() || px < 0 || py < 0 {
		return image.Rectangle{}
	}
	cw, ch := l.Content.Dx(), l.Content.Dy()
	x0 := firstSrc(px*patch, l.Content.Min.X, cw, l.SrcW)
	x1 := firstSrc((px+1)*patch, l.Content.Min.X, cw, l.SrcW)
	y0 := firstSrc(py*patch, l.Content.Min.Y, ch, l.SrcH)
	y1 := firstSrc((py+1)*patch, l.Content.Min.Y, ch, l.SrcH)
	if x0 >= x1 || y0 >= y1 {
		return image.Rectangle{}
	}
	return image.Rect(x0, y0, x1, y1)
}

// PatchAt returns the patch (column, row) of a grid of patch x patch model
// pixels that source pixel (x, y) belongs to; ok is false outside the image.
func (l Layout) PatchAt(x, y, patch int) (px, py int, ok bool) {
	if patch < 1 || l.Content.Empty() || x < 0 || y < 0 || x >= l.SrcW || y >= l.SrcH {
		return 0, 0, false
	}
	return srcToPatch(x, l.Content.Min.X, l.Content.Dx(), l.SrcW, patch),
		srcToPatch(y, l.Content.Min.Y, l.Content.Dy(), l.SrcH, patch), true
}

// srcToPatch: floor((off + (i+0.5)*ext/n) / patch) in integers.
func srcToPatch(i, off, ext, n, patch int) int {
	num := 2*int64(n)*int64(off) + (2*int64(i)+1)*int64(ext)
	return int(num / (2 * int64(n) * int64(patch)))
}
