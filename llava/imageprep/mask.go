package imageprep

import (
	"fmt"
	"image"
	"image/png"
	"io"
)

// MaskDim is the brightness (in percent) of pixels of pruned patches in DrawMask.
const MaskDim = 35

// OutlineColor is the colour of the 1-pixel outline DrawMask draws around kept patches.
var OutlineColor = [3]uint8{255, 215, 0}

// DrawMask returns a copy of img (same size as img) where pixels of patches
// not listed in kept are dimmed to MaskDim% and every kept patch gets a
// 1-pixel OutlineColor outline along the border of its PatchRect. The grid
// is gridW x gridH patches over the model's ImageSize x ImageSize input
// (24 x 24 for LLaVA-1.5); patches must be square and divide ImageSize.
// kept holds row-major patch indices (py*gridW + px); duplicates are fine.
func DrawMask(img *RGB, p Params, gridW, gridH int, kept []int) (*image.RGBA, error) {
	if err := img.validate(); err != nil {
		return nil, err
	}
	if p.ImageSize < 1 {
		return nil, fmt.Errorf("%w: ImageSize %d < 1", ErrParams, p.ImageSize)
	}
	if gridW < 1 || gridH < 1 || p.ImageSize%gridW != 0 || p.ImageSize%gridH != 0 || p.ImageSize/gridW != p.ImageSize/gridH {
		return nil, fmt.Errorf("%w: grid %d x %d does not divide the %d x %d input into square patches",
			ErrParams, gridW, gridH, p.ImageSize, p.ImageSize)
	}
	v := MaskView{Layout: Geometry(img.W, img.H, p), GridW: gridW, GridH: gridH, Patch: p.ImageSize / gridW, Kept: kept}
	out := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	if err := drawView(out, 0, img, v); err != nil {
		return nil, err
	}
	return out, nil
}

// MaskView is one view of an image as the model saw it and the patches
// kept from it: LLaVA-1.5 has one, LLaVA-NeXT a base view and the tiles
// (all tiles together as one grid over the refined image).
type MaskView struct {
	Layout       Layout // where the original image lies in the view, in model pixels
	GridW, GridH int    // the view's patch grid
	Patch        int    // patch side in model pixels
	Kept         []int  // row-major patch indices (py*GridW + px)
}

// MaskGap is the width of the background strip between DrawMasks' panels.
const MaskGap = 8

// DrawMasks draws one DrawMask panel per view, side by side (MaskGap
// pixels of black between them), each the size of img. One view gives
// exactly DrawMask's image.
func DrawMasks(img *RGB, views []MaskView) (*image.RGBA, error) {
	if err := img.validate(); err != nil {
		return nil, err
	}
	if len(views) == 0 {
		return nil, fmt.Errorf("%w: no view to draw", ErrParams)
	}
	out := image.NewRGBA(image.Rect(0, 0, len(views)*img.W+(len(views)-1)*MaskGap, img.H))
	for i := range out.Pix {
		if i%4 == 3 {
			out.Pix[i] = 0xff
		}
	}
	for i, v := range views {
		if err := drawView(out, i*(img.W+MaskGap), img, v); err != nil {
			return nil, fmt.Errorf("view %d: %w", i, err)
		}
	}
	return out, nil
}

// drawView draws img dimmed outside v's kept patches into out at x offset ox.
func drawView(out *image.RGBA, ox int, img *RGB, v MaskView) error {
	gridW, gridH, patch, l := v.GridW, v.GridH, v.Patch, v.Layout
	if gridW < 1 || gridH < 1 || patch < 1 {
		return fmt.Errorf("%w: grid %d x %d of %d px patches", ErrParams, gridW, gridH, patch)
	}
	if l.SrcW != img.W || l.SrcH != img.H {
		return fmt.Errorf("%w: the view maps a %d x %d image, not %d x %d", ErrParams, l.SrcW, l.SrcH, img.W, img.H)
	}
	keep := make([]bool, gridW*gridH)
	for _, k := range v.Kept {
		if k < 0 || k >= len(keep) {
			return fmt.Errorf("%w: kept patch index %d outside the %d x %d grid", ErrParams, k, gridW, gridH)
		}
		keep[k] = true
	}
	col := make([]int, img.W)
	for x := range col {
		col[x], _, _ = l.PatchAt(x, 0, patch)
	}
	for y := 0; y < img.H; y++ {
		_, row, _ := l.PatchAt(0, y, patch)
		for x := 0; x < img.W; x++ {
			s := 3 * (y*img.W + x)
			d := out.PixOffset(ox+x, y)
			r, g, b := img.Pix[s], img.Pix[s+1], img.Pix[s+2]
			if cx := col[x]; cx >= gridW || row >= gridH || !keep[row*gridW+cx] {
				r, g, b = dim(r), dim(g), dim(b)
			}
			out.Pix[d], out.Pix[d+1], out.Pix[d+2], out.Pix[d+3] = r, g, b, 0xff
		}
	}
	for k, ok := range keep {
		if !ok {
			continue
		}
		rc := l.PatchRect(k%gridW, k/gridW, patch)
		if rc.Empty() {
			continue
		}
		rc = rc.Add(image.Pt(ox, 0))
		for x := rc.Min.X; x < rc.Max.X; x++ {
			setOutline(out, x, rc.Min.Y)
			setOutline(out, x, rc.Max.Y-1)
		}
		for y := rc.Min.Y; y < rc.Max.Y; y++ {
			setOutline(out, rc.Min.X, y)
			setOutline(out, rc.Max.X-1, y)
		}
	}
	return nil
}

func dim(v uint8) uint8 { return uint8((int(v)*MaskDim + 50) / 100) }

func setOutline(m *image.RGBA, x, y int) {
	i := m.PixOffset(x, y)
	m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = OutlineColor[0], OutlineColor[1], OutlineColor[2], 0xff
}

// WriteMaskPNG draws the mask with DrawMask and writes it to w as PNG.
func WriteMaskPNG(w io.Writer, img *RGB, p Params, gridW, gridH int, kept []int) error {
	m, err := DrawMask(img, p, gridW, gridH, kept)
	if err != nil {
		return err
	}
	if err := png.Encode(w, m); err != nil {
		return fmt.Errorf("imageprep: writing mask PNG: %w", err)
	}
	return nil
}

// WriteMasksPNG draws the views with DrawMasks and writes them to w as PNG.
func WriteMasksPNG(w io.Writer, img *RGB, views []MaskView) error {
	m, err := DrawMasks(img, views)
	if err != nil {
		return err
	}
	if err := png.Encode(w, m); err != nil {
		return fmt.Errorf("imageprep: writing mask PNG: %w", err)
	}
	return nil
}
