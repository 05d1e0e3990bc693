// Package testbed is a deterministic synthetic scene and question generator
// for a VLM accuracy testbed.
//
// A scene is a 336x336 RGB image holding 1 to 4 non-overlapping solid shapes
// (circle, square, triangle, star) in one of six colours, on either a plain
// background (grey or beige, 30% of scenes) or a textured one (soft muted
// gradient, per-pixel noise and small unsaturated clutter). Every scene comes
// with short questions whose answer is a single lowercase word.
//
// Everything is a pure function of (seed, index): GenScene and Questions draw
// from their own random streams, so results do not depend on call order or
// on how many numbers the other consumed.
package testbed

import (
	"image"
	"math"
	"math/rand/v2"
)

// Shapes are the shape kinds, as they appear in questions and answers.
var Shapes = []string{"circle", "square", "triangle", "star"}

// Colors are the colour names, as they appear in questions and answers.
var Colors = []string{"red", "green", "blue", "yellow", "purple", "orange"}

// Templates are the question templates, in the order Questions emits them.
var Templates = []string{"color", "shape", "exists", "count", "left"}

// ImageSize is the side of every scene image in pixels.
const ImageSize = 336

// Object is one shape in a scene.
type Object struct {
	Shape, Color string
	CX, CY       float64 // centre in pixels (centre of the bounding box)
	Size         int     // bounding-box side in px
	RGB          [3]uint8
}

// Scene is one generated image plus its ground truth.
type Scene struct {
	Img     *image.RGBA // 336x336
	Objects []Object
	Plain   bool // plain background (grey or beige)
}

// Generation parameters.
const (
	minObjects   = 1
	maxObjects   = 4
	minSize      = 24
	maxSize      = 120
	colorJitter  = 20
	boxMargin    = 4    // minimum gap between bounding boxes
	plainFrac    = 0.30 // fraction of scenes with a plain background
	starInner    = 0.45 // inner / outer radius of stars
	placeTries   = 200  // placement attempts per object
	layoutTries  = 20   // full layout restarts before dropping an object
	minClutter   = 3
	maxClutter   = 8
	noiseLum     = 10 // per-pixel luminance noise amplitude (textured)
	noiseChannel = 3  // per-pixel per-channel noise amplitude (textured)
)

// baseRGB are the nominal colours, indexed like Colors.
var baseRGB = [][3]int{
	{220, 40, 40},  // red
	{40, 170, 60},  // green
	{40, 80, 220},  // blue
	{230, 210, 40}, // yellow
	{140, 60, 180}, // purple
	{240, 140, 30}, // orange
}

// mutedPalette holds the low-saturation tones used for textured backgrounds
// (max-min channel spread <= 30, far from the shape colours' >= 80).
var mutedPalette = [][3]int{
	{112, 128, 144}, // slate
	{140, 125, 110}, // taupe
	{150, 160, 140}, // sage
	{200, 190, 170}, // sand
	{160, 160, 150}, // stone
	{120, 130, 150}, // dusty blue
	{175, 165, 160}, // warm grey
	{95, 100, 95},   // charcoal green
	{185, 180, 190}, // lilac grey
	{130, 130, 130}, // mid grey
}

// Stream tags keep the random streams apart: scene layout (background kind
// and objects), background texture, and questions.
const (
	streamScene    = 0x5CE7E5CE7E5CE7E1
	streamTexture  = 0x7E47E47E47E47E4B
	streamQuestion = 0x9E3779B97F4A7C15
)

// mix64 is the splitmix64 finaliser, used to decorrelate neighbouring seeds.
func mix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// newRand returns the random stream for (seed, index) and a stream tag.
func newRand(seed uint64, index int, tag uint64) *rand.Rand {
	return rand.New(rand.NewPCG(mix64(seed^tag), mix64(uint64(index)+tag)))
}

// GenScene is deterministic in (seed, index): same inputs, same bytes,
// independent of call order.
func GenScene(seed uint64, index int) Scene {
	plain, objs := layout(seed, index)

	tex := newRand(seed, index, streamTexture)
	img := image.NewRGBA(image.Rect(0, 0, ImageSize, ImageSize))
	if plain {
		fillPlain(img, tex)
	} else {
		fillTextured(img, tex)
		drawClutter(img, tex)
	}
	for i := range objs {
		drawObject(img, &objs[i])
	}
	return Scene{Img: img, Objects: objs, Plain: plain}
}

// RGB returns the image as interleaved 8-bit RGB (row-major, no alpha).
func (s Scene) RGB() []byte {
	out := make([]byte, len(s.Img.Pix)/4*3)
	for p, j := 0, 0; p < len(s.Img.Pix); p, j = p+4, j+3 {
		copy(out[j:j+3], s.Img.Pix[p:p+3])
	}
	return out
}

// layout returns the background kind and the objects of scene (seed, index).
// It has its own random stream, so it does not depend on the rendering.
func layout(seed uint64, index int) (plain bool, objs []Object) {
	r := newRand(seed, index, streamScene)
	plain = r.Float64() < plainFrac
	return plain, placeObjects(r)
}

// box is an object's integer bounding box [x0, x0+size) x [y0, y0+size).
type box struct{ x0, y0, size int }

func (a box) clear(b box) bool {
	return a.x0+a.size+boxMargin <= b.x0 || b.x0+b.size+boxMargin <= a.x0 ||
		a.y0+a.size+boxMargin <= b.y0 || b.y0+b.size+boxMargin <= a.y0
}

// placeObjects samples the objects and finds non-overlapping positions. If a
// layout cannot be found after layoutTries restarts, the object that failed
// is dropped (the count is reduced) and placement goes on.
func placeObjects(r *rand.Rand) []Object {
	n := minObjects + r.IntN(maxObjects-minObjects+1)
	type spec struct {
		shape, color int
		size         int
		rgb          [3]uint8
	}
	specs := make([]spec, n)
	for i := range specs {
		s := spec{shape: r.IntN(len(Shapes)), color: r.IntN(len(Colors))}
		s.size = minSize + r.IntN(maxSize-minSize+1)
		for c := 0; c < 3; c++ {
			s.rgb[c] = clamp8(baseRGB[s.color][c] + r.IntN(2*colorJitter+1) - colorJitter)
		}
		specs[i] = s
	}

	var boxes []box
	for restart := 0; ; restart++ {
		boxes = boxes[:0]
		failed := -1
		for i, s := range specs {
			ok := false
			for t := 0; t < placeTries; t++ {
				b := box{r.IntN(ImageSize - s.size + 1), r.IntN(ImageSize - s.size + 1), s.size}
				ok = true
				for _, o := range boxes {
					if !b.clear(o) {
						ok = false
						break
					}
				}
				if ok {
					boxes = append(boxes, b)
					break
				}
			}
			if !ok {
				failed = i
				break
			}
		}
		if failed < 0 {
			break
		}
		if restart+1 >= layoutTries {
			specs = append(specs[:failed], specs[failed+1:]...)
			restart = -1
		}
	}

	objs := make([]Object, len(specs))
	for i, s := range specs {
		b := boxes[i]
		objs[i] = Object{
			Shape: Shapes[s.shape],
			Color: Colors[s.color],
			CX:    float64(b.x0) + float64(b.size)/2,
			CY:    float64(b.y0) + float64(b.size)/2,
			Size:  b.size,
			RGB:   s.rgb,
		}
	}
	return objs
}

func clamp8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

func clamp01(v float64) float64 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// jitterTone returns base shifted by a common luminance offset in [-lum, lum]
// and a per-channel offset in [-ch, ch], which keeps the tone unsaturated.
func jitterTone(r *rand.Rand, base [3]int, lum, ch int) [3]int {
	l := r.IntN(2*lum+1) - lum
	var out [3]int
	for c := 0; c < 3; c++ {
		out[c] = base[c] + l + r.IntN(2*ch+1) - ch
	}
	return out
}

// fillPlain paints a uniform grey or beige background.
func fillPlain(img *image.RGBA, r *rand.Rand) {
	var col [3]int
	if r.IntN(2) == 0 {
		col = jitterTone(r, [3]int{128, 128, 128}, 12, 3)
	} else {
		col = jitterTone(r, [3]int{225, 210, 180}, 8, 3)
	}
	c0, c1, c2 := clamp8(col[0]), clamp8(col[1]), clamp8(col[2])
	pix := img.Pix
	for i := 0; i < len(pix); i += 4 {
		pix[i], pix[i+1], pix[i+2], pix[i+3] = c0, c1, c2, 255
	}
}

// fillTextured paints a soft linear gradient between two muted tones plus
// per-pixel noise that is mostly luminance (so it stays unsaturated).
func fillTextured(img *image.RGBA, r *rand.Rand) {
	i1 := r.IntN(len(mutedPalette))
	i2 := r.IntN(len(mutedPalette) - 1)
	if i2 >= i1 {
		i2++
	}
	a := jitterTone(r, mutedPalette[i1], 10, 3)
	b := jitterTone(r, mutedPalette[i2], 10, 3)
	ang := r.Float64() * 2 * math.Pi
	dx, dy := math.Cos(ang), math.Sin(ang)
	// t runs from 0 to 1 along (dx, dy) over span pixels (at least the image
	// extent in that direction, so the gradient is soft).
	span := (math.Abs(dx) + math.Abs(dy)) * ImageSize * (1 + r.Float64())
	half := float64(ImageSize) / 2
	noisy := r.IntN(4) != 0 // 75% of textured scenes add per-pixel noise

	// Fixed point (16 fractional bits): t per pixel, colour = a + (b-a)*t.
	const one = 1 << 16
	dt := int(dx / span * one)
	d0, d1, d2 := b[0]-a[0], b[1]-a[1], b[2]-a[2]
	// Per-pixel noise comes from an inline xorshift64* seeded from r: much
	// cheaper than a Rand call per pixel and just as deterministic.
	ns := r.Uint64() | 1
	pix := img.Pix
	stride := img.Stride
	for y := 0; y < ImageSize; y++ {
		row := pix[y*stride : y*stride+ImageSize*4 : y*stride+ImageSize*4]
		t0 := ((0.5-half)*dx+(float64(y)+0.5-half)*dy)/span + 0.5
		t := int(t0 * one)
		for x := 0; x < ImageSize*4; x += 4 {
			tc := t
			if tc < 0 {
				tc = 0
			} else if tc > one {
				tc = one
			}
			t += dt
			v0 := a[0] + (d0*tc+one/2)>>16
			v1 := a[1] + (d1*tc+one/2)>>16
			v2 := a[2] + (d2*tc+one/2)>>16
			if noisy {
				ns ^= ns >> 12
				ns ^= ns << 25
				ns ^= ns >> 27
				u := ns * 0x2545F4914F6CDD1D
				l := int((u&0xff)*(2*noiseLum+1)>>8) - noiseLum
				v0 += l + int((u>>8&0xff)*(2*noiseChannel+1)>>8) - noiseChannel
				v1 += l + int((u>>16&0xff)*(2*noiseChannel+1)>>8) - noiseChannel
				v2 += l + int((u>>24&0xff)*(2*noiseChannel+1)>>8) - noiseChannel
			}
			px := row[x : x+4 : x+4]
			px[0], px[1], px[2], px[3] = clamp8(v0), clamp8(v1), clamp8(v2), 255
		}
	}
}

// clutterTone is a grey with a faint tint: never mistaken for a shape colour.
func clutterTone(r *rand.Rand) [3]uint8 {
	t := jitterTone(r, [3]int{0, 0, 0}, 0, 8)
	g := 40 + r.IntN(181)
	return [3]uint8{clamp8(g + t[0]), clamp8(g + t[1]), clamp8(g + t[2])}
}

func setPix(img *image.RGBA, x, y int, c [3]uint8) {
	if x < 0 || y < 0 || x >= ImageSize || y >= ImageSize {
		return
	}
	o := y*img.Stride + x*4
	img.Pix[o], img.Pix[o+1], img.Pix[o+2] = c[0], c[1], c[2]
}

// drawClutter adds a few thin 1 px lines (10-60 px long) and small dots
// (radius 1-3 px) in muted grey tones. It runs before shapes are drawn.
func drawClutter(img *image.RGBA, r *rand.Rand) {
	nLines := minClutter + r.IntN(maxClutter-minClutter+1)
	for i := 0; i < nLines; i++ {
		c := clutterTone(r)
		x0, y0 := r.Float64()*ImageSize, r.Float64()*ImageSize
		length := 10 + r.Float64()*50
		ang := r.Float64() * 2 * math.Pi
		dx, dy := math.Cos(ang), math.Sin(ang)
		steps := int(length)
		for s := 0; s <= steps; s++ {
			setPix(img, int(x0+dx*float64(s)), int(y0+dy*float64(s)), c)
		}
	}
	nDots := minClutter + r.IntN(maxClutter-minClutter+1)
	for i := 0; i < nDots; i++ {
		c := clutterTone(r)
		cx, cy := r.IntN(ImageSize), r.IntN(ImageSize)
		rad := 1 + r.IntN(3)
		for y := -rad; y <= rad; y++ {
			for x := -rad; x <= rad; x++ {
				if x*x+y*y <= rad*rad {
					setPix(img, cx+x, cy+y, c)
				}
			}
		}
	}
}

// drawObject fills o's shape with o.RGB. Edges are anti-aliased with a
// one-pixel ramp on the signed distance; pixels more than half a pixel inside
// get exactly o.RGB. Nothing is written outside the bounding box.
func drawObject(img *image.RGBA, o *Object) {
	x0 := int(o.CX - float64(o.Size)/2)
	y0 := int(o.CY - float64(o.Size)/2)
	size := o.Size
	fsize := float64(size)
	cx, cy := float64(x0)+fsize/2, float64(y0)+fsize/2

	var cover func(px, py float64) float64
	switch o.Shape {
	case "square":
		cover = func(px, py float64) float64 { return 1 }
	case "circle":
		rad := fsize / 2
		cover = func(px, py float64) float64 {
			dx, dy := px-cx, py-cy
			return clamp01(rad - math.Sqrt(dx*dx+dy*dy) + 0.5)
		}
	case "triangle":
		poly := newPolygon([][2]float64{
			{cx, float64(y0)},
			{float64(x0 + size), float64(y0 + size)},
			{float64(x0), float64(y0 + size)},
		})
		cover = func(px, py float64) float64 { return clamp01(poly.sdf(px, py) + 0.5) }
	case "star":
		poly := newPolygon(starPoly(float64(x0), float64(y0), fsize))
		cover = func(px, py float64) float64 { return clamp01(poly.sdf(px, py) + 0.5) }
	default:
		panic("testbed: unknown shape " + o.Shape)
	}

	fr, fg, fb := float64(o.RGB[0]), float64(o.RGB[1]), float64(o.RGB[2])
	pix := img.Pix
	for y := y0; y < y0+size; y++ {
		py := float64(y) + 0.5
		for x := x0; x < x0+size; x++ {
			a := cover(float64(x)+0.5, py)
			if a <= 0 {
				continue
			}
			i := y*img.Stride + x*4
			if a >= 1 {
				pix[i], pix[i+1], pix[i+2] = o.RGB[0], o.RGB[1], o.RGB[2]
				continue
			}
			pix[i] = uint8(float64(pix[i])*(1-a) + fr*a + 0.5)
			pix[i+1] = uint8(float64(pix[i+1])*(1-a) + fg*a + 0.5)
			pix[i+2] = uint8(float64(pix[i+2])*(1-a) + fb*a + 0.5)
		}
	}
}

// starPoly returns the 10 vertices of an upright 5-pointed star whose
// bounding box is centred in the box [x0, x0+size) x [y0, y0+size): its
// width equals size and its height is about 0.95*size.
func starPoly(x0, y0, size float64) [][2]float64 {
	sin72 := math.Sin(72 * math.Pi / 180)
	cos36 := math.Cos(36 * math.Pi / 180)
	outer := size / (2 * sin72)
	height := outer * (1 + cos36)
	sx := x0 + size/2
	sy := y0 + (size-height)/2 + outer
	poly := make([][2]float64, 10)
	for k := 0; k < 10; k++ {
		rad := outer
		if k%2 == 1 {
			rad = outer * starInner
		}
		ang := (-90 + 36*float64(k)) * math.Pi / 180
		poly[k] = [2]float64{sx + rad*math.Cos(ang), sy + rad*math.Sin(ang)}
	}
	return poly
}

// edge is one polygon side from (ax, ay) along (ex, ey), with precomputed
// reciprocals for the distance and crossing tests.
type edge struct {
	ax, ay, ex, ey float64
	invLen2        float64 // 1 / |e|^2
	exOverEy       float64 // ex / ey (0 for horizontal sides, never used)
}

// polygon is a closed polygon prepared for signed-distance queries.
type polygon []edge

func newPolygon(pts [][2]float64) polygon {
	p := make(polygon, len(pts))
	for i := range pts {
		a, b := pts[(i+len(pts)-1)%len(pts)], pts[i]
		e := edge{ax: a[0], ay: a[1], ex: b[0] - a[0], ey: b[1] - a[1]}
		e.invLen2 = 1 / (e.ex*e.ex + e.ey*e.ey)
		if e.ey != 0 {
			e.exOverEy = e.ex / e.ey
		}
		p[i] = e
	}
	return p
}

// sdf returns the signed distance from (px, py) to the polygon boundary:
// positive inside (even-odd rule), negative outside.
func (p polygon) sdf(px, py float64) float64 {
	best := math.Inf(1)
	inside := false
	for i := range p {
		e := &p[i]
		wx, wy := px-e.ax, py-e.ay
		t := clamp01((wx*e.ex + wy*e.ey) * e.invLen2)
		qx, qy := wx-e.ex*t, wy-e.ey*t
		if d := qx*qx + qy*qy; d < best {
			best = d
		}
		if (e.ay > py) != (e.ay+e.ey > py) && wx < wy*e.exOverEy {
			inside = !inside
		}
	}
	d := math.Sqrt(best)
	if inside {
		return d
	}
	return -d
}
