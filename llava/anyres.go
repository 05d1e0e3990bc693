package llava

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sort"
	"sync"
	"time"

	"github.com/hiprune/hiprune-go/bridge"
	"github.com/hiprune/hiprune-go/hiprune"
	"github.com/hiprune/hiprune-go/llava/imageprep"
)

// LLaVA-NeXT (1.6) images: a base view and tiles, each encoded like a
// LLaVA-1.5 image, then laid out for the language model.
//
// Two layouts, as for the encoder's token order (bridge.Layout):
//
//   - CLIP's own (the default) is what LLaVA-NeXT was trained with
//     (LLaVA's llava_arch.py, mm_patch_merge_type "spatial_unpad"): the base
//     view's tokens, then the tiles' tokens put back in the refined image's
//     raster order, the rows and columns that only hold padding cropped away
//     (unpad_image), and the model.image_newline embedding after every row.
//     A base-only image (no side above ImageSize) gets one newline after it.
//   - llama.cpp's (bridge.LayoutLlamaCpp) is what the pinned llama.cpp's mtmd
//     sends: every view's tokens in view order (base, then tiles row-major),
//     no unpad and no newline (mtmd_encode concatenates clip_image_encode of
//     each view; clip_get_newline_tensor is never called), 5 x 576 = 2,880
//     tokens for a 2 x 2 grid, the count pruning papers use.
//
// Selection follows the HiPrune authors' LLaVA-NeXT code (HiPrune-fork,
// LLaVA/llava/model/llava_arch.py, encode_images): the scores are each
// view's own, and the budget is split over the views (they give each of the
// B views N'/B). Here a view's share is proportional to the tokens it
// contributes, which is their even split when every view contributes all
// of its tokens (llama.cpp's layout, or an image the crop leaves whole);
// under the unpad crop a tile is pruned over the part that survives the
// crop (its scores restricted to that rectangle), so no kept token is
// cropped away afterwards. Newline tokens are always kept, one per row (their
// code keeps every row's newline too), and count against N': N' is the
// number of image embeddings the language model receives.

// tokenEntry is one image token of the LM sequence: patch tok of view, or
// the newline embedding when view < 0.
type tokenEntry struct{ view, tok int32 }

// tokenLayout is the LM token sequence of one any-resolution image.
type tokenLayout struct {
	plan         imageprep.ViewPlan
	gridW, gridH int // one view's patch grid
	patch        int // patch side in model pixels
	entries      []tokenEntry
	// area is, per view, the rectangle of its patch grid that appears in
	// the sequence (all of it unless the unpad crop cuts the tile).
	area     []image.Rectangle
	newlines int
}

// unpadCrop is LLaVA's unpad_image on a fw x fh feature grid of an image
// of size src: the rows [r0, r1) and columns [c0, c1) that hold the image,
// the padding on either side cut symmetrically (Python's int() and //).
func unpadCrop(src imageprep.Size, fw, fh int) (r0, r1, c0, c1 int) {
	r0, r1, c0, c1 = 0, fh, 0, fw
	origAR := float64(src.W) / float64(src.H)
	curAR := float64(fw) / float64(fh)
	if origAR > curAR {
		scale := float64(fw) / float64(src.W)
		newH := int(float64(src.H) * scale)
		pad := (fh - newH) / 2
		return pad, fh - pad, c0, c1
	}
	scale := float64(fh) / float64(src.H)
	newW := int(float64(src.W) * scale)
	pad := (fw - newW) / 2
	return r0, r1, pad, fw - pad
}

// newTokenLayout lays out the views of plan (each a gridW x gridH patch
// grid) for merge type merge, or as llama.cpp's mtmd does.
func newTokenLayout(plan imageprep.ViewPlan, gridW, gridH int, merge string, llamaCpp bool) *tokenLayout {
	l := &tokenLayout{plan: plan, gridW: gridW, gridH: gridH, area: make([]image.Rectangle, plan.NViews())}
	if gridW > 0 {
		l.patch = plan.Size / gridW
	}
	full := image.Rect(0, 0, gridW, gridH)
	flat := llamaCpp || merge == bridge.MergeFlat || merge == ""
	unpad := !llamaCpp && merge == bridge.MergeSpatialUnpad
	addView := func(v int) {
		for t := 0; t < gridW*gridH; t++ {
			l.entries = append(l.entries, tokenEntry{int32(v), int32(t)})
		}
		l.area[v] = full
	}
	newline := func() {
		l.entries = append(l.entries, tokenEntry{-1, 0})
		l.newlines++
	}
	addView(0)
	if plan.TilesX == 0 {
		if unpad {
			newline()
		}
		return l
	}
	if flat {
		for v := 1; v < plan.NViews(); v++ {
			addView(v)
		}
		return l
	}
	fw, fh := plan.TilesX*gridW, plan.TilesY*gridH
	r0, r1, c0, c1 := 0, fh, 0, fw
	if unpad {
		r0, r1, c0, c1 = unpadCrop(plan.Src, fw, fh)
	}
	crop := image.Rect(c0, r0, c1, r1)
	for ty := 0; ty < plan.TilesY; ty++ {
		for tx := 0; tx < plan.TilesX; tx++ {
			tile := image.Rect(tx*gridW, ty*gridH, (tx+1)*gridW, (ty+1)*gridH)
			l.area[1+ty*plan.TilesX+tx] = crop.Intersect(tile).Sub(tile.Min)
		}
	}
	for y := r0; y < r1; y++ {
		for x := c0; x < c1; x++ {
			v := 1 + (y/gridH)*plan.TilesX + x/gridW
			l.entries = append(l.entries, tokenEntry{int32(v), int32((y%gridH)*gridW + x%gridW)})
		}
		if unpad {
			newline()
		}
	}
	return l
}

// splitBudget shares p tokens over views in proportion to their sizes
// (largest remainder; ties to the earlier view).
func splitBudget(p int, sizes []int) []int {
	total := 0
	for _, s := range sizes {
		total += s
	}
	out := make([]int, len(sizes))
	if total == 0 {
		return out
	}
	type rem struct {
		v int
		r int64
	}
	var rems []rem
	given := 0
	for v, s := range sizes {
		q := int64(p) * int64(s)
		out[v] = int(q / int64(total))
		given += out[v]
		rems = append(rems, rem{v, q % int64(total)})
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].r > rems[j].r })
	for i := 0; given < p && i < len(rems); i++ {
		if out[rems[i].v] < sizes[rems[i].v] {
			out[rems[i].v]++
			given++
		}
	}
	return out
}

// selectTokens returns the kept positions of l's sequence, ascending, for a
// budget of n tokens (newlines included).
func (l *tokenLayout) selectTokens(views []*bridge.Encoding, o Options, n int) ([]int, error) {
	if o.method() == MethodNone || n >= len(l.entries) {
		return allIndices(len(l.entries)), nil
	}
	p := n - l.newlines
	if p < 1 {
		return nil, fmt.Errorf("%w: keep %d: this image's %d tokens include %d row-end (newline) tokens, which are always "+
			"kept; keep at least %d", ErrOptions, n, len(l.entries), l.newlines, l.newlines+1)
	}
	sizes := make([]int, len(l.area))
	for v, a := range l.area {
		sizes[v] = a.Dx() * a.Dy()
	}
	share := splitBudget(p, sizes)
	keep := make([][]bool, len(views))
	for v, b := range share {
		keep[v] = make([]bool, l.gridW*l.gridH)
		if b < 1 {
			continue
		}
		a, enc := l.area[v], views[v]
		w, h := a.Dx(), a.Dy()
		// The view's scores on the rectangle that appears in the sequence.
		obj, deep := make([]float32, 0, w*h), make([]float32, 0, w*h)
		for y := a.Min.Y; y < a.Max.Y; y++ {
			row := y * l.gridW
			obj = append(obj, enc.Object[row+a.Min.X:row+a.Max.X]...)
			deep = append(deep, enc.Deep[row+a.Min.X:row+a.Max.X]...)
		}
		var local []int
		var err error
		switch o.method() {
		case MethodHiPrune:
			local, err = hiprune.Select(obj, deep, w, h, hiprune.Config{Budget: b, Alpha: o.alpha()})
		case MethodUniform:
			local, err = hiprune.Uniform(w*h, b)
		case MethodRandom:
			// Each view its own stream, or every tile would keep the same spots.
			local, err = hiprune.Random(w*h, b, o.Seed+uint64(v))
		}
		if err != nil {
			return nil, fmt.Errorf("view %d: %w", v, err)
		}
		for _, i := range local {
			keep[v][(a.Min.Y+i/w)*l.gridW+a.Min.X+i%w] = true
		}
	}
	kept := make([]int, 0, n)
	for i, e := range l.entries {
		if e.view < 0 || keep[e.view][e.tok] {
			kept = append(kept, i)
		}
	}
	return kept, nil
}

// rows copies the embeddings of the kept positions, in order, into a new
// buffer of width w.
func (l *tokenLayout) rows(views []*bridge.Encoding, newline []float32, kept []int, w int) []float32 {
	out := make([]float32, len(kept)*w)
	for j, i := range kept {
		e := l.entries[i]
		src := newline
		if e.view >= 0 {
			src = views[e.view].Row(int(e.tok))
		}
		copy(out[j*w:(j+1)*w], src)
	}
	return out
}

// maskViews maps the kept positions to the base view and to the tiles
// (one grid over the refined image), for imageprep.DrawMasks.
func (l *tokenLayout) maskViews(kept []int) []imageprep.MaskView {
	base := imageprep.MaskView{Layout: l.plan.BaseLayout(), GridW: l.gridW, GridH: l.gridH, Patch: l.patch}
	if l.plan.TilesX == 0 {
		for _, i := range kept {
			if e := l.entries[i]; e.view == 0 {
				base.Kept = append(base.Kept, int(e.tok))
			}
		}
		return []imageprep.MaskView{base}
	}
	fw := l.plan.TilesX * l.gridW
	tiles := imageprep.MaskView{Layout: l.plan.RefinedLayout(), GridW: fw, GridH: l.plan.TilesY * l.gridH, Patch: l.patch}
	for _, i := range kept {
		e := l.entries[i]
		switch {
		case e.view == 0:
			base.Kept = append(base.Kept, int(e.tok))
		case e.view > 0:
			tx, ty := int(e.view-1)%l.plan.TilesX, int(e.view-1)/l.plan.TilesX
			x, y := tx*l.gridW+int(e.tok)%l.gridW, ty*l.gridH+int(e.tok)/l.gridW
			tiles.Kept = append(tiles.Kept, y*fw+x)
		}
	}
	return []imageprep.MaskView{base, tiles}
}

// DefaultKeepRatioNeXT is the default budget of a LLaVA-NeXT image: 320 of
// the 2,880 tokens of a 2 x 2 grid, the authors' middle setting.
const DefaultKeepRatioNeXT = 320.0 / 2880

// nextImage is an any-resolution image after the encoder: every view's
// encoding (base first) and how they become LM tokens.
type nextImage struct {
	views []*bridge.Encoding
	lay   *tokenLayout
}

func (n *nextImage) release(pool *sync.Pool) {
	for _, v := range n.views {
		if v != nil && pool != nil {
			pool.Put(v)
		}
	}
	n.views = nil
}

// anyRes reports whether the projector cuts images into views (LLaVA-NeXT).
func (p *Pipeline) anyRes() bool { return len(p.params.Pinpoints) > 0 }

// layoutFor is the token layout of a w x h image on an any-resolution
// model, without encoding it.
func (p *Pipeline) layoutFor(w, h int) (*tokenLayout, error) {
	plan, err := imageprep.PlanViews(w, h, p.params)
	if err != nil {
		return nil, err
	}
	in := p.enc.Info()
	return newTokenLayout(plan, in.GridW, in.GridH, in.MergeType, p.cfg.Layout == bridge.LayoutLlamaCpp), nil
}

// imageTokens is how many LM tokens img takes under o, known before any
// encoding (so that a turn that cannot fit is refused first).
func (p *Pipeline) imageTokens(img *Image, o Options) int {
	if !p.anyRes() || img == nil || img.RGB == nil {
		return o.Budget(p.enc.Info().NPatches)
	}
	l, err := p.layoutFor(img.RGB.W, img.RGB.H)
	if err != nil {
		return 0 // the encode reports it
	}
	return o.budget(len(l.entries), DefaultKeepRatioNeXT)
}

// encodeViews cuts img into its views as llama.cpp does and encodes each.
func (p *Pipeline) encodeViews(ctx context.Context, img *Image, objectLayer int) (*Encoded, error) {
	t0 := time.Now()
	fs, plan, err := imageprep.PreprocessViews(img.RGB, p.params)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	pre := time.Since(t0)
	in := p.enc.Info()
	n := &nextImage{lay: newTokenLayout(plan, in.GridW, in.GridH, in.MergeType, p.cfg.Layout == bridge.LayoutLlamaCpp)}
	var t1 time.Time
	// One compute slot for all views: they are one image to the caller.
	err = p.compute(ctx, func() error {
		t1 = time.Now()
		for _, f := range fs {
			if err := ctx.Err(); err != nil {
				return err
			}
			dst, _ := p.bufs.Get().(*bridge.Encoding)
			e, err := p.enc.Encode(dst, f, bridge.EncodeOptions{ObjectLayer: objectLayer, Threads: p.cfg.Threads})
			if err != nil {
				if dst != nil {
					p.bufs.Put(dst)
				}
				return err
			}
			n.views = append(n.views, e)
		}
		return nil
	})
	if err != nil {
		n.release(&p.bufs)
		if errors.Is(err, bridge.ErrArg) {
			// The views are cut to the encoder's size, so a bad argument
			// is the caller's object layer.
			return nil, fmt.Errorf("%w: image %s: %w", ErrOptions, img.Name, err)
		}
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	v0 := n.views[0]
	return &Encoded{
		next: n, pool: &p.bufs, Name: img.Name, ObjectLayer: v0.ObjectLayer, NTokens: len(n.lay.entries),
		GridW: v0.GridW, GridH: v0.GridH, Views: len(n.views), Preprocess: pre, Encode: time.Since(t1),
		src: imageprep.Size{W: img.RGB.W, H: img.RGB.H},
	}, nil
}

// pruneViews selects from an any-resolution image; the result owns its rows.
func (p *Pipeline) pruneViews(e *Encoded, o Options) (*Pruned, error) {
	n := e.next
	budget := o.budget(len(n.lay.entries), DefaultKeepRatioNeXT)
	t0 := time.Now()
	kept, err := n.lay.selectTokens(n.views, o, budget)
	sel := time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("image %s: select: %w", e.Name, err)
	}
	return &Pruned{
		Name: e.Name, Kept: kept, Embd: n.lay.rows(n.views, p.newline, kept, n.views[0].ProjDim),
		NTokens: len(n.lay.entries), GridW: e.GridW, GridH: e.GridH, Views: e.Views, Mask: n.lay.maskViews(kept),
		Preprocess: e.Preprocess, Encode: e.Encode, Select: sel,
	}, nil
}
