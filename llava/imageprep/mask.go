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
	patch := p.ImageSize / gridW
	keep := make([]bool, gridW*gridH)
	for _, k := range kept {
		if k < 0 || k >= len(keep) {
			return nil, fmt.Errorf("%w: kept patch index %d outside the %d x %d grid", ErrParams, k, gridW, gridH)
		}
		keep[k] = true
	}
	l := Geometry(img.W, img.H, p)
	col := make([]int, img.W)
	for x := range col {
		col[x], _, _ = l.PatchAt(x, 0, patch)
	}
	out := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for y := 0; y < img.H; y++ {
		_, row, _ := l.PatchAt(0, y, patch)
		for x := 0; x < img.W; x++ {
			s := 3 * (y*img.W + x)
			d := 4 * (y*img.W + x)
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
		for x := rc.Min.X; x < rc.Max.X; x++ {
			setOutline(out, x, rc.Min.Y)
			setOutline(out, x, rc.Max.Y-1)
		}
		for y := rc.Min.Y; y < rc.Max.Y; y++ {
			setOutline(out, rc.Min.X, y)
			setOutline(out, rc.Max.X-1, y)
		}
	}
	return out, nil
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
